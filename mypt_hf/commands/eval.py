"""`mypt-hf eval`: the Phase 3a evaluation gate (the original's scripts/eval/sft_eval_suite.py)."""

from __future__ import annotations

import argparse

HELP = "Run the Phase 3a eval suite (buckets A-E) on a model dir; exit 1 when a gated bucket misses its threshold."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model dir, or a model name: <checkpoints>/<name> "
                             "($MYPT_CHECKPOINTS_DIR, default ./checkpoints)")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer spec (default: the tokenizer saved in --model)")
    parser.add_argument("--output", default=None, help="write the JSON report here")
    parser.add_argument("--phase", default=None,
                        help="gate this phase's buckets (alpha: A,B; beta/gamma: A,B,C; 3a2: A-D; operator: A,E); "
                             "default: the phase recorded in the model dir's gate_report.json, else every bucket")
    parser.add_argument("--buckets", default=None,
                        help="comma-separated buckets to run: letters A-E or names (default: all)")
    parser.add_argument("--use_val_templates", action="store_true",
                        help="operator bucket: the generator's validation templates instead of the reserved ones")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--threshold", action="append", default=[], metavar="BUCKET=RATE",
                        help="override a gate, e.g. --threshold E=0.8 (repeatable)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every item with prompt, expected, generated")


def _parse_thresholds(values):
    from mypt_hf.errors import MyPTInputError

    thresholds = {}
    for value in values:
        name, sep, rate = value.partition("=")
        try:
            thresholds[name.strip()] = float(rate)
        except ValueError:
            sep = ""
        if not sep or not 0.0 <= thresholds.get(name.strip(), -1) <= 1.0:
            raise MyPTInputError(f"bad --threshold {value!r}; expected BUCKET=RATE with RATE in [0, 1]",
                                 field="threshold")
    return thresholds


def load_model_and_tokenizer(model_dir: str, tokenizer_spec=None, device=None):
    """Load a MyPT (or any causal LM) model dir and its tokenizer for evaluation; a missing or damaged model dir,
    or one without tokenizer files when no ``tokenizer_spec`` is given, is a MyPTInputError naming it."""
    from mypt_hf.model_files import check_saved_model_dir, load_causal_lm
    from mypt_hf.tokenization_mypt import load_tokenizer

    check_saved_model_dir(model_dir, need_tokenizer=not tokenizer_spec,
                          tokenizer_hint="pass --tokenizer (a tokenizer dir, a *.tiktoken file or 'embedded') or save "
                                         "the tokenizer into the model dir (tokenizer.save_pretrained(dir))")
    device = resolve_device(device)
    model = load_causal_lm(model_dir)  # first: a bad config.json is named as the model's
    tokenizer = load_tokenizer(tokenizer_spec if tokenizer_spec else model_dir)
    return model.to(device).eval(), tokenizer


def resolve_device(device=None):
    """``device`` as a torch.device (default: cuda when available, else cpu); MyPTInputError for a name torch
    does not know or a CUDA device on a machine without one."""
    import torch

    from mypt_hf.errors import MyPTInputError

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise MyPTInputError(f"unknown device {device!r} (e.g. cpu, cuda, cuda:1)", field="device") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise MyPTInputError(f"--device {device}: no CUDA device on this machine (use cpu)", field="device")
    return resolved


def gated_buckets_for(model_dir: str, phase: str = None):
    """``(buckets to gate, why)``: the phase's gated buckets from ``phase`` (a name or short name), else from the
    phase a recipe recorded in ``<model_dir>/gate_report.json``, else ``(None, ...)`` = every bucket gates."""
    import json
    from pathlib import Path

    from mypt_hf.phases.registry import get_phase

    if phase:
        info = get_phase(phase)
        return list(info.gated), f"{info.name}'s gate (--phase {phase})"
    report = Path(model_dir) / "gate_report.json"
    try:
        recorded = json.loads(report.read_text(encoding="utf-8")).get("phase") if report.is_file() else None
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded:
        info = get_phase(recorded)
        if info.gate_kind != "copy":
            return list(info.gated), f"{info.name}'s gate (the phase recorded in {report})"
    return None, "every bucket (no --phase given and no phase recorded in the model dir)"


def run(args: argparse.Namespace) -> int:
    from mypt_hf.errors import GateFailure
    from mypt_hf.evaluation.suite import format_report, resolve_buckets, run_eval_suite, write_report

    from mypt_hf.errors import MyPTInputError

    if args.batch_size < 1 or args.max_new_tokens < 1:
        name = "batch_size" if args.batch_size < 1 else "max_new_tokens"
        raise MyPTInputError(f"--{name} must be >= 1, got {getattr(args, name)}", field=name)
    buckets = resolve_buckets(args.buckets.split(",")) if args.buckets else None
    thresholds = _parse_thresholds(args.threshold)
    model, tokenizer = load_model_and_tokenizer(args.model, args.tokenizer, args.device)
    gated, why = gated_buckets_for(args.model, args.phase)
    report = run_eval_suite(model, tokenizer, buckets=buckets, thresholds=thresholds, batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, use_val_templates=args.use_val_templates,
                            progress=not args.no_progress)
    if gated is not None:  # every bucket runs and is reported; the phase's buckets decide
        from mypt_hf.phases.run import apply_gates

        report = apply_gates(report, gated)  # a gated bucket left out by --buckets is not gated
    report["gated_because"] = why
    report["model"] = str(args.model)
    print(f"gated: {', '.join(n for n, b in report['buckets'].items() if b['gated']) or 'nothing'} - {why}")
    print(format_report(report, verbose=args.verbose))
    if args.output:
        write_report(report, args.output)
        print(f"report written to {args.output}")
    if not report["passed"]:
        failed = [name for name, b in report["buckets"].items() if b["gated"] and b["verdict"] != "PASS"]
        raise GateFailure(f"gated bucket(s) below threshold: {', '.join(failed)}")
    return 0
