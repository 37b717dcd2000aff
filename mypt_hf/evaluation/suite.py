"""The Phase 3a evaluation gate: bucket contents, batched generation, scoring, report.

Buckets A-D hold the original suite's prompts; bucket E (operators) renders the payloads and templates
reserved in ``mypt_hf.data.reserved`` (which no generated training episode contains) or, with
``use_val_templates=True``, the generator's validation templates. Every prompt is rendered with the
training chat template; A-D use the default system prompt, E the operator generator's. All prompts are
generated in one greedy batched pass and scored by the ``sft_eval_suite`` metric.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

from ..errors import MyPTInputError
from ..tokens import DEFAULT_SYSTEM_PROMPT, OPERATOR_SYSTEM_PROMPT_DE, OPERATOR_SYSTEM_PROMPT_EN
from .sft_eval_suite import sft_eval_suite as metric_module

BUCKET_ORDER = (metric_module.FORMAT_STRICT, metric_module.ECHO_BASIC, metric_module.ANTI_ECHO,
                metric_module.REGRESSION_BASIC, metric_module.OPERATORS)
BUCKET_LETTERS = dict(metric_module.BUCKET_LETTERS)
DEFAULT_THRESHOLDS = dict(metric_module.DEFAULT_THRESHOLDS)
OPERATOR_NAMES = ("COPY", "WRAP", "EXTRACT")

FORMAT_PROMPTS = ("Say OK.", "Say Hello.", "Status?", "Ready?", "Sag Hallo.")
ECHO_PROMPTS = (
    ("Say Hello.", "Hello"), ("Say OK.", "OK"), ("Say yes.", "yes"), ("Repeat: Hello world", "Hello world"),
    ("Echo: Testing", "Testing"), ("Sag Hallo.", "Hallo"), ("Say Banana.", "Banana"), ("Say 42.", "42"),
)
ANTI_ECHO_PROMPTS = (
    ('What is "Blurpix"?', "Blurpix"), ('Is "Zanthor" a real word?', "Zanthor"),
    ('What does "Quexling" mean?', "Quexling"), ('Does "Flimzap" have a meaning?', "Flimzap"),
)
REGRESSION_PROMPTS = (
    ("What is 5 + 7?", "12"), ("What is 2 + 2?", "4"), ("What is 10 - 3?", "7"), ("Capital of Germany?", "Berlin"),
    ("Capital of France?", "Paris"), ("Is water wet?", "Yes"), ("Is fire cold?", "No"),
)


@dataclass
class EvalItem:
    """One prompt of the suite and what its check compares against."""

    bucket: str
    name: str
    user: str
    reference: str
    system: Optional[str] = DEFAULT_SYSTEM_PROMPT
    operator: Optional[str] = None
    payload: Optional[str] = None
    word_count: Optional[int] = None
    template: Optional[str] = None

    def messages(self) -> List[Dict[str, str]]:
        from ..generation import build_chat_messages

        return build_chat_messages(self.user, system=self.system)


def _operator_items(use_val_templates: bool) -> List[EvalItem]:
    from ..data import operators as generator
    from ..data.reserved import RESERVED_OPERATOR_PAYLOADS, RESERVED_OPERATOR_TEMPLATES

    templates = generator.VAL_TEMPLATES if use_val_templates else RESERVED_OPERATOR_TEMPLATES
    german = {t for by_lang in getattr(generator, "VAL_TEMPLATES_BY_LANGUAGE", {}).values()
              for t in by_lang.get("de", ())}
    # Split the payloads across the operators round-robin within each word count, so every operator sees
    # the same mix of lengths and no payload is asked twice.
    by_words: Dict[int, List[str]] = defaultdict(list)
    for payload in RESERVED_OPERATOR_PAYLOADS:
        by_words[len(payload.split())].append(payload)
    per_op: Dict[str, List[str]] = {op: [] for op in OPERATOR_NAMES}
    for words in sorted(by_words):
        for index, payload in enumerate(by_words[words]):
            per_op[OPERATOR_NAMES[index % len(OPERATOR_NAMES)]].append(payload)
    items = []
    for op in OPERATOR_NAMES:
        op_templates = list(templates[op])
        if not op_templates:
            raise MyPTInputError(f"no templates for operator {op}")
        for index, payload in enumerate(per_op[op]):
            template = op_templates[index % len(op_templates)]
            words = len(payload.split())
            items.append(EvalItem(
                bucket=metric_module.OPERATORS, name=f"{op.lower()}_{words}w_{index:02d}",
                user=generator.render(template, payload), reference=generator.expected_output(op, payload),
                # the system prompt the operator generator gives an episode in the template's language
                system=OPERATOR_SYSTEM_PROMPT_DE if template in german else OPERATOR_SYSTEM_PROMPT_EN, operator=op, payload=payload, word_count=words, template=template))
    return items


def resolve_buckets(buckets: Optional[Sequence[str]]) -> List[str]:
    """Bucket names (letters A-E or names, any case for letters) in suite order; None = all five."""
    if buckets is None:
        return list(BUCKET_ORDER)
    chosen = set()
    for raw in buckets:
        name = raw.strip()
        name = BUCKET_LETTERS.get(name.upper(), name) if len(name) == 1 else name
        if name not in BUCKET_ORDER:
            raise MyPTInputError(f"unknown bucket {raw!r}; choose from A-E or {', '.join(BUCKET_ORDER)}",
                                 field="buckets")
        chosen.add(name)
    return [name for name in BUCKET_ORDER if name in chosen]


def build_items(buckets: Optional[Sequence[str]] = None, use_val_templates: bool = False) -> List[EvalItem]:
    """Every prompt of the chosen buckets, in suite order."""
    items: List[EvalItem] = []
    for bucket in resolve_buckets(buckets):
        if bucket == metric_module.FORMAT_STRICT:
            items += [EvalItem(bucket, f"format_{i}", user, "") for i, user in enumerate(FORMAT_PROMPTS)]
        elif bucket == metric_module.ECHO_BASIC:
            items += [EvalItem(bucket, f"echo_{i}", user, ref) for i, (user, ref) in enumerate(ECHO_PROMPTS)]
        elif bucket == metric_module.ANTI_ECHO:
            items += [EvalItem(bucket, f"anti_echo_{i}", user, word) for i, (user, word) in enumerate(ANTI_ECHO_PROMPTS)]
        elif bucket == metric_module.REGRESSION_BASIC:
            items += [EvalItem(bucket, f"regression_{i}", user, ref) for i, (user, ref) in enumerate(REGRESSION_PROMPTS)]
        else:
            items += _operator_items(use_val_templates)
    return items


def score_items(items: Sequence[EvalItem], predictions: Sequence[str],
                thresholds: Optional[Dict[str, float]] = None) -> Dict[str, Any]:
    """Score generated replies with the sft_eval_suite metric; every bucket present is gated."""
    metric = metric_module.SftEvalSuite(keep_in_memory=True)
    return metric.compute(
        predictions=list(predictions), references=[item.reference for item in items],
        buckets=[item.bucket for item in items], item_names=[item.name for item in items],
        prompts=[item.user for item in items], operators=[item.operator for item in items],
        word_counts=[item.word_count for item in items], thresholds=thresholds)


def run_eval_suite(model, tokenizer, buckets: Optional[Sequence[str]] = None,
                   thresholds: Optional[Dict[str, float]] = None, batch_size: int = 32, max_new_tokens: int = 64,
                   use_val_templates: bool = False, progress: bool = True) -> Dict[str, Any]:
    """Generate every prompt of the chosen buckets (greedy, batched) and score them against the gates.

    Returns the report: ``passed`` (every bucket reaches its threshold), ``buckets`` ({name: {passed, failed,
    total, rate, threshold, gated, verdict, items, ...}}), totals and the settings used.
    """
    from ..generation import generate_replies

    items = build_items(buckets, use_val_templates=use_val_templates)
    predictions = generate_replies(model, tokenizer, [item.messages() for item in items],
                                   max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress,
                                   progress_desc="eval suite")
    report = score_items(items, predictions, thresholds=thresholds)
    report["settings"] = {
        "buckets": resolve_buckets(buckets), "batch_size": batch_size, "max_new_tokens": max_new_tokens,
        "use_val_templates": use_val_templates, "decoding": "greedy",
        "thresholds": {name: report["buckets"][name]["threshold"] for name in report["buckets"]},
    }
    report["timestamp"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    report["items"] = [asdict(item) for item in items]
    return report


def _short(text: Optional[str], limit: int = 120) -> str:
    text = "" if text is None else text
    text = repr(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_report(report: Dict[str, Any], verbose: bool = False) -> str:
    """The summary table (one row per bucket) and, with ``verbose``, every item; failures are always listed."""
    lines: List[str] = []
    for name, bucket in report["buckets"].items():
        failures = [item for item in bucket["items"] if not item["passed"]]
        shown = bucket["items"] if verbose else failures
        if shown:
            lines.append(f"== {name} ==")
        for item in shown:
            mark = "PASS" if item["passed"] else "FAIL"
            expected = item.get("expected", None)
            target = f"forbidden={_short(item['forbidden'], 40)}" if "forbidden" in item else f"expected={_short(expected, 60)}"
            lines.append(f"  [{mark}] {item['name']}: {item['reason']}")
            if verbose or not item["passed"]:
                lines.append(f"      prompt:    {_short(item.get('prompt'))}")
                lines.append(f"      {target}")
                lines.append(f"      generated: {_short(item['generated'])}")
        if "collapse_check" in bucket and bucket["collapse_check"]["collapsed"]:
            lines.append(f"  mode collapse: all {bucket['collapse_check']['n']} answers start alike -> bucket FAILS")
        for key in ("by_operator", "by_word_count"):
            if bucket.get(key):
                parts = ", ".join(f"{k}: {v['passed']}/{v['total']}" for k, v in bucket[key].items())
                lines.append(f"  {key}: {parts}")
    header = f"{'bucket':<18} {'passed':>8} {'rate':>7} {'threshold':>9}  verdict"
    lines += ["", header, "-" * len(header)]
    for name, bucket in report["buckets"].items():
        gate = bucket["verdict"] if bucket["gated"] else f"{bucket['verdict']} (not gated)"
        lines.append(f"{name:<18} {bucket['passed']:>3}/{bucket['total']:<4} {bucket['rate']:>6.0%} "
                     f"{bucket['threshold']:>8.0%}   {gate}")
    lines.append("-" * len(header))
    lines.append(f"OVERALL: {'PASS' if report['passed'] else 'FAIL'} "
                 f"({report['total_passed']}/{report['total']} items)")
    return "\n".join(lines)


def write_report(report: Dict[str, Any], path) -> None:
    """Write the report as pretty JSON, atomically."""
    from ..io_utils import write_json

    write_json(path, report)


__all__ = ["EvalItem", "BUCKET_ORDER", "DEFAULT_THRESHOLDS", "resolve_buckets", "build_items",
           "score_items", "run_eval_suite", "format_report", "write_report"]
