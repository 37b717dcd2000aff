"""Exact compatibility with the original preparer: GPT-2 tokenizer + chat template + assistant mask reproduce
the ids and loss mask that MyPT's prepare_chat_sft.py wrote, token for token, for all 605 fixture episodes."""

from __future__ import annotations

import json

import pytest

from mypt_hf.data.schema import normalize_row
from mypt_hf.tokenization_mypt import build_gpt2_tokenizer


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_prepare_parity_all_episodes(parity_dir, gpt2_tiktoken_path):
    inputs = _read(parity_dir / "prepare" / "input.jsonl")
    expected = _read(parity_dir / "prepare" / "expected.jsonl")
    assert len(inputs) == len(expected) == 605
    tokenizer = build_gpt2_tokenizer(gpt2_tiktoken_path)
    multi_turn = 0
    for number, (row, want) in enumerate(zip(inputs, expected), 1):
        assert row["messages"] == want["messages"], f"fixture rows out of order at line {number}"
        # The original always wrote the default "You are MyPT." block; the rows carry it as top-level `system`,
        # which normalize_row turns into the leading system message.
        episode = normalize_row(row, where="input.jsonl", row_number=number)
        assert episode["messages"][0] == {"role": "system", "content": want["system"]}
        multi_turn += sum(m["role"] == "assistant" for m in episode["messages"]) > 1
        out = tokenizer.apply_chat_template(episode["messages"], tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        if ids != want["input_ids"] or mask != want["mask"]:
            first = next((i for i, (a, b) in enumerate(zip(ids, want["input_ids"])) if a != b),
                         min(len(ids), len(want["input_ids"])))
            pytest.fail(f"line {number}: ids/mask differ (first id difference at token {first}): "
                        f"got ids {ids} mask {mask}, expected ids {want['input_ids']} mask {want['mask']}")
    assert multi_turn >= 2  # the hand-written 2-turn conversations are covered


def test_prepare_parity_labels_form(parity_dir, gpt2_tiktoken_path):
    """The HF form of the mask: labels = ids where supervised, else -100 (what prepare writes)."""
    row = _read(parity_dir / "prepare" / "input.jsonl")[0]
    want = _read(parity_dir / "prepare" / "expected.jsonl")[0]
    tokenizer = build_gpt2_tokenizer(gpt2_tiktoken_path)
    out = tokenizer.apply_chat_template(normalize_row(row, where="x", row_number=1)["messages"], tokenize=True,
                                        return_dict=True, return_assistant_tokens_mask=True)
    labels = [i if m else -100 for i, m in zip(out["input_ids"], out["assistant_masks"])]
    assert labels == [i if m else -100 for i, m in zip(want["input_ids"], want["mask"])]
    assert labels[-2:] == [50262, 50275]  # </myPT_assistant> and the final <myPT_eot> are targets
