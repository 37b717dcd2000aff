"""The kept-skills gate: does the chain's final model still do what every earlier phase taught?

Each phase's gate checks that phase's buckets on the model it just trained; what a user keeps is the last model,
and a later phase can erase an earlier skill while its own gate passes (the operator phase turned the model into
a copier: anti-echo 50 %). :func:`kept_skills` scores the final model on every bucket that some phase of the chain
gated, twice: on the suite's prompts and on the held-out sets (:mod:`mypt_hf.evaluation.held_out`), with the
guide's thresholds, plus

- format (A) on every held-out prompt of every kind: a reply that runs away or breaks a tag fails, whatever the
  prompt asked;
- the guide's per-operator targets in bucket E: WRAP ≥ 80 %, EXTRACT ≥ 80 %, COPY ≥ 60 %.

One greedy batched pass generates the suite's and the held-out prompts; scoring is the suite's metric.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from .held_out import format_items, held_out_items
from .sft_eval_suite import sft_eval_suite as metric
from .suite import BUCKET_ORDER, DEFAULT_THRESHOLDS, EvalItem, build_items, score_items

#: The guide's targets per operator (bucket E as a whole: 75 %).
OPERATOR_TARGETS = {"WRAP": 0.8, "EXTRACT": 0.8, "COPY": 0.6}


def _rate(bucket: Dict[str, Any]) -> Dict[str, Any]:
    return {"passed": bucket["passed"], "total": bucket["total"], "rate": bucket["rate"]}


def _operator_checks(bucket: Dict[str, Any], where: str) -> List[Dict[str, Any]]:
    checks = []
    for op, target in OPERATOR_TARGETS.items():
        counts = (bucket.get("by_operator") or {}).get(op)
        if not counts:
            continue
        rate = counts["passed"] / counts["total"] if counts["total"] else 0.0
        checks.append({"check": f"E {op} ({where})", "passed": counts["passed"], "total": counts["total"],
                       "rate": rate, "threshold": target, "ok": rate + 1e-12 >= target})
    return checks


def kept_skills(model, tokenizer, buckets: Sequence[str], *, max_new_tokens: int = 32, batch_size: int = 64,
                progress: bool = False) -> Dict[str, Any]:
    """Score ``model`` on ``buckets`` (names or letters) on the suite and the held-out sets.

    Returns ``{"passed", "buckets": {name: {"suite", "held_out", "threshold", "verdict"}}, "checks": [...],
    "failed": [...], "settings"}``; ``checks`` lists every comparison made (bucket rates, held-out format,
    operator targets), ``failed`` the ones below target.
    """
    from ..generation import generate_replies

    wanted = kept_skill_buckets(buckets)
    items = kept_skill_items(wanted)
    budget = reply_budget(tokenizer, items, max_new_tokens)
    replies = generate_replies(model, tokenizer, [item.messages() for item in items], max_new_tokens=budget,
                               batch_size=batch_size, progress=progress, progress_desc="kept skills")
    report = score_kept_skills(wanted, items, replies)
    report["settings"]["max_new_tokens"] = budget
    if budget != max_new_tokens:
        report["settings"]["max_new_tokens_note"] = (
            f"raised from the final phase's {max_new_tokens} so the longest expected reply fits with its stop tag")
    return report


def reply_budget(tokenizer, items: Sequence[EvalItem], max_new_tokens: int) -> int:
    """``max_new_tokens``, raised where the longest expected reply of ``items`` needs more: its tokens, a closing
    "." and the stop tag. A held-out payload can be longer in a small vocabulary's tokens than the final phase's
    gate budget (a 4-word WRAP is 26 tokens with the embedded tokenizer, its gate reads 24); cut short, a correct
    reply would be scored as one that runs away."""
    longest = max((len(tokenizer.encode(item.reference, add_special_tokens=False)) for item in items
                   if item.reference), default=0)
    return max(max_new_tokens, longest + 2)


def kept_skill_buckets(buckets: Sequence[str]) -> List[str]:
    """``buckets`` (names or letters) in suite order."""
    names = {metric.BUCKET_LETTERS.get(b, b) for b in buckets}
    return [name for name in BUCKET_ORDER if name in names]


def kept_skill_items(wanted: Sequence[str]) -> List[EvalItem]:
    """The suite's items of ``wanted`` followed by the held-out items of its buckets B-E."""
    return build_items(wanted) + held_out_items([b for b in wanted if b != metric.FORMAT_STRICT])


def score_kept_skills(wanted: Sequence[str], items: Sequence[EvalItem], replies: Sequence[str]) -> Dict[str, Any]:
    """Score the replies to :func:`kept_skill_items` ``(wanted)``: the report :func:`kept_skills` returns."""
    n_suite = len(build_items(wanted))
    suite_items, held = list(items[:n_suite]), list(items[n_suite:])
    suite = score_items(suite_items, replies[:n_suite])
    held_replies = replies[len(suite_items):]
    # format (A) gated: every held-out reply must also be well formed and stop, whatever its prompt asked
    as_format = format_items(held) if metric.FORMAT_STRICT in wanted else []
    held_report = (score_items(held + as_format, held_replies + held_replies[:len(as_format)]) if held
                   else {"buckets": {}})

    letters = {name: letter for letter, name in metric.BUCKET_LETTERS.items()}
    rows: Dict[str, Dict[str, Any]] = {}
    checks: List[Dict[str, Any]] = []
    for name in wanted:
        threshold = DEFAULT_THRESHOLDS[name]  # shown; the verdict is the metric's own
        row: Dict[str, Any] = {"letter": letters[name], "threshold": threshold}
        bucket_checks: List[Dict[str, Any]] = []
        for where, report in (("suite", suite), ("held_out", held_report)):
            bucket = report["buckets"].get(name)
            if bucket is None:
                continue
            label = where.replace("_", "-")
            row[where] = _rate(bucket)
            threshold = row["threshold"] = bucket["threshold"]  # the metric's (it applies any override)
            # the metric's verdict: the rate against the threshold, and D's collapse check
            bucket_checks.append({"check": f"{letters[name]} {name} ({label})", **_rate(bucket),
                                  "threshold": threshold, "ok": bucket["verdict"] == "PASS"})
            if name == metric.OPERATORS:
                row[f"{where}_by_operator"] = bucket.get("by_operator")
                bucket_checks += _operator_checks(bucket, label)
        row["verdict"] = "PASS" if all(c["ok"] for c in bucket_checks) else "FAIL"
        rows[name] = row
        checks += bucket_checks
    failed = [c for c in checks if not c["ok"]]
    return {"passed": not failed, "buckets": rows, "checks": checks,
            "failed": [f"{c['check']} {c['passed']}/{c['total']} < {c['threshold']:.0%}" for c in failed],
            "replies": {"suite": [dict(prompt=i.user, bucket=i.bucket, reply=r) for i, r in zip(suite_items, replies)],
                        "held_out": [dict(prompt=i.user, bucket=i.bucket, reply=r) for i, r in zip(held, held_replies)]},
            "settings": {"buckets": list(wanted), "decoding": "greedy",
                         "held_out_items": len(held), "suite_items": len(suite_items),
                         "operator_targets": OPERATOR_TARGETS}}


def format_kept_skills(report: Dict[str, Any]) -> str:
    """One line per bucket: suite and held-out rates against the threshold, then the verdict and what failed."""
    lines = []
    for name, row in report["buckets"].items():
        cells = []
        for where in ("suite", "held_out"):
            if where in row:
                r = row[where]
                cells.append(f"{where.replace('_', '-')} {r['passed']}/{r['total']} ({r['rate']:.0%})")
        lines.append(f"  {row['letter']} {name:<17} {', '.join(cells)}  threshold {row['threshold']:.0%}  "
                     f"{row['verdict']}")
    lines.append(f"kept skills: {'PASS' if report['passed'] else 'FAIL'}"
                 + ("" if report["passed"] else " - " + "; ".join(report["failed"])))
    return "\n".join(lines)


__all__ = ["OPERATOR_TARGETS", "kept_skills", "kept_skill_buckets", "kept_skill_items", "score_kept_skills",
           "format_kept_skills"]
