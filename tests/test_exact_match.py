"""Held-out exact match (operator validation split): scoring rule, breakdowns, prompts, CLI."""

from __future__ import annotations

import json

import pytest

from mypt_hf.cli import main as cli_main
from mypt_hf.data.schema import make_episode, save_episodes_jsonl
from mypt_hf.evaluation import exact_match as em
from mypt_hf.tokens import ASSISTANT_CLOSE, EOT, OPERATOR_SYSTEM_PROMPT_EN


def _episodes():
    return [
        make_episode("Copy: `red fox`", "red fox", system=OPERATOR_SYSTEM_PROMPT_EN, operator="COPY",
                     payload="red fox", expected="red fox"),
        make_episode("Wrap 'owl'", "[owl]", system=OPERATOR_SYSTEM_PROMPT_EN, operator="WRAP", payload="owl",
                     expected="[owl]"),
        make_episode('Unquote "Blue sky now"', "Blue sky now", system=OPERATOR_SYSTEM_PROMPT_EN,
                     operator="EXTRACT", payload="Blue sky now", expected="Blue sky now"),
    ]


def test_rule_is_case_sensitive_with_one_trailing_period():
    assert em.is_exact("red fox.", "red fox")
    assert em.is_exact("red fox", "red fox.")
    assert not em.is_exact("Red fox", "red fox")
    assert not em.is_exact("red fox..", "red fox")
    assert not em.is_exact("[owl", "[owl]")
    assert em.reply_text(f" [owl]{ASSISTANT_CLOSE}{EOT}junk") == "[owl]"


def test_breakdowns_and_prompts_stop_before_the_answer(monkeypatch):
    seen = {}

    def fake_generate(model, tokenizer, conversations, **kwargs):
        seen["conversations"] = conversations
        return [f"red fox{ASSISTANT_CLOSE}", f"owl{ASSISTANT_CLOSE}", f"Blue sky now.{EOT}"]

    monkeypatch.setattr(em, "generate_replies", fake_generate)
    result = em.episode_exact_match(None, None, _episodes())
    assert (result["passed"], result["total"]) == (2, 3)
    assert result["by_operator"]["WRAP"] == {"passed": 0, "total": 1, "rate": 0.0}
    assert result["by_operator"]["EXTRACT"]["rate"] == 1.0
    assert result["by_word_count"]["1"]["total"] == 1 and result["by_word_count"]["3"]["passed"] == 1
    for conversation in seen["conversations"]:
        assert [m["role"] for m in conversation] == ["system", "user"]  # the answer is never in the prompt


def test_cli_on_a_tiny_random_model(tmp_path):
    from mypt_hf.configuration_mypt import MyPTConfig
    from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
    from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size

    tokenizer = load_tokenizer()
    model = MyPTForCausalLM(MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, max_position_embeddings=128))
    set_mypt_generation_config(model, tokenizer)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    save_episodes_jsonl(_episodes(), tmp_path / "val.jsonl")
    out = tmp_path / "em.json"
    code = cli_main(["eval-episodes", "--model", str(tmp_path / "model"), "--episodes", str(tmp_path / "val.jsonl"),
                     "--max_new_tokens", "4", "--output", str(out), "--min_exact_match", "0.9"])
    assert code == 1  # a random model copies nothing
    result = json.loads(out.read_text())
    assert result["total"] == 3 and result["exact_match"] < 0.9
    assert cli_main(["eval-episodes", "--model", str(tmp_path / "model"), "--episodes",
                     str(tmp_path / "missing.jsonl")]) == 2


def test_no_episodes_is_an_error():
    with pytest.raises(ValueError):
        em.episode_exact_match(None, None, [])
