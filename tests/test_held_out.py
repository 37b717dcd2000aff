"""The held-out gate sets: large enough to decide, disjoint from what the generators emit, fixed (issue 20)."""

from __future__ import annotations

from collections import Counter

from mypt_hf.data.format_lock import format_lock
from mypt_hf.evaluation import held_out
from mypt_hf.evaluation.sft_eval_suite import sft_eval_suite as metric


def test_every_bucket_has_enough_items_and_no_prompt_twice():
    items = held_out.held_out_items()
    counts = Counter(item.bucket for item in items)
    for bucket in (metric.ECHO_BASIC, metric.ANTI_ECHO, metric.REGRESSION_BASIC, metric.OPERATORS):
        assert counts[bucket] >= held_out.MIN_ITEMS, (bucket, counts[bucket])
        prompts = [item.user for item in items if item.bucket == bucket]
        assert len(prompts) == len(set(prompts)), bucket
    by_op = Counter(item.operator for item in items if item.bucket == metric.OPERATORS)
    assert min(by_op.values()) >= 20 and set(by_op) == {"COPY", "WRAP", "EXTRACT"}


def test_the_first_sets_items_are_kept():
    prompts = {(item.user, item.reference) for item in held_out.held_out_items()}
    assert set(held_out.FIRST_ECHO) <= prompts and set(held_out.FIRST_REGRESSION) <= prompts
    from mypt_hf.data.operators import expected_output, render

    assert {(render(t, p), expected_output(op, p)) for op, t, p in held_out.FIRST_OPERATORS} <= prompts


def test_fixed_items():
    first = [(i.bucket, i.user, i.reference) for i in held_out.held_out_items()]
    assert first == [(i.bucket, i.user, i.reference) for i in held_out.held_out_items()]


def test_disjoint_from_generators_and_suite():
    assert held_out.held_out_overlaps() == []


def test_regression_facts_are_the_ones_format_lock_teaches():
    answers = {m[1]["content"]: m[2]["content"] for m in
               (e for e in format_lock(mode="full", math="include")["messages"])
               if len(m) >= 3 and m[1]["role"] == "user"}
    for country, city in held_out.TAUGHT_CAPITALS:
        assert answers.get(f"Capital of {country}?") == f"{city}.", country


def test_format_items_mirror_every_prompt():
    items = held_out.held_out_items()
    formats = held_out.format_items(items)
    assert len(formats) == len(items) and {f.bucket for f in formats} == {metric.FORMAT_STRICT}
    assert [f.user for f in formats] == [i.user for i in items]
