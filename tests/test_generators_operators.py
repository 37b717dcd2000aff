"""Operator generator: counts, answers, uniqueness, template split, reserved eval items, CLI errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from mypt_hf.cli import main
from mypt_hf.data.operators import (CONTRAST_TEMPLATES, OPERATORS, TRAIN_TEMPLATES, VAL_TEMPLATES, operators,
                                    parse_word_dist)
from mypt_hf.data.reserved import (RESERVED_OPERATOR_PAYLOADS, RESERVED_OPERATOR_TEMPLATES, contains_reserved)
from mypt_hf.data.schema import save_episodes_jsonl
from mypt_hf.errors import MyPTInputError
from mypt_hf.tokens import OPERATOR_SYSTEM_PROMPT_DE, OPERATOR_SYSTEM_PROMPT_EN


@pytest.fixture(scope="module")
def gpt2(gpt2_tiktoken_path):
    from mypt_hf.tokenization_mypt import build_gpt2_tokenizer

    return build_gpt2_tokenizer(gpt2_tiktoken_path)


@pytest.fixture(scope="module")
def splits(gpt2):
    return operators(n_train=9000, n_val=1000, tokenizer=gpt2)


def test_counts_and_word_distribution(splits):
    assert len(splits["train"]) == 9000 and len(splits["validation"]) == 1000
    target = [0.35, 0.30, 0.20, 0.15]
    for split in ("train", "validation"):
        metas = splits[split]["_meta"]
        words = Counter(len(m["payload"].split()) for m in metas)
        for k, share in enumerate(target, 1):
            assert abs(words[k] / len(metas) - share) <= 0.03
        ops = Counter(m["operator"] for m in metas)
        assert max(ops.values()) - min(ops.values()) <= 1
        languages = Counter(m["language"] for m in metas)
        assert 0.05 < languages["de"] / len(metas) < 0.15


def test_every_answer_correct(splits, gpt2):
    for split in ("train", "validation"):
        for episode in splits[split]:
            (system, user, assistant) = [m["content"] for m in episode["messages"]]
            meta = episode["_meta"]
            payload, op = meta["payload"], meta["operator"]
            assert system == (OPERATOR_SYSTEM_PROMPT_DE if meta["language"] == "de" else OPERATOR_SYSTEM_PROMPT_EN)
            assert user == meta["template"].replace("{payload}", payload)
            assert "{{" not in user and "}}" not in user and "{payload}" not in user
            assert assistant == meta["expected"]
            if op == "COPY":
                assert assistant == payload and payload in user
            elif op == "WRAP":
                assert assistant == f"[{payload}]"
            else:
                assert op == "EXTRACT" and assistant == payload and f'"{payload}"' in user
                assert '"' not in assistant
    lengths = gpt2(splits["train"]["_meta"][0]["payload"], add_special_tokens=False)["input_ids"]
    assert len(lengths) <= 12


def test_max_tokens_checked_with_tokenizer(gpt2):
    small = operators(n_train=300, n_val=30, max_words=2, word_dist="0.5,0.5", max_tokens=3, tokenizer=gpt2)
    for split in small.values():
        encoded = gpt2([m["payload"] for m in split["_meta"]], add_special_tokens=False)["input_ids"]
        assert max(len(ids) for ids in encoded) <= 3


def test_payloads_unique_and_disjoint(splits):
    train = [m["payload"] for m in splits["train"]["_meta"]]
    val = [m["payload"] for m in splits["validation"]["_meta"]]
    assert len(train) == len(set(train)) and len(val) == len(set(val))
    assert not set(train) & set(val)


def test_templates_disjoint_and_used(splits):
    for op in TRAIN_TEMPLATES:
        assert not set(TRAIN_TEMPLATES[op]) & set(VAL_TEMPLATES[op])
        for reserved in RESERVED_OPERATOR_TEMPLATES[op]:
            assert reserved not in TRAIN_TEMPLATES[op] and reserved not in VAL_TEMPLATES[op]
        assert len(RESERVED_OPERATOR_TEMPLATES[op]) >= 3
    all_train = {t for ts in TRAIN_TEMPLATES.values() for t in ts}
    all_val = {t for ts in VAL_TEMPLATES.values() for t in ts}
    assert {m["template"] for m in splits["train"]["_meta"]} <= all_train
    assert {m["template"] for m in splits["validation"]["_meta"]} <= all_val
    assert len({m["template"] for m in splits["train"]["_meta"]}) == len(all_train)


def test_reserved_eval_items_never_generated(splits):
    assert len(RESERVED_OPERATOR_PAYLOADS) >= 30
    assert all(contains_reserved(p) for p in RESERVED_OPERATOR_PAYLOADS)
    for split in splits.values():
        for episode in split:
            for message in episode["messages"]:
                assert not contains_reserved(message["content"]), message["content"]


def test_deterministic(gpt2, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    save_episodes_jsonl(operators(n_train=500, n_val=50, tokenizer=gpt2)["train"], a)
    save_episodes_jsonl(operators(n_train=500, n_val=50, tokenizer=gpt2)["train"], b)
    assert a.read_bytes() == b.read_bytes()
    save_episodes_jsonl(operators(n_train=500, n_val=50, seed_train=7, tokenizer=gpt2)["train"], b)
    assert a.read_bytes() != b.read_bytes()


def test_bad_arguments(gpt2):
    with pytest.raises(MyPTInputError, match="seed_val"):
        operators(n_train=10, n_val=10, seed_train=5, seed_val=5, tokenizer=gpt2)
    with pytest.raises(MyPTInputError, match="word_dist"):
        parse_word_dist("a,b", 4)
    with pytest.raises(MyPTInputError, match="word_dist"):
        parse_word_dist("0,0,0,1", 2)
    assert parse_word_dist("1", 3) == [1.0, 0.0, 0.0]
    with pytest.raises(MyPTInputError, match="payload space"):
        operators(n_train=10_000_000, n_val=10, max_words=1, word_dist="1", tokenizer=gpt2)
    with pytest.raises(MyPTInputError, match="payload space"):  # the token limit empties the space at run time
        operators(n_train=2000, n_val=10, max_words=4, word_dist="0,0,0,1", max_tokens=2, tokenizer=gpt2)


def test_cli_writes_files_and_metadata(gpt2_tiktoken_path, tmp_path):
    out = tmp_path / "ops"
    assert main(["generate-operators", "--output_dir", str(out), "--n_train", "300", "--n_val", "30",
                 "--tokenizer", str(gpt2_tiktoken_path)]) == 0
    assert sum(1 for _ in open(out / "operator_train.jsonl")) == 300
    assert sum(1 for _ in open(out / "operator_val.jsonl")) == 30
    meta = json.loads((out / "dataset_metadata.json").read_text())
    assert meta["payload_overlap"] is False and meta["template_overlap"] is False
    assert meta["version"] and meta["train"]["by_operator"]["COPY"] == 100


@pytest.mark.parametrize("extra", [["--seed_val", "42"], ["--word_dist", "0.5,nope"], ["--max_words", "7"],
                                   ["--n_train", "99999999", "--max_words", "1", "--word_dist", "1"],
                                   ["--n_train", "0"], ["--n_val", "0"]])
def test_cli_errors_exit_2_nothing_written(gpt2_tiktoken_path, tmp_path, extra):
    out = tmp_path / "ops"
    assert main(["generate-operators", "--output_dir", str(out), "--tokenizer", str(gpt2_tiktoken_path)] + extra) == 2
    assert not out.exists()


def test_novel_word_share_payloads():
    """Made-up-word payloads: about the requested share more of them, in both splits, unique, never reserved,
    answers right, deterministic. (The default pools already hold some syllable words, hence the baseline.)"""
    from mypt_hf.data.wordlists import ADJECTIVES_EN, COMMON_WORDS_EN, GERMAN_WORDS

    known = {w.lower() for w in COMMON_WORDS_EN + ADJECTIVES_EN + GERMAN_WORDS} | {"the", "a", "and", "or", "with", "und"}

    def made_up(payload: str) -> bool:
        return any(word.isalpha() and word.lower() not in known for word in payload.split())

    plain = operators(n_train=600, n_val=60)
    novel = operators(n_train=600, n_val=60, novel_word_share=0.5, max_tokens=20)
    again = operators(n_train=600, n_val=60, novel_word_share=0.5, max_tokens=20)
    assert novel["train"]["_meta"] == again["train"]["_meta"]
    for split in ("train", "validation"):
        metas = novel[split]["_meta"]
        baseline = sum(made_up(m["payload"]) for m in plain[split]["_meta"]) / len(plain[split])
        share = sum(made_up(m["payload"]) for m in metas) / len(metas)
        assert baseline < 0.25 and share - baseline > 0.3, (split, baseline, share)
        for meta in metas:
            assert not contains_reserved(meta["payload"])
            assert meta["expected"] == (f"[{meta['payload']}]" if meta["operator"] == "WRAP" else meta["payload"])
    payloads = [m["payload"] for s in ("train", "validation") for m in novel[s]["_meta"]]
    assert len(set(payloads)) == len(payloads)
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(MyPTInputError, match="novel_word_share"):
            operators(n_train=10, n_val=10, novel_word_share=bad)


def test_bracket_contrast_templates():
    """Contrast phrasings: only WRAP mentions brackets, COPY verbs recur bracketed, nothing leaks into the
    validation or reserved eval templates, and validation is the same episodes with or without them."""
    import re

    bracket = re.compile(r"\[|bracket|Klammer", re.IGNORECASE)
    for op in OPERATORS:
        contrast = set(CONTRAST_TEMPLATES[op])
        assert not contrast & (set(TRAIN_TEMPLATES[op]) | set(VAL_TEMPLATES[op]) | set(RESERVED_OPERATOR_TEMPLATES[op]))
        assert all(t.count("{payload}") == 1 for t in contrast)
    assert all(bracket.search(t) for t in CONTRAST_TEMPLATES["WRAP"])
    assert not any(bracket.search(t) for t in CONTRAST_TEMPLATES["COPY"] + TRAIN_TEMPLATES["COPY"])
    copy_verbs = {t.split()[0].strip(":,") for t in CONTRAST_TEMPLATES["COPY"] + TRAIN_TEMPLATES["COPY"]}
    wrap_verbs = {t.split()[0].strip(":,") for t in CONTRAST_TEMPLATES["WRAP"]}
    assert len(copy_verbs & wrap_verbs) >= 15

    plain = operators(n_train=900, n_val=90)
    contrast = operators(n_train=900, n_val=90, bracket_contrast=True)
    assert contrast["validation"]["_meta"] == plain["validation"]["_meta"]
    assert [m["payload"] for m in contrast["train"]["_meta"]] == [m["payload"] for m in plain["train"]["_meta"]]
    used = {m["template"] for m in contrast["train"]["_meta"]}
    assert used & set(CONTRAST_TEMPLATES["WRAP"]) and used & set(CONTRAST_TEMPLATES["COPY"])
    assert not used & set(CONTRAST_TEMPLATES["WRAP"]) & {m["template"] for m in plain["train"]["_meta"]}
    for meta in contrast["train"]["_meta"]:
        assert meta["expected"] == (f"[{meta['payload']}]" if meta["operator"] == "WRAP" else meta["payload"])


def test_cli_bracket_contrast_recorded(gpt2_tiktoken_path, tmp_path):
    out = tmp_path / "ops"
    assert main(["generate-operators", "--output_dir", str(out), "--n_train", "300", "--n_val", "30",
                 "--bracket_contrast", "--tokenizer", str(gpt2_tiktoken_path)]) == 0
    meta = json.loads((out / "dataset_metadata.json").read_text())
    assert meta["args"]["bracket_contrast"] is True and meta["template_overlap"] is False
    assert set(CONTRAST_TEMPLATES["WRAP"]) <= set(meta["train_templates"]["WRAP"])
