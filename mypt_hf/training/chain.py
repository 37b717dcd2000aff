"""The whole Phase 3a chain in one call: (tiny base →) α → β → γ → 3a-2 → operators, each from the previous output.

    mypt-hf run-phases [--phases alpha,beta] [--output_root outputs/tiny] [--set max_steps=10 ...]
    python recipes/run_all.py ...            accelerate launch recipes/run_all.py ...

Every phase runs its recipe (``recipes/<phase>.py``) with ``--config <config_dir>/<phase><suffix>.yaml
--output_dir <output_root>/<phase> [--init_from_model <previous phase's output_dir>]`` plus the ``--set``
overrides, so the chain works under any output root. One progress line per phase as it starts and as it ends
(verdict, wall time, gated rates); at the end a table (every bucket's pass rate, gated ones marked, PASS/FAIL,
wall time, total) printed and written as ``chain_summary.md`` / ``chain_summary.json`` in the output root
(rewritten after every phase, so an interrupted chain still leaves what it did). A run that starts later in the
chain from the outputs already under the root (``--phases operator``) keeps the earlier summary's rows of the
phases before it (``upstream_phases``, marked "(earlier run)"), so the table still shows the whole chain.

The tiny default starts with ``tiny_base`` (copy pretraining of a fresh model, the stand-in for a pretrained
base); with ``--init_from_model`` (e.g. a converted 750M base and the ``_750M`` configs) the chain starts at α.

A failed gate does not stop the chain (the phase's model is saved and the next phase starts from it) unless
``stop_on_fail``. Exit status of :func:`main`: 0 when every phase passed its gate, 1 (GateFailure) otherwise,
2 (MyPTInputError) for bad input — checked for every chosen phase before anything trains.

In-process, not subprocesses: each phase calls its recipe's ``main(argv)`` in this interpreter.
- The recipes keep no module-level state: ``PhaseRun`` builds model, data and trainer per call, and the Trainer
  resets accelerate's ``AcceleratorState`` when it builds its Accelerator, so phases with different precision
  settings do not clash (checked in transformers' trainer.py). Each phase's objects are dropped (gc) before the next.
- Under ``accelerate launch`` every rank runs the chain itself and keeps one process group for all five phases;
  spawning recipe subprocesses from ranks would need a new rendezvous per phase. Ranks sync after each phase
  (rank 0 broadcasts the verdict), so no rank loads the previous model before rank 0 has finished saving it.
- torch/transformers/TRL are imported once instead of five times (5–10 s each on the shared 2-core CPU).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import GateFailure, MyPTInputError
from .recipe import PHASES, RECIPES_DIR

CHAIN = tuple(PHASES)  # chain order: tiny_base, phase3a1_alpha, phase3a1_beta, phase3a1_gamma, phase3a2, phase3a_operator
BASE_PHASE = "tiny_base"  # trains a fresh model; a chain given --init_from_model (a real base) skips it
DEFAULT_CONFIG_DIR = RECIPES_DIR / "configs"
SUMMARY_NAME = "chain_summary"
# short names accepted by --phases (the full names always work)
ALIASES = {
    "base": "tiny_base",
    "alpha": "phase3a1_alpha", "3a1_alpha": "phase3a1_alpha", "3a-1_alpha": "phase3a1_alpha",
    "beta": "phase3a1_beta", "3a1_beta": "phase3a1_beta", "3a-1_beta": "phase3a1_beta",
    "gamma": "phase3a1_gamma", "3a1_gamma": "phase3a1_gamma", "3a-1_gamma": "phase3a1_gamma",
    "3a2": "phase3a2", "3a-2": "phase3a2",
    "operator": "phase3a_operator", "operators": "phase3a_operator", "op": "phase3a_operator",
    "3a_operator": "phase3a_operator",
}
# set by the chain itself; an override of these would break "each phase from the previous phase's output"
_RESERVED_OVERRIDES = {"output_dir": "--output_root", "init_from_model": "--init_from_model", "config": "--config_dir"}


def resolve_phases(phases: Optional[Sequence[str] | str], init_from_model: Optional[str] = None) -> List[str]:
    """Phase names (full or short, comma-separated or a list) → full names in chain order, no repeats.

    No ``phases``: the whole chain, without the tiny base when ``init_from_model`` names a starting model."""
    if phases is None:
        return [name for name in CHAIN if not (init_from_model and name == BASE_PHASE)]
    if isinstance(phases, str):
        phases = phases.split(",")
    chosen = set()
    for raw in phases:
        name = raw.strip()
        if not name:
            continue
        lower = name.lower()
        full = lower if lower in PHASES else ALIASES.get(lower) or ALIASES.get(lower.removeprefix("phase"))
        if full is None:
            raise MyPTInputError(f"unknown phase {raw!r}; choose from {', '.join(CHAIN)} "
                                 f"(or base, alpha, beta, gamma, 3a2, operator)", field="phases")
        chosen.add(full)
    if not chosen:
        raise MyPTInputError("no phase chosen", field="phases")
    if init_from_model and BASE_PHASE in chosen:
        raise MyPTInputError(f"{BASE_PHASE} trains a fresh model: leave it out of --phases when --init_from_model "
                             "gives the starting model", field="phases")
    return [name for name in CHAIN if name in chosen]


def parse_overrides(overrides: Optional[Sequence[str] | Mapping[str, Any]]) -> List[str]:
    """``["max_steps=10", ...]`` or ``{"max_steps": 10}`` → recipe CLI arguments ``["--max_steps", "10", ...]``."""
    if not overrides:
        return []
    pairs: List[Tuple[str, str]] = []
    if isinstance(overrides, Mapping):
        pairs = [(str(k), str(v)) for k, v in overrides.items()]
    else:
        for item in overrides:
            key, sep, value = str(item).partition("=")
            key = key.strip().lstrip("-")
            if not sep or not key:
                raise MyPTInputError(f"override {item!r} is not key=value", field="set")
            pairs.append((key, value))
    argv: List[str] = []
    for key, value in pairs:
        if key in _RESERVED_OVERRIDES:
            raise MyPTInputError(f"{key} is set by the chain per phase; use {_RESERVED_OVERRIDES[key]} instead",
                                 field="set")
        argv += [f"--{key}", value]
    return argv


def load_recipe_module(phase: str, recipes_dir: Path = RECIPES_DIR) -> Any:
    """Import ``recipes/<phase>.py`` by path (the recipes dir is not a package)."""
    path = Path(recipes_dir) / f"{phase}.py"
    if not path.is_file():
        raise MyPTInputError("recipe file not found", path=str(path), field="phases")
    spec = importlib.util.spec_from_file_location(f"mypt_recipe_{phase}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _plan(phases: List[str], config_dir: Path, config_suffix: str, output_root: Path, init_from_model: Optional[str],
          extra: List[str]) -> List[Dict[str, Any]]:
    """Per phase: config, output dir, starting model and argv; every input checked before anything runs."""
    from .recipe import parse_phase_args

    plan: List[Dict[str, Any]] = []
    for index, phase in enumerate(phases):
        config = config_dir / f"{phase}{config_suffix}.yaml"
        if not config.is_file():
            hint = (f"; {phase} exists only for the tiny default: pass --init_from_model <converted base> to "
                    "start the chain at α") if phase == BASE_PHASE and config_suffix else ""
            raise MyPTInputError(f"no config for {phase} with suffix {config_suffix!r}{hint}", path=str(config),
                                 field="config_suffix")
        output_dir = output_root / phase
        base_argv = ["--config", str(config), "--output_dir", str(output_dir)]
        model_args, _, _ = parse_phase_args(phase, base_argv + extra)  # unknown keys / bad values → exit 2
        previous = PHASES[phase].previous
        if index == 0 and init_from_model:
            init: Optional[Path] = Path(init_from_model).resolve()
            if not _is_model_dir(init):
                raise MyPTInputError("init_from_model is not a saved model directory (no config.json)",
                                     path=str(init), field="init_from_model")
        elif plan and plan[-1]["phase"] == previous:
            init = Path(plan[-1]["output_dir"])  # produced earlier in this chain
        elif previous is None or model_args.require_init_from_model:
            init = None  # a fresh model, or a config that needs --init_from_model (refused below)
        else:
            init = output_root / previous  # a chain that starts later (or skips a phase): that output must exist
            if not _is_model_dir(init):
                raise MyPTInputError(f"{phase} starts from {previous}'s output, which is missing: run {previous} "
                                     f"first, include it in --phases, or pass --init_from_model",
                                     path=str(init), field="init_from_model")
        argv = base_argv + (["--init_from_model", str(init)] if init is not None else []) + extra
        if init is None and model_args.require_init_from_model:
            raise MyPTInputError(f"{config.name} fine-tunes a converted MyPT base model: pass --init_from_model <dir> "
                                 "(see `mypt-hf convert`)", path=str(config), field="init_from_model")
        plan.append({"phase": phase, "config": str(config), "output_dir": str(output_dir),
                     "init_from_model": None if init is None else str(init), "argv": argv})
    return plan


# ---- distributed helpers (no-ops in a single process) -------------------------------------------------
def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _share_from_rank0(value: Any) -> Any:
    """Rank 0's value on every rank; also a sync point (no rank moves on before rank 0 got here)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return value
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return value


def _print(message: str) -> None:
    if _rank() == 0:
        print(message, flush=True)


# ---- results and the summary ----------------------------------------------------------------------------
def _letters() -> Dict[str, str]:
    from ..evaluation.suite import BUCKET_LETTERS

    return {name: letter for letter, name in BUCKET_LETTERS.items()}


def _phase_result(entry: Dict[str, Any], started_wall: float) -> Dict[str, Any]:
    """The phase's row from its fresh gate_report.json (a report older than the phase is ignored)."""
    import json

    path = Path(entry["output_dir"]) / "gate_report.json"
    if not path.is_file() or path.stat().st_mtime < started_wall - 1:
        return {"buckets": {}, "gated_buckets": [], "gate_passed": None}
    from ..evaluation.suite import BUCKET_ORDER

    report = json.loads(path.read_text(encoding="utf-8"))
    found = report.get("buckets", {})  # the JSON file's keys are sorted: back to suite order (A-E)
    buckets = {}
    for name in [n for n in BUCKET_ORDER if n in found] + sorted(set(found) - set(BUCKET_ORDER)):
        bucket = found[name]
        row = {key: bucket.get(key) for key in ("rate", "passed", "total", "threshold", "gated", "verdict")}
        if bucket.get("by_operator"):
            row["by_operator"] = {op: {"passed": v.get("passed"), "total": v.get("total"), "rate": v.get("rate")}
                                  for op, v in bucket["by_operator"].items()}
        buckets[name] = row
    gated = [name for name, bucket in buckets.items() if bucket["gated"]]
    return {"buckets": buckets, "gated_buckets": gated, "gate_passed": bool(report.get("passed"))}


def _pct(value: Optional[float]) -> str:
    return "" if value is None else f"{float(value):.0%}"


def _gated_rates(row: Mapping[str, Any]) -> str:
    letters = _letters()
    parts = [f"{letters[n] + ' ' if n in letters else ''}{n} "
             f"{_pct(row['buckets'][n]['rate'])}/{_pct(row['buckets'][n]['threshold'])}"
             for n in row["gated_buckets"]]
    return ", ".join(parts) if parts else "no gate report"


def format_summary(summary: Mapping[str, Any]) -> str:
    """The chain's table in Markdown: every bucket's pass rate per phase, gated ones marked with ``*``."""
    from ..evaluation.suite import BUCKET_ORDER

    letters = _letters()
    rows = summary["phases"]
    upstream = summary.get("upstream_phases") or []
    seen = {name for row in upstream + rows for name in row["buckets"]}
    names = [n for n in BUCKET_ORDER if n in seen] + sorted(seen - set(BUCKET_ORDER))
    head = ["phase", "gated buckets", *[f"{n} ({letters[n]})" if n in letters else n for n in names], "gate", "wall"]
    lines = ["# Phase 3a chain", "",
             f"Output root: `{summary['output_root']}`; configs: `*{summary['config_suffix']}.yaml` from "
             f"`{summary['config_dir']}`; overrides: {' '.join(summary['overrides']) or 'none'}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for earlier, row in [(True, r) for r in upstream] + [(False, r) for r in rows]:
        cells = [row["phase"] + (" (earlier run)" if earlier else ""),
                 ", ".join(letters.get(n, n) for n in row["gated_buckets"]) or "-"]
        for name in names:
            bucket = row["buckets"].get(name)
            if bucket is None:
                cells.append("")
            elif bucket["gated"]:
                cells.append(f"{_pct(bucket['rate'])}* (≥{_pct(bucket['threshold'])})")
            else:
                cells.append(_pct(bucket["rate"]))
        cells += [row["verdict"], "" if row["wall_s"] is None else f"{row['wall_s']:.0f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    n_pass = sum(row["verdict"] == "PASS" for row in rows)
    verdict = f"**{'PASS' if summary['passed'] else 'FAIL'}** ({n_pass}/{len(rows)} phases)"
    total = ["**total**", ""] + [""] * len(names) + [verdict, f"{summary['total_wall_s']:.0f} s"]
    lines += ["| " + " | ".join(total) + " |", "",
              "`*` gated bucket (rate ≥ threshold for PASS); other buckets are reported only."]
    if upstream:
        lines += ["", "Rows marked (earlier run) are the phases this run started from, as an earlier run under this "
                      "root recorded them; the total, verdict and wall time count this run's phases only."]
    by_op = [f"{row['phase']}: " + ", ".join(f"{op} {_pct(v['rate'])}" for op, v in
                                             row["buckets"]["operators"]["by_operator"].items())
             for row in upstream + rows if row["buckets"].get("operators", {}).get("by_operator")]
    if by_op:
        lines += ["", "Operators bucket by operator: " + "; ".join(by_op) + "."]
    errors = [f"{row['phase']}: {row['error']}" for row in rows if row.get("error")]
    if errors:
        lines += ["", "Errors: " + "; ".join(errors)]
    return "\n".join(lines) + "\n"


def _upstream_rows(output_root: Path, first: Mapping[str, Any], config_suffix: str) -> List[Dict[str, Any]]:
    """Rows of the earlier summary under ``output_root`` for the phases before ``first`` (the plan entry this run
    starts with), when ``first`` starts from that earlier run's output: so a run of the later phases keeps the
    record of the chain it continues. Later rows are not kept: they described models trained from older inputs."""
    import json

    previous_phase = PHASES[first["phase"]].previous
    path = output_root / f"{SUMMARY_NAME}.json"
    if (previous_phase is None or first["init_from_model"] != str(output_root / previous_phase)
            or not path.is_file()):
        return []
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # an unreadable old summary is replaced, not fatal
        _print(f"[chain] note: could not read {path}; its rows are not carried over")
        return []
    if earlier.get("config_suffix") != config_suffix:
        return []
    rows = {row["phase"]: row for row in earlier.get("upstream_phases", []) + earlier.get("phases", [])
            if row.get("phase") in CHAIN}
    before = CHAIN[:CHAIN.index(first["phase"])]
    return [rows[name] for name in before if name in rows]


def _write_summary(output_root: Path, summary: Mapping[str, Any]) -> str:
    from ..io_utils import write_json

    text = format_summary(summary)
    if _rank() == 0:
        write_json(output_root / f"{SUMMARY_NAME}.json", summary)
        _write_text_atomic(output_root / f"{SUMMARY_NAME}.md", text)
    return text


def _write_text_atomic(path: Path, text: str) -> None:
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- the chain -------------------------------------------------------------------------------------------
def run_phases(phases: Optional[Sequence[str] | str] = None, config_dir: str | Path = DEFAULT_CONFIG_DIR,
               output_root: str | Path = "outputs/tiny", overrides: Optional[Sequence[str] | Mapping[str, Any]] = None,
               stop_on_fail: bool = False, config_suffix: str = "", init_from_model: Optional[str] = None,
               recipes_dir: str | Path = RECIPES_DIR) -> Dict[str, Any]:
    """Run the chosen phases in chain order; returns the summary (also written to ``output_root``).

    ``overrides`` (``["max_steps=10"]`` or a dict) go to every phase; ``init_from_model`` is the first phase's
    starting model (needed for the ``_750M`` configs). Raises MyPTInputError for bad input before training
    anything. ``summary["passed"]`` is true only when every phase ran and passed its gate.
    """
    names = resolve_phases(phases, init_from_model)
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise MyPTInputError("config directory not found", path=str(config_dir), field="config_dir")
    output_root = Path(output_root).resolve()
    extra = parse_overrides(overrides)
    plan = _plan(names, config_dir, config_suffix, output_root, init_from_model, extra)
    modules = {entry["phase"]: load_recipe_module(entry["phase"], Path(recipes_dir)) for entry in plan}

    started = time.perf_counter()
    summary: Dict[str, Any] = {
        "output_root": str(output_root), "config_dir": str(config_dir.resolve()), "config_suffix": config_suffix,
        "overrides": extra, "stop_on_fail": stop_on_fail, "passed": False, "total_wall_s": 0.0,
        "upstream_phases": _upstream_rows(output_root, plan[0], config_suffix) if _rank() == 0 else [],
        "phases": [{"phase": e["phase"], "title": PHASES[e["phase"]].title, "output_dir": e["output_dir"],
                    "init_from_model": e["init_from_model"], "config": e["config"], "verdict": "PENDING",
                    "wall_s": None, "exit_code": None, "buckets": {}, "gated_buckets": [], "error": None}
                   for e in plan],
    }
    n = len(plan)
    stop_reason: Optional[BaseException] = None
    for index, (entry, row) in enumerate(zip(plan, summary["phases"]), start=1):
        source = entry["init_from_model"] or "a fresh model"
        _print(f"[chain {index}/{n}] {entry['phase']}: start from {source} -> {entry['output_dir']}")
        t0, wall0 = time.perf_counter(), time.time()
        try:
            code = int(modules[entry["phase"]].main(list(entry["argv"])) or 0)
        except GateFailure as error:
            code, row["error"] = 1, str(error)
        except MyPTInputError as error:
            code, row["error"], stop_reason = 2, str(error), error
        except Exception as error:  # noqa: BLE001 - reported in the summary, then re-raised below
            code, row["error"], stop_reason = 3, f"{type(error).__name__}: {error}", error
        gc.collect()
        row["wall_s"] = time.perf_counter() - t0
        row["exit_code"] = code
        if _rank() == 0:
            row.update(_phase_result(entry, wall0))
        if code >= 2:
            row["verdict"] = "ERROR"
        elif row.get("gate_passed") is None:
            row["verdict"] = "FAIL" if code else "NO GATE"
        else:
            row["verdict"] = "PASS" if row["gate_passed"] else "FAIL"
        row["verdict"] = _share_from_rank0(row["verdict"])
        _print(f"[chain {index}/{n}] {entry['phase']}: {row['verdict']} in {row['wall_s']:.1f} s "
               f"({_gated_rates(row)})" + (f" - {row['error']}" if row["error"] else ""))
        summary["total_wall_s"] = time.perf_counter() - started
        _write_summary(output_root, summary)
        if stop_reason is not None or (stop_on_fail and row["verdict"] != "PASS"):
            for later in summary["phases"][index:]:
                later["verdict"] = "SKIPPED"
            if stop_reason is None:
                _print(f"[chain] stopping after {entry['phase']} (--stop_on_fail)")
            break
    summary["total_wall_s"] = time.perf_counter() - started
    summary["passed"] = all(row["verdict"] == "PASS" for row in summary["phases"])
    summary["exit_code"] = 0 if summary["passed"] else (2 if isinstance(stop_reason, MyPTInputError) else 1)
    text = _write_summary(output_root, summary)
    _print("\n" + text + f"\nTotal wall time: {summary['total_wall_s']:.0f} s "
           f"(summary: {output_root / (SUMMARY_NAME + '.md')})")
    if stop_reason is not None:
        raise stop_reason
    return summary


# ---- command line -----------------------------------------------------------------------------------------
def add_chain_arguments(parser: argparse.ArgumentParser) -> None:
    """The chain's options (defined in the light command module so ``mypt-hf --help`` imports no torch)."""
    from ..commands.run_phases import add_arguments

    add_arguments(parser)


def run_from_args(args: argparse.Namespace) -> int:
    """Run the chain from parsed arguments; GateFailure when a phase did not pass (exit 1)."""
    output_root = args.output_root
    if output_root is None:
        output_root = "outputs/tiny" if not args.config_suffix else f"outputs/{args.config_suffix.lstrip('_')}"
    summary = run_phases(phases=args.phases, config_dir=args.config_dir or DEFAULT_CONFIG_DIR,
                         output_root=output_root, overrides=args.overrides, stop_on_fail=args.stop_on_fail,
                         config_suffix=args.config_suffix,
                         init_from_model=args.init_from_model)
    if not summary["passed"]:
        failed = [f"{row['phase']} {row['verdict']}" for row in summary["phases"] if row["verdict"] != "PASS"]
        raise GateFailure("chain did not pass: " + ", ".join(failed))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``recipes/run_all.py``: parse ``argv`` (default ``sys.argv[1:]``) and run the chain."""
    description = ("Run the Phase 3a chain (tiny base →) α → β → γ → 3a-2 → operators, each from the previous "
                   "phase's output.")
    parser = argparse.ArgumentParser(prog="run_all.py", description=description)
    add_chain_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    return run_from_args(args)


__all__ = ["CHAIN", "run_phases", "resolve_phases", "parse_overrides", "format_summary", "add_chain_arguments",
           "run_from_args", "main"]
