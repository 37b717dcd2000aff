"""The chain's summary: one row per phase from its saved gate report, the Markdown table, the earlier rows a
continued chain keeps, and the summary files (``chain_summary.md`` / ``.json`` in the output root)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..io_utils import write_json, write_text
from .registry import CHAIN, PHASES

SUMMARY_NAME = "chain_summary"


def _letters() -> Dict[str, str]:
    from ..evaluation.suite import BUCKET_LETTERS

    return {name: letter for letter, name in BUCKET_LETTERS.items()}


def phase_result(entry: Dict[str, Any], started_wall: float) -> Dict[str, Any]:
    """The phase's row from its fresh gate_report.json (a report older than the phase is ignored)."""
    path = Path(entry["output_dir"]) / "gate_report.json"
    if not path.is_file() or path.stat().st_mtime < started_wall - 1:
        return {"buckets": {}, "gated_buckets": [], "gate_passed": None, "checks": {}, "red_lines": []}
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
    checks = {name: check.get("verdict") for name, check in (report.get("checks") or {}).items()}
    red = list((report.get("red_lines") or {}).get("red") or [])
    return {"buckets": buckets, "gated_buckets": gated, "gate_passed": bool(report.get("passed")), "checks": checks,
            "red_lines": red}


def _pct(value: Optional[float]) -> str:
    return "" if value is None else f"{float(value):.0%}"


def gated_rates(row: Mapping[str, Any]) -> str:
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
    head = ["phase", "gated buckets", *[f"{n} ({letters[n]})" if n in letters else n for n in names], "tie / parity",
            "gate", "wall"]
    lines = ["# Phase 3a chain", "",
             f"Output root: `{summary['output_root']}`; configs: `*{summary['config_suffix']}.yaml` from "
             f"`{summary['config_dir']}`; overrides: {' '.join(summary['overrides']) or 'none'}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for earlier, row in [(True, r) for r in upstream] + [(False, r) for r in rows]:
        resumed = row.get("resumed")
        cells = [row["phase"] + (" (earlier run)" if earlier else f" ({resumed})" if resumed else ""),
                 ", ".join(letters.get(n, n) for n in row["gated_buckets"]) or "-"]
        for name in names:
            bucket = row["buckets"].get(name)
            if bucket is None:
                cells.append("")
            elif bucket["gated"]:
                cells.append(f"{_pct(bucket['rate'])}* (≥{_pct(bucket['threshold'])})")
            else:
                cells.append(_pct(bucket["rate"]))
        checks = row.get("checks") or {}
        cells.append(" / ".join(checks.get(name) or "-" for name in ("tie_weights", "train_eval_parity"))
                     if checks else "")
        cells += [row["verdict"], "" if row["wall_s"] is None else f"{row['wall_s']:.0f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    kept = summary.get("kept_skills")
    if kept:
        cells = [f"kept skills ({kept['phase']})", ", ".join(kept.get("gated_by_chain") or [])]
        for name in names:
            row = kept["buckets"].get(name)
            cells.append("" if row is None else " / ".join(
                _pct(row[w]["rate"]) for w in ("suite", "held_out") if w in row) + f" (≥{_pct(row['threshold'])})")
        cells += ["", "PASS" if kept["passed"] else "FAIL", f"{kept.get('wall_s', 0):.0f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    n_pass = sum(row["verdict"] == "PASS" for row in rows)
    verdict = f"**{'PASS' if summary['passed'] else 'FAIL'}** ({n_pass}/{len(rows)} phases" + (
        f", kept skills {'PASS' if kept['passed'] else 'FAIL'})" if kept else ")")
    total = ["**total**", ""] + [""] * (len(names) + 1) + [verdict, f"{summary['total_wall_s']:.0f} s"]
    lines += ["| " + " | ".join(total) + " |", "",
              "`*` gated bucket (rate ≥ threshold for PASS); other buckets are reported only. A phase passes only "
              "when its gated buckets, the tie-weights check and the train/eval parity check all pass (the guide's "
              "mandatory gate)."]
    if kept:
        lines += ["", "Kept skills: the final model asked every bucket the chain gated, on the suite's prompts / on "
                      "held-out prompts no generator emits (mypt_hf/evaluation/held_out.py), with the guide's "
                      "thresholds; held-out format (A) is every held-out prompt scored for well-formed, stopped "
                      "replies; E also needs WRAP ≥80 %, EXTRACT ≥80 %, COPY ≥60 %."
                  + ("" if kept["passed"] else " Below target: " + "; ".join(kept["failed"]) + ".")]
    if upstream:
        lines += ["", "Rows marked (earlier run) are the phases this run started from, as an earlier run under this "
                      "root recorded them; the total, verdict and wall time count this run's phases only."]
    by_op = [f"{row['phase']}: " + ", ".join(f"{op} {_pct(v['rate'])}" for op, v in
                                             row["buckets"]["operators"]["by_operator"].items())
             for row in upstream + rows if row["buckets"].get("operators", {}).get("by_operator")]
    if by_op:
        lines += ["", "Operators bucket by operator: " + "; ".join(by_op) + "."]
    if any(row.get("resumed") for row in rows):
        lines += ["", "A resumed chain (--resume): \"kept\" rows finished in an earlier run and did not run again; "
                      "their wall time is that run's."]
    red = [f"{row['phase']}: {', '.join(row['red_lines'])}" for row in rows if row.get("red_lines")]
    if red:
        lines += ["", "RED LINE (restart from the previous phase, do not train on): " + "; ".join(red) + "."]
    errors = [f"{row['phase']}: {row['error']}" for row in rows if row.get("error")]
    if errors:
        lines += ["", "Errors: " + "; ".join(errors)]
    return "\n".join(lines) + "\n"


def upstream_rows(output_root: Path, first: Mapping[str, Any], config_suffix: str) -> List[Dict[str, Any]]:
    """Rows of the earlier summary under ``output_root`` for the phases before ``first`` (the plan entry this run
    starts with), when ``first`` starts from that earlier run's output: so a run of the later phases keeps the
    record of the chain it continues. Later rows are not kept: they described models trained from older inputs."""
    previous_phase = PHASES[first["phase"]].previous
    path = output_root / f"{SUMMARY_NAME}.json"
    if (previous_phase is None or first["init_from_model"] != str(output_root / previous_phase)
            or not path.is_file()):
        return []
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # an unreadable old summary is replaced, not fatal
        print(f"[chain] note: could not read {path}; its rows are not carried over", flush=True)
        return []
    if earlier.get("config_suffix") != config_suffix:
        return []
    rows = {row["phase"]: row for row in earlier.get("upstream_phases", []) + earlier.get("phases", [])
            if row.get("phase") in CHAIN}
    before = CHAIN[:CHAIN.index(first["phase"])]
    return [rows[name] for name in before if name in rows]


def write_summary(output_root: Path, summary: Mapping[str, Any]) -> str:
    """Write ``chain_summary.json`` and ``.md`` under ``output_root`` (call on the main process); returns the table."""
    text = format_summary(summary)
    write_json(output_root / f"{SUMMARY_NAME}.json", summary)
    write_text(output_root / f"{SUMMARY_NAME}.md", text)
    return text


__all__ = ["SUMMARY_NAME", "phase_result", "gated_rates", "format_summary", "upstream_rows", "write_summary"]
