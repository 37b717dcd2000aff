"""Exact match of a model's greedy replies against held-out episodes (e.g. the operator generator's
own validation split: unseen templates, unseen payloads).

The gate's operator bucket asks 36 reserved items; this scores any number of episodes that carry
their expected answer, with the same rule as bucket E (case-sensitive, one trailing period
allowed) and breakdowns by ``_meta.operator`` and by payload word count.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..errors import MyPTInputError
from ..generation import generate_replies
from .sft_eval_suite import sft_eval_suite as metric_module


def reply_text(generated: str) -> str:
    """The reply as the suite reads it: cut at the first stop tag, stripped."""
    return metric_module.extract_response(generated)


def is_exact(reply: str, expected: str) -> bool:
    """Bucket E's rule: case-sensitive equality, one trailing period allowed on either side."""
    return metric_module.check_operator(reply, expected)["passed"]


def _expected(episode: Mapping[str, Any], row: int) -> str:
    meta = episode.get("_meta") or {}
    expected = meta.get("expected")
    if expected is None:
        assistants = [m["content"] for m in episode["messages"] if m["role"] == "assistant"]
        if len(assistants) != 1:
            raise MyPTInputError("episode has no _meta.expected and not exactly one assistant turn",
                                 line=row, field="_meta.expected")
        expected = assistants[0]
    return expected


def episode_exact_match(model, tokenizer, episodes: Sequence[Mapping[str, Any]], *, batch_size: int = 64,
                        max_new_tokens: int = 32, progress: bool = False) -> Dict[str, Any]:
    """Greedy-generate the reply of every episode (its messages up to the first assistant turn) and
    score it against ``_meta.expected`` (else the assistant turn).

    Returns ``{"exact_match", "passed", "total", "by_operator", "by_word_count", "items"}``.
    """
    if len(episodes) == 0:
        raise MyPTInputError("no episodes to score", field="episodes")
    prompts: List[List[Dict[str, str]]] = []
    expected: List[str] = []
    for row, episode in enumerate(episodes, 1):
        messages = list(episode["messages"])
        first_assistant = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), None)
        if first_assistant is None:
            raise MyPTInputError("episode has no assistant turn", line=row, field="messages")
        prompts.append([{"role": m["role"], "content": m["content"]} for m in messages[:first_assistant]])
        expected.append(_expected(episode, row))
    generated = generate_replies(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                 progress=progress)
    by_operator: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    by_words: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    items = []
    for episode, prompt, want, got in zip(episodes, prompts, expected, generated):
        reply = reply_text(got)
        ok = is_exact(reply, want)
        meta = episode.get("_meta") or {}
        operator = meta.get("operator") or "-"
        payload: Optional[str] = meta.get("payload")
        words = str(len(payload.split())) if payload else "-"
        for table, key in ((by_operator, operator), (by_words, words)):
            table[key][0] += int(ok)
            table[key][1] += 1
        items.append({"prompt": prompt[-1]["content"], "expected": want, "generated": got, "passed": ok})
    passed = sum(item["passed"] for item in items)

    def rates(table: Dict[str, List[int]]) -> Dict[str, Dict[str, float]]:
        return {k: {"passed": p, "total": t, "rate": p / t} for k, (p, t) in sorted(table.items())}

    return {"exact_match": passed / len(items), "passed": passed, "total": len(items),
            "by_operator": rates(by_operator), "by_word_count": rates(by_words), "items": items}


def format_exact_match(result: Mapping[str, Any], examples: int = 5) -> str:
    """A short text report: overall rate, breakdowns, a few failures."""
    lines = [f"exact match: {result['passed']}/{result['total']} = {result['exact_match']:.1%}"]
    for title, key in (("by operator", "by_operator"), ("by payload word count", "by_word_count")):
        parts = ", ".join(f"{k}: {v['passed']}/{v['total']} ({v['rate']:.0%})" for k, v in result[key].items())
        lines.append(f"  {title}: {parts}")
    failures = [item for item in result["items"] if not item["passed"]][:examples]
    for item in failures:
        lines.append(f"  [FAIL] {item['prompt']!r}: expected {item['expected']!r}, generated {item['generated']!r}")
    return "\n".join(lines)


__all__ = ["reply_text", "is_exact", "episode_exact_match", "format_exact_match"]
