"""The guide's mandatory gate beside the eval suite: the tie-weights check and the train/eval parity check.

The Phase 3a guide makes three things mandatory after every phase: the eval suite, ``check_tie_weights`` and
``debug_train_eval_parity``. :func:`run_gate_checks` runs the last two on the trained model and returns them in
the form the gate report stores (``report["checks"]``); :func:`add_gate_checks` folds them into a report's
verdict, so a phase whose buckets pass but whose head came untied (or whose eval mode is not deterministic)
does not PASS.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

#: Parity on this many validation batches of this size: enough to see dropout and non-determinism, seconds at 750M.
PARITY_BATCHES = 3
PARITY_BATCH_SIZE = 4


def run_gate_checks(model: Any, dataset: Any, *, pad_token_id: int) -> Dict[str, Dict[str, Any]]:
    """``{"tie_weights": {...}, "train_eval_parity": {...}}``, each with ``passed``, ``verdict`` and a one-line
    ``message``. ``dataset`` is the split the parity check reads (validation, else train); ``None`` or an empty
    split skips parity (recorded as skipped, not failed)."""
    from .checks import check_tie_weights
    from .parity import train_eval_parity

    tie = check_tie_weights(model)
    checks: Dict[str, Dict[str, Any]] = {
        "tie_weights": {"passed": tie.passed, "verdict": tie.verdict, "message": tie.message}}
    if dataset is None or len(dataset) == 0:
        checks["train_eval_parity"] = {"passed": True, "verdict": "SKIPPED", "message": "no prepared rows to check on"}
        return checks
    parity = train_eval_parity(model, dataset, pad_token_id=pad_token_id, batch_size=PARITY_BATCH_SIZE,
                               n_batches=PARITY_BATCHES)
    failed = [c["name"] for c in parity["checks"] if not c["passed"]]
    te = parity["train_eval"]
    message = (f"{len(parity['checks'])} checks on {parity['n_batches']} batch(es), dropout {parity['dropout']}, "
               f"train-eval loss diff max {te['max_diff']:.3g}") + (f"; failed: {', '.join(failed)}" if failed else "")
    checks["train_eval_parity"] = {"passed": parity["passed"], "verdict": "PASS" if parity["passed"] else "FAIL",
                                   "message": message, "checks": parity["checks"]}
    return checks


def add_gate_checks(report: Dict[str, Any], checks: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """Store ``checks`` in ``report["checks"]`` and make the report pass only when they pass too."""
    report["checks"] = {name: dict(check) for name, check in checks.items()}
    report["passed"] = bool(report.get("passed")) and all(check["passed"] for check in checks.values())
    return report


def format_gate_checks(report: Mapping[str, Any]) -> Optional[str]:
    """One line per mandatory check of a gate report, or None when it has none."""
    checks = report.get("checks") or {}
    if not checks:
        return None
    return "\n".join(f"[{check['verdict']}] {name}: {check['message']}" for name, check in checks.items())


__all__ = ["run_gate_checks", "add_gate_checks", "format_gate_checks", "PARITY_BATCHES", "PARITY_BATCH_SIZE"]
