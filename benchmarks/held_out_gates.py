"""Gate buckets B-E on prompts, payloads and templates that no generator emits: how real is the generalisation?

    python benchmarks/held_out_gates.py [--output_root outputs/tiny] [--phases alpha,beta,...] [--verbose]

The held-out sets are mypt_hf.evaluation.held_out (60+ items each for B-E; the chain's kept-skills gate uses the
same sets on the final model); the format column (A) scores every held-out reply for well-formed, stopped
output. Scoring is the suite's own metric (``score_items``), so a held-out rate compares directly with the
gate's rate. Before anything runs, the sets are checked against what the generators emit; an overlap is an
error. For each phase directory under ``--output_root`` that holds a model, prints the gate
rate (from its ``gate_report.json``) next to the held-out rate per bucket. Greedy decoding, deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

from mypt_hf.evaluation.held_out import format_items, held_out_items, held_out_overlaps
from mypt_hf.evaluation.sft_eval_suite import sft_eval_suite as metric
from mypt_hf.evaluation.suite import score_items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", default="outputs/tiny")
    parser.add_argument("--phases", default=None, help="comma-separated phase names (default: every chat phase found; not the tiny base)")
    parser.add_argument("--max_new_tokens", type=int, default=24)
    parser.add_argument("--verbose", action="store_true", help="print every held-out reply")
    args = parser.parse_args()

    problems = held_out_overlaps()
    if problems:
        raise SystemExit("held-out items that the generators also emit: " + "; ".join(problems))
    from mypt_hf.commands.eval import load_model_and_tokenizer
    from mypt_hf.generation import generate_replies
    from mypt_hf.phases.registry import CHAIN, PHASES, resolve_phases

    # by default the chat phases only: the tiny base is a plain copier with no chat format to score
    phases = resolve_phases(args.phases) if args.phases else [p for p in CHAIN if PHASES[p].gate_kind == "suite"]
    root = Path(args.output_root)
    items = held_out_items()
    rows: List[Dict] = []
    for phase in phases:
        directory = root / phase
        if not (directory / "config.json").is_file():
            continue
        model, tokenizer = load_model_and_tokenizer(str(directory))
        replies = generate_replies(model, tokenizer, [item.messages() for item in items],
                                   max_new_tokens=args.max_new_tokens, batch_size=64, progress=False)
        report = score_items(items + format_items(items), replies + replies)
        gate = json.loads((directory / "gate_report.json").read_text()) if (directory / "gate_report.json").is_file() else {}
        row = {"phase": phase}
        for name, bucket in report["buckets"].items():
            suite = gate.get("buckets", {}).get(name, {})
            row[name] = (suite.get("rate"), bucket["rate"], bucket["passed"], bucket["total"])
            if args.verbose:
                for entry in bucket["items"]:
                    print(f"  {phase} {name} {'PASS' if entry['passed'] else 'FAIL'}: {entry['prompt']!r} -> "
                          f"{entry['generated']!r}")
        rows.append(row)
    if not rows:
        print(f"no phase model under {root}", file=sys.stderr)
        return 2
    names = [metric.FORMAT_STRICT, metric.ECHO_BASIC, metric.ANTI_ECHO, metric.REGRESSION_BASIC, metric.OPERATORS]
    print("| phase | " + " | ".join(f"{n}: gate / held-out" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for row in rows:
        cells = []
        for name in names:
            suite, held, passed, total = row[name]
            cells.append(f"{'-' if suite is None else f'{suite:.0%}'} / {held:.0%} ({passed}/{total})")
        print(f"| {row['phase']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
