#!/usr/bin/env bash
# Run benchmarks/gpu_check.py on a (possibly bare, possibly offline) GPU machine, within a time budget.
#
#   bash benchmarks/gpu_check.sh [extra gpu_check.py flags]        # from the repository root
#
# Environment: OUT (report folder; default ./outputs/gpu_check), GPU_CHECK_BUDGET_S (default 420: the script's own
# budget; the whole wrapper is killed at budget + 100 s), PYTHON (default python3, else python),
# MYPT_WHEELHOUSE (a folder of wheels to install from offline; ./wheels and ./shared/wheels are tried too),
# GPU_CHECK_NO_INSTALL=1 (install nothing: check what imports and run with PYTHONPATH, e.g. in a shared venv).
#
# Installing never blocks for minutes and never needs the network:
# - torch, transformers, trl, accelerate, datasets present -> `pip install -e . --no-deps` (offline, no build
#   isolation); if even that fails the checkout is used through PYTHONPATH (mypt_hf is pure Python).
# - any of them missing -> from the wheelhouse (--no-index) if there is one, else one quick pip try
#   (--retries 0, --timeout 5, capped at 90 s); still missing -> $OUT/gpu_check.json says which, exit 3.
# - flash-attn only from a prebuilt wheel (wheelhouse, or PyPI with --only-binary); never compiled here.
#   Without it the flash_attention_2 sections report "skipped: flash-attn not installed".
# Files under $OUT: gpu_check.json (the report), gpu_check.log, install.log, nvidia-smi.txt, pip-freeze.txt.
set -u
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)
OUT=${OUT:-$REPO/outputs/gpu_check}
BUDGET=${GPU_CHECK_BUDGET_S:-420}
mkdir -p "$OUT"
LOG=$OUT/install.log
: > "$LOG"
PY=${PYTHON:-$(command -v python3 || command -v python)}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
say() { echo "[gpu_check.sh] $*" | tee -a "$LOG"; }

write_failure() {  # a report that says why nothing was measured
    "$PY" - "$OUT/gpu_check.json" "$1" "$2" <<'EOF' 2>>"$LOG" || echo "{\"status\": \"$1\", \"detail\": \"$2\"}" > "$OUT/gpu_check.json"
import json, sys
path, status, detail = sys.argv[1:4]
json.dump({"schema": "mypt_hf.gpu_check/1", "status": status, "detail": detail, "sections": {}},
          open(path, "w"), indent=2)
EOF
}

if [ -z "$PY" ]; then
    say "no python3/python on PATH"
    write_failure "no_python" "no python3 or python on PATH"
    exit 3
fi
say "python: $PY ($("$PY" --version 2>&1))"
(nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not available" > "$OUT/nvidia-smi.txt")

# without the first group nothing runs; without the second the script times its manual loop (same model, loss and
# fused AdamW) instead of MyPTSFTTrainer, and says so in the report
REQUIRED="torch transformers yaml numpy tokenizers"
TRAINER="trl accelerate datasets"
missing() {  # the given modules that do not import (import errors, not only absence), as pip names
    "$PY" - "$@" <<'EOF' 2>/dev/null
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        print({"yaml": "pyyaml"}.get(name, name))
EOF
}

WHEELHOUSE=""
for dir in "${MYPT_WHEELHOUSE:-}" "$REPO/wheels" "$REPO/shared/wheels"; do
    if [ -n "$dir" ] && [ -d "$dir" ] && ls "$dir"/*.whl > /dev/null 2>&1; then WHEELHOUSE=$dir; break; fi
done
[ -n "$WHEELHOUSE" ] && say "wheelhouse: $WHEELHOUSE"

pip_quick() {  # pip install, bounded: never waits long on a network that is not there
    timeout 90 "$PY" -m pip install --retries 0 --timeout 5 "$@" >> "$LOG" 2>&1
}

MISSING=$(missing $REQUIRED $TRAINER | tr '\n' ' ')
if [ -n "${MISSING// /}" ]; then
    say "missing: $MISSING"
    if [ "${GPU_CHECK_NO_INSTALL:-0}" = 1 ]; then
        :
    elif [ -n "$WHEELHOUSE" ]; then
        pip_quick --no-index --find-links "$WHEELHOUSE" $MISSING || say "wheelhouse install failed (see install.log)"
    else
        pip_quick $MISSING || say "pip install failed (offline?) (see install.log)"
    fi
    NOW_MISSING=$(missing $TRAINER | tr '\n' ' ')
    [ -n "${NOW_MISSING// /}" ] && say "still missing: $NOW_MISSING -- timing the manual loop instead of MyPTSFTTrainer"
    MISSING=$(missing $REQUIRED | tr '\n' ' ')
    if [ -n "${MISSING// /}" ]; then
        say "still missing: $MISSING -- nothing measured. Provide them (e.g. MYPT_WHEELHOUSE=<folder of wheels>)."
        write_failure "missing_packages" "not importable: $MISSING; no network here, give a wheelhouse (MYPT_WHEELHOUSE)"
        "$PY" -m pip freeze > "$OUT/pip-freeze.txt" 2>&1
        exit 3
    fi
fi

# mypt_hf itself: an editable install without dependencies, offline; PYTHONPATH (set above) covers a failure
if [ "${GPU_CHECK_NO_INSTALL:-0}" = 1 ]; then
    say "GPU_CHECK_NO_INSTALL=1: installing nothing; the checkout runs through PYTHONPATH"
elif timeout 120 "$PY" -m pip install -e . --no-deps --no-build-isolation --no-index -q >> "$LOG" 2>&1; then
    say "pip install -e . --no-deps: ok"
else
    say "pip install -e . --no-deps failed (see install.log); using the checkout through PYTHONPATH"
fi

if [ "${GPU_CHECK_NO_INSTALL:-0}" != 1 ] && ! "$PY" -c "import flash_attn" > /dev/null 2>&1; then
    if [ -n "$WHEELHOUSE" ] && ls "$WHEELHOUSE"/flash_attn*.whl > /dev/null 2>&1; then
        pip_quick --no-index --no-deps --find-links "$WHEELHOUSE" flash-attn && say "flash-attn: installed from wheelhouse"
    else
        # --only-binary: the PyPI release is a source tarball; compiling it takes far longer than this run
        pip_quick --no-deps --only-binary :all: flash-attn && say "flash-attn: installed (wheel)" \
            || say "flash-attn: no wheel available; the flash_attention_2 sections will be skipped"
    fi
fi
"$PY" -m pip freeze > "$OUT/pip-freeze.txt" 2>&1

say "running benchmarks/gpu_check.py --budget_s $BUDGET (report: $OUT/gpu_check.json)"
timeout --kill-after=20 $((BUDGET + 100)) "$PY" benchmarks/gpu_check.py --budget_s "$BUDGET" \
    --out "$OUT/gpu_check.json" "$@" 2>&1 | tee "$OUT/gpu_check.log"
STATUS=${PIPESTATUS[0]}
if [ "$STATUS" = 124 ] || [ "$STATUS" = 137 ]; then
    say "gpu_check.py ran past budget + 100 s and was stopped; the report holds the sections that finished"
fi
say "exit status $STATUS"
exit "$STATUS"
