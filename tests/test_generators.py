"""Format-lock and echo generators: sizes, correct answers, determinism, reserved words, BPE-safe filter."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from mypt_hf.data.echo import echo, in_prompt_token_counts
from mypt_hf.data.format_lock import format_lock
from mypt_hf.data.reserved import contains_reserved
from mypt_hf.data.schema import load_episodes_jsonl, save_episodes_jsonl
from mypt_hf.errors import MyPTInputError
from mypt_hf.tokens import DEFAULT_SYSTEM_PROMPT


@pytest.fixture(scope="module")
def gpt2(gpt2_tiktoken_path):
    from mypt_hf.tokenization_mypt import build_gpt2_tokenizer

    return build_gpt2_tokenizer(gpt2_tiktoken_path)


@pytest.fixture(scope="module")
def fl_full():
    return format_lock("full", "include")


@pytest.fixture(scope="module")
def echo_beta(gpt2):
    return echo("exclude", tokenizer=gpt2)


@pytest.fixture(scope="module")
def echo_gamma(gpt2):
    return echo("only", tokenizer=gpt2)


def _qa(episode):
    messages = episode["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    return messages[0]["content"], messages[1]["content"], messages[2]["content"]


# ------------------------------------------------------------------------------------ format lock
def test_format_lock_sizes_and_language():
    minimal = format_lock("minimal", "exclude")
    assert 1000 <= len(minimal) <= 1400
    assert Counter(m["language"] for m in minimal["_meta"]) == {"en": 1289, "de": 78}


def test_format_lock_full_include(fl_full):
    assert 11000 <= len(fl_full) <= 14000
    categories = Counter(m["category"] for m in fl_full["_meta"])
    assert categories["math_add"] == 4284 and categories["math_sub"] == 3444 and categories["math_mul"] == 1024
    assert categories["say"] > 500 and categories["capital"] == 105
    questions = [e["messages"][1]["content"] for e in fl_full]
    assert len(questions) == len(set(questions)), "a question appears twice"


_MATH = re.compile(r"^(?:What is |Was ist )?(\d+) ?(\+|-|×|\*|÷|/|plus|minus|times|mal|divided by|geteilt durch) ?(\d+)\?$")


def test_format_lock_math_is_correct_and_language_by_template(fl_full):
    checked = 0
    ops = {"+": int.__add__, "plus": int.__add__, "-": int.__sub__, "minus": int.__sub__, "×": int.__mul__,
           "*": int.__mul__, "times": int.__mul__, "mal": int.__mul__, "÷": int.__floordiv__, "/": int.__floordiv__,
           "divided by": int.__floordiv__, "geteilt durch": int.__floordiv__}
    for episode in fl_full:
        system, question, answer = _qa(episode)
        assert system == DEFAULT_SYSTEM_PROMPT
        meta = episode["_meta"]
        assert meta["expected"] == answer
        if not meta["category"].startswith("math"):
            continue
        if question.startswith("Add "):
            a, b = map(int, re.findall(r"\d+", question)); want = a + b
        elif question.startswith("Subtract "):
            b, a = map(int, re.findall(r"\d+", question)); want = a - b
        elif question.startswith("Multiply "):
            a, b = map(int, re.findall(r"\d+", question)); want = a * b
        else:
            match = _MATH.match(question)
            assert match, question
            a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
            if op in ("÷", "/", "divided by", "geteilt durch"):
                assert a % b == 0
            want = ops[op](a, b)
        assert answer == f"{want}.", question
        assert want >= 0
        # English "3 plus 4?" is English (the original tagged it German)
        assert meta["language"] == ("de" if question.startswith("Was ist") else "en"), question
        checked += 1
    assert checked > 10000


def test_format_lock_math_exclude_drops_all_math():
    data = format_lock("full", "exclude")
    assert not [m for m in data["_meta"] if m["category"].startswith("math")]
    assert not [e for e in data if re.search(r"\d+ (?:\+|-|×|mal|plus|minus) \d+", e["messages"][1]["content"])]
    only = format_lock("minimal", "only")
    assert {m["category"].split("_")[0] for m in only["_meta"]} == {"math"}


def test_format_lock_deterministic_and_seeded(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    save_episodes_jsonl(format_lock("minimal", "minimal", seed=3), a)
    save_episodes_jsonl(format_lock("minimal", "minimal", seed=3), b)
    assert a.read_bytes() == b.read_bytes()
    save_episodes_jsonl(format_lock("minimal", "minimal", seed=4), b)
    assert a.read_bytes() != b.read_bytes()
    assert len(load_episodes_jsonl(a)) == len(format_lock("minimal", "minimal"))


def test_format_lock_bad_mode():
    with pytest.raises(MyPTInputError, match="mode"):
        format_lock("huge", "include")
    with pytest.raises(MyPTInputError, match="math"):
        format_lock("full", "some")


# -------------------------------------------------------------------------------------------- echo
def _check_echo(dataset, gpt2, *, gibberish_allowed: bool):
    for episode in dataset:
        system, question, answer = _qa(episode)
        meta = episode["_meta"]
        assert system == DEFAULT_SYSTEM_PROMPT
        assert question == meta["template"].replace("{payload}", meta["payload"])
        assert answer == meta["expected"]
        category = meta["category"]
        if "anti_echo" in category:
            assert answer in ("Unknown.", "No.", "Unbekannt.", "Nein.")
            assert meta["payload"].lower() not in answer.lower()
            assert f'"{meta["payload"]}"' in question
        else:  # echo: the payload verbatim, no added period
            assert answer == meta["payload"], question
        if not gibberish_allowed:
            assert "gibberish" not in category
    questions = [e["messages"][1]["content"] for e in dataset]
    assert len(questions) == len(set(questions)), "duplicate question"


def _shares(dataset):
    categories = Counter(m["category"] for m in dataset["_meta"])
    anti = categories["anti_echo_en"] + categories["anti_echo_de"]
    contrast = sum(v for k, v in categories.items() if k.startswith("contrast"))
    return categories, anti, contrast


def test_echo_beta(echo_beta, gpt2):
    assert 3000 <= len(echo_beta) <= 5000
    _check_echo(echo_beta, gpt2, gibberish_allowed=False)
    categories, anti, contrast = _shares(echo_beta)
    # ratios are shares of the output rows, to within one row
    assert abs(anti - 0.2 * len(echo_beta)) <= 1 and abs(contrast - 0.2 * len(echo_beta)) <= 1
    assert categories["echo_word_de"] > 0 and categories["echo_sentence_en"] > 0


def test_echo_gamma(echo_gamma, gpt2):
    assert 2000 <= len(echo_gamma) <= 3000
    _check_echo(echo_gamma, gpt2, gibberish_allowed=True)
    categories, anti, contrast = _shares(echo_gamma)
    assert set(categories) <= {"echo_gibberish_en", "echo_gibberish_de", "anti_echo_en", "anti_echo_de",
                               "contrast_echo_quote", "contrast_echo_prefix", "contrast_anti_echo"}
    assert abs(anti - 0.2 * len(echo_gamma)) <= 1 and abs(contrast - 0.2 * len(echo_gamma)) <= 1
    # contrast groups: same payload as prefix echo, quoted echo and anti-echo
    groups = {}
    for meta in echo_gamma["_meta"]:
        if meta["group"]:
            groups.setdefault(meta["group"], set()).add((meta["payload"], meta["category"]))
    full = [g for g in groups.values() if len(g) == 3]
    assert len(full) >= len(groups) - 1
    assert all(len({p for p, _ in g}) == 1 for g in groups.values())


def test_echo_bpe_safe_filter_gpt2(echo_gamma, gpt2):
    words = sorted({m["payload"] for m in echo_gamma["_meta"] if "gibberish" in m["category"]})
    assert len(words) > 300
    # the in-prompt count: the word after a prefix, with its leading space
    encoded = gpt2([" " + w for w in words], add_special_tokens=False)["input_ids"]
    assert max(len(ids) for ids in encoded) <= 4
    assert in_prompt_token_counts(gpt2, ["Blax", "Hello"]) == [len(gpt2(" Blax")["input_ids"]), 1]
    strict = echo("only", max_target_tokens=1, tokenizer=gpt2)
    single = {m["payload"] for m in strict["_meta"] if m["category"].startswith("echo_gibberish")}
    assert single and all(len(gpt2(" " + w, add_special_tokens=False)["input_ids"]) == 1 for w in single)
    unfiltered = echo("only", bpe_safe=False, max_target_tokens=1)  # no tokenizer needed
    long_words = [m["payload"] for m in unfiltered["_meta"] if m["category"].startswith("echo_gibberish")
                  and len(gpt2(" " + m["payload"], add_special_tokens=False)["input_ids"]) > 1]
    assert long_words, "without the filter the limit is not applied"


def test_echo_ratios_and_max_examples(gpt2):
    data = echo("include", anti_echo_ratio=0.1, contrast_ratio=0.3, max_examples=1000, tokenizer=gpt2)
    assert len(data) == 1000
    _, anti, contrast = _shares(data)
    assert anti == 100 and contrast == 300
    with pytest.raises(MyPTInputError):
        echo("exclude", anti_echo_ratio=0.6, contrast_ratio=0.5, tokenizer=gpt2)
    with pytest.raises(MyPTInputError):
        echo("sometimes", tokenizer=gpt2)


def test_echo_deterministic(gpt2, tmp_path, echo_beta):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    save_episodes_jsonl(echo_beta, a)
    save_episodes_jsonl(echo("exclude", tokenizer=gpt2), b)
    assert a.read_bytes() == b.read_bytes()


def test_no_reserved_words_anywhere(fl_full, echo_beta, echo_gamma):
    for dataset in (fl_full, format_lock("minimal", "include"), echo_beta, echo_gamma):
        for episode in dataset:
            for message in episode["messages"]:
                assert not contains_reserved(message["content"]), message["content"]


def test_echo_letter_gibberish_pool_size():
    """γ's made-up word pool: sized by gibberish_words_en/_de, letter-level words on request (longer and more
    varied than syllable pairs), still unique, not real, not reserved, within max_target_tokens; bad sizes refused."""
    from mypt_hf.tokenization_mypt import load_tokenizer

    tokenizer = load_tokenizer()
    default = echo(gibberish="only", tokenizer=tokenizer)
    letters = echo(gibberish="only", tokenizer=tokenizer, gibberish_words_en=500, gibberish_words_de=20,
                   gibberish_letters=True, max_target_tokens=10)
    assert echo(gibberish="only", tokenizer=tokenizer, gibberish_words_en=500, gibberish_words_de=20,
                gibberish_letters=True, max_target_tokens=10)["_meta"] == letters["_meta"]

    def words(dataset, category):
        return {m["payload"] for m in dataset["_meta"] if m["category"] == category}

    en, en_default = words(letters, "echo_gibberish_en"), words(default, "echo_gibberish_en")
    assert len(en) == 500 and len(en_default) == 300 and len(words(letters, "echo_gibberish_de")) == 20
    assert max(in_prompt_token_counts(tokenizer, sorted(en))) <= 10
    assert sum(map(len, en)) / len(en) > sum(map(len, en_default)) / len(en_default) + 2
    assert not any(contains_reserved(w) for w in en)
    with pytest.raises(MyPTInputError, match="gibberish_words_en"):
        echo(gibberish="only", tokenizer=tokenizer, gibberish_words_en=-1)
