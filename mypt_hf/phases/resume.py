"""What ``run-phases --resume`` keeps, continues and reruns of an interrupted chain.

The chain writes a record beside each phase's outputs, ``<output_dir>/phase_run.json``: ``"running"`` with the
phase's command line when the phase starts, then ``"done"`` with its summary row and the sha256 of its
``gate_report.json`` when it ends. On resume, in chain order:

* a phase is **kept** when its record is ``done`` for the same command line, its gate report still has the
  recorded hash and its model is there; its row is reused and nothing of it runs again;
* the first phase that is not kept is **continued** from its newest complete ``checkpoint-<step>``
  (:mod:`mypt_hf.training.checkpoints`) when its record shows it was interrupted with the same command line;
  the half-written checkpoint of a save that was killed is removed (and said so). Without a usable checkpoint
  it runs from the start;
* every later phase runs again (its starting model is new).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..io_utils import sha256_file, write_json

RECORD_NAME = "phase_run.json"
GATE_REPORT = "gate_report.json"


def _record_path(entry: Mapping[str, Any]) -> Path:
    return Path(entry["output_dir"]) / RECORD_NAME


def mark_started(entry: Mapping[str, Any]) -> None:
    """Record that the phase of plan ``entry`` starts (main process, before it runs)."""
    write_json(_record_path(entry), {"phase": entry["phase"], "status": "running", "argv": list(entry["argv"])})


def mark_done(entry: Mapping[str, Any], row: Mapping[str, Any]) -> None:
    """Record the phase's finished summary ``row`` and the hash of its gate report (main process)."""
    report = Path(entry["output_dir"]) / GATE_REPORT
    write_json(_record_path(entry), {
        "phase": entry["phase"], "status": "done", "argv": list(entry["argv"]), "row": dict(row),
        "gate_report_sha256": sha256_file(report) if report.is_file() else None})


def read_record(entry: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The phase's record, or None when there is none or it cannot be read (treated as never run)."""
    path = _record_path(entry)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@dataclass
class ResumeDecision:
    """For one plan entry: ``"keep"`` (with the earlier ``row``), ``"continue"`` (from ``checkpoint``) or
    ``"run"``; ``notes`` say why, one line each."""

    action: str
    row: Optional[Dict[str, Any]] = None
    checkpoint: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def _kept_row(entry: Mapping[str, Any], record: Mapping[str, Any]) -> Optional[str]:
    """Why the finished phase cannot be kept, or None when it can."""
    out = Path(entry["output_dir"])
    if list(record.get("argv", [])) != list(entry["argv"]):
        return "it finished with other settings"
    if not (out / "config.json").is_file():
        return "its saved model is missing"
    report = out / GATE_REPORT
    expected = record.get("gate_report_sha256")
    if expected is not None and (not report.is_file() or sha256_file(report) != expected):
        return f"its {GATE_REPORT} is missing or changed since it finished"
    return None


def plan_resume(plan: Sequence[Mapping[str, Any]]) -> List[ResumeDecision]:
    """One decision per plan entry (see the module docstring); reads the records and checkpoints, changes nothing."""
    from ..training.checkpoints import latest_complete_checkpoint

    decisions: List[ResumeDecision] = []
    keeping = True
    for entry in plan:
        record = read_record(entry)
        if keeping and record is not None and record.get("status") == "done":
            why = _kept_row(entry, record)
            if why is None:
                decisions.append(ResumeDecision("keep", row=dict(record["row"])))
                continue
            decisions.append(ResumeDecision("run", notes=[f"not kept: {why}; it runs again"]))
            keeping = False
            continue
        if keeping and record is not None and record.get("status") == "running":
            keeping = False
            if list(record.get("argv", [])) != list(entry["argv"]):
                decisions.append(ResumeDecision("run", notes=["it was interrupted with other settings; "
                                                              "it runs from the start"]))
                continue
            checkpoint, broken = latest_complete_checkpoint(entry["output_dir"])
            notes = [f"{path.name} is unusable ({why}); it is removed" for path, why in broken]
            if checkpoint is None:
                decisions.append(ResumeDecision("run", notes=notes + ["interrupted before its first complete "
                                                                      "checkpoint; it runs from the start"]))
            else:
                decisions.append(ResumeDecision("continue", checkpoint=str(checkpoint), notes=notes))
            continue
        keeping = False
        decisions.append(ResumeDecision("run"))
    return decisions


def remove_unusable_checkpoints(entry: Mapping[str, Any]) -> None:
    """Delete the checkpoints newer than the one the phase continues from that cannot be resumed from (a save
    that was killed half-way): the trainer would otherwise rotate or reuse them (main process)."""
    from ..training.checkpoints import latest_complete_checkpoint

    _, broken = latest_complete_checkpoint(entry["output_dir"])
    for path, _ in broken:
        shutil.rmtree(path, ignore_errors=True)


__all__ = ["RECORD_NAME", "ResumeDecision", "mark_started", "mark_done", "read_record", "plan_resume",
           "remove_unusable_checkpoints"]
