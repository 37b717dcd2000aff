"""The chain's last step: the kept-skills gate on the model the chain ends with.

The per-phase gates stay as they are; this one asks the final model every bucket that some phase of the chain
(up to the final one, including phases an earlier run did) gated, on the suite and on the held-out sets
(:func:`mypt_hf.evaluation.retention.kept_skills`). It writes ``kept_skills.json`` into the final model's folder,
adds a "Kept skills" section to its model card, and the chain summary gets a "kept skills" row; a failure fails
the chain (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..io_utils import write_json, write_text
from .registry import CHAIN, PHASES

KEPT_SKILLS_FILE = "kept_skills.json"
CARD_HEADING = "## Kept skills (the chain's final gate)"


def chain_buckets(final_phase: str, rows: Sequence[Mapping[str, Any]] = ()) -> List[str]:
    """Bucket letters gated by the chain's phases up to ``final_phase``, in suite order: what each phase's gate
    really gated where ``rows`` (summary rows, this run's and earlier runs') record it, else the phase's default."""
    from ..evaluation.suite import BUCKET_LETTERS

    letter_of = {name: letter for letter, name in BUCKET_LETTERS.items()}
    recorded = {row["phase"]: row.get("gated_buckets") or [] for row in rows if row.get("gated_buckets")}
    letters = set()
    for phase in CHAIN[:CHAIN.index(final_phase) + 1]:
        if PHASES[phase].gate_kind != "suite":
            continue
        gated = recorded.get(phase)
        letters |= ({letter_of[n] for n in gated if n in letter_of} if gated is not None else set(PHASES[phase].gated))
    return sorted(letters)


def _max_new_tokens(model_dir: Path, default: int = 32) -> int:
    """The final phase's own eval length (its gate report's settings), so both gates read replies alike."""
    try:
        report = json.loads((model_dir / "gate_report.json").read_text(encoding="utf-8"))
        return int((report.get("settings") or {}).get("max_new_tokens") or default)
    except (OSError, ValueError, TypeError):
        return default


def markdown(report: Mapping[str, Any]) -> str:
    """The kept-skills table (Markdown) for the model card and the chain summary."""
    lines = ["| bucket | suite | held-out | threshold | verdict |", "|---|---|---|---|---|"]
    for name, row in report["buckets"].items():
        cells = []
        for where in ("suite", "held_out"):
            r = row.get(where)
            cells.append("" if r is None else f"{r['passed']}/{r['total']} ({r['rate']:.0%})")
        lines.append(f"| {row['letter']} {name} | {cells[0]} | {cells[1]} | ≥{row['threshold']:.0%} | {row['verdict']} |")
    by_op = []
    for where in ("suite", "held_out"):
        ops = (report["buckets"].get("operators") or {}).get(f"{where}_by_operator") or {}
        if ops:
            by_op.append(f"{where.replace('_', '-')}: " + ", ".join(
                f"{op} {v['passed']}/{v['total']}" for op, v in ops.items()))
    text = "\n".join(lines)
    if by_op:
        text += ("\n\nOperators (targets WRAP ≥80 %, EXTRACT ≥80 %, COPY ≥60 %): " + "; ".join(by_op) + ".")
    text += ("\n\nFormat (A) held-out: every held-out prompt of B-E scored for well-formed, stopped replies. "
             f"Verdict: **{'PASS' if report['passed'] else 'FAIL'}**"
             + ("" if report["passed"] else " - " + "; ".join(report["failed"])) + ".")
    return text


def _add_to_card(model_dir: Path, report: Mapping[str, Any]) -> None:
    card = model_dir / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    if CARD_HEADING in text:  # a rerun replaces its section
        text = text[:text.index(CARD_HEADING)].rstrip() + "\n"
    section = (f"\n{CARD_HEADING}\n\nThis model is the last of a Phase 3a chain. Every bucket an earlier phase gated "
               f"({', '.join(report['gated_by_chain'])}), asked again of this model on the suite's prompts and on "
               f"held-out prompts no generator emits:\n\n{markdown(report)}\n")
    write_text(card, text + section)


def run_kept_skills(final_row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]] = (), *,
                    progress: bool = False) -> Dict[str, Any]:
    """Score the model in ``final_row["output_dir"]`` (the chain's last phase) on :func:`chain_buckets`
    ``(final phase, rows)``; writes ``kept_skills.json`` and the card section there and returns the report
    (``passed``, ``buckets``, ``failed``, ...)."""
    import torch

    from ..evaluation.retention import kept_skills
    from ..evaluation.suite import BUCKET_LETTERS
    from ..model_files import load_causal_lm
    from ..tokenization_mypt import load_tokenizer

    model_dir = Path(final_row["output_dir"])
    letters = chain_buckets(final_row["phase"], rows)
    model = load_causal_lm(model_dir, dtype=torch.float32)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    tokenizer = load_tokenizer(model_dir)
    report = kept_skills(model, tokenizer, [BUCKET_LETTERS[b] for b in letters],
                         max_new_tokens=_max_new_tokens(model_dir), progress=progress)
    report["model"] = str(model_dir)
    report["phase"] = final_row["phase"]
    report["gated_by_chain"] = letters
    write_json(model_dir / KEPT_SKILLS_FILE, report)
    _add_to_card(model_dir, report)
    del model
    return report


def summary_row(report: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """What the chain summary keeps of the report (no replies)."""
    if report is None:
        return None
    return {key: report[key] for key in ("passed", "buckets", "failed", "phase", "model", "gated_by_chain")
            if key in report} | {"settings": {k: v for k, v in report.get("settings", {}).items()}}


__all__ = ["KEPT_SKILLS_FILE", "chain_buckets", "run_kept_skills", "markdown", "summary_row"]
