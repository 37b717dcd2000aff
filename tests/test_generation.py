"""generation.py on a tiny random MyPT model: batched == one-by-one greedy, stop tags, tags kept visible."""

from __future__ import annotations

import pytest
import torch

from mypt_hf import tokens
from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.generation import build_chat_messages, generate_replies, generate_text
from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def tiny_model(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    # Untied, wide init: a random model whose greedy replies vary from prompt to prompt (a tied, small-init
    # one just repeats its last input token, which would make the batched/single comparison vacuous).
    settings = dict(vocab_size=model_vocab_size(tokenizer), hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=256, tie_word_embeddings=False,
                    initializer_range=0.3)
    settings.update(overrides)
    model = MyPTForCausalLM(MyPTConfig(**settings)).eval()
    set_mypt_generation_config(model, tokenizer)
    return model


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_model(tokenizer)


def test_build_chat_messages():
    assert build_chat_messages("Hi") == [{"role": "system", "content": tokens.DEFAULT_SYSTEM_PROMPT},
                                         {"role": "user", "content": "Hi"}]
    assert build_chat_messages("Hi", system=None) == [{"role": "user", "content": "Hi"}]


def test_batched_generation_equals_one_by_one(model, tokenizer):
    from mypt_hf.evaluation.suite import build_items

    conversations = [item.messages() for item in build_items()]  # every eval-suite prompt, lengths vary
    batched = generate_replies(model, tokenizer, conversations, max_new_tokens=24, batch_size=7)
    single = [generate_replies(model, tokenizer, [conv], max_new_tokens=24, batch_size=1)[0]
              for conv in conversations]
    assert batched == single
    assert len(set(batched)) > len(batched) // 2, "replies should differ between prompts"


def test_no_cache_gives_same_text(model, tokenizer):
    conversations = [build_chat_messages(u) for u in ("Say OK.", "Repeat: Hello world", "Status?")]
    assert (generate_replies(model, tokenizer, conversations, max_new_tokens=16, use_cache=True)
            == generate_replies(model, tokenizer, conversations, max_new_tokens=16, use_cache=False))


def _forced(tokenizer, tag: str):
    """A model whose lm_head bias makes ``tag`` the argmax at every step."""
    model = tiny_model(tokenizer, seed=1, lm_head_bias=True)
    with torch.no_grad():
        model.lm_head.bias[tokenizer.convert_tokens_to_ids(tag)] = 1e4
    return model


def test_reply_stops_at_stop_tag_and_keeps_it(tokenizer):
    for tag in tokens.STOP_TAG_STRINGS:
        reply = generate_replies(_forced(tokenizer, tag), tokenizer, [build_chat_messages("Say OK.")] * 2,
                                 max_new_tokens=10)
        assert reply == [tag, tag]


def test_forbidden_tag_is_visible_and_runaway_is_capped(tokenizer):
    reply = generate_replies(_forced(tokenizer, tokens.USER_OPEN), tokenizer, [build_chat_messages("Say OK.")],
                             max_new_tokens=5)[0]
    assert reply == tokens.USER_OPEN * 5


def test_stop_tags_end_each_reply_or_max_tokens(model, tokenizer):
    conversations = [build_chat_messages(f"Say {w}.") for w in ("OK", "Hello", "yes", "Banana", "42")]
    for reply in generate_replies(model, tokenizer, conversations, max_new_tokens=40, batch_size=5):
        cut = [tag for tag in tokens.STOP_TAG_STRINGS if tag in reply]
        if cut:  # nothing after the first stop tag
            first = min(reply.index(tag) + len(tag) for tag in cut)
            assert first == len(reply)
        else:
            assert len(tokenizer(reply, add_special_tokens=False)["input_ids"]) >= 30


def test_generate_text_greedy_matches_chat_reply(model, tokenizer):
    messages = build_chat_messages("Say Hello.")
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt.startswith(tokens.SYSTEM_OPEN) and prompt.endswith(tokens.ASSISTANT_OPEN)
    reply = generate_replies(model, tokenizer, [messages], max_new_tokens=12)[0]
    assert generate_text(model, tokenizer, prompt, temperature=0, max_new_tokens=12, return_full_text=False) == reply
    assert generate_text(model, tokenizer, prompt, temperature=0, max_new_tokens=12) == prompt + reply
    sampled = generate_text(model, tokenizer, prompt, temperature=1.0, top_k=20, top_p=0.9, repetition_penalty=1.1,
                            max_new_tokens=12, seed=3)
    assert sampled.startswith(prompt)
    assert sampled == generate_text(model, tokenizer, prompt, temperature=1.0, top_k=20, top_p=0.9,
                                    repetition_penalty=1.1, max_new_tokens=12, seed=3)


@pytest.mark.parametrize("flags, field", [
    (["--temperature", "nan"], "temperature"), (["--temperature", "-0.5"], "temperature"),
    (["--top_p", "-0.5"], "top_p"), (["--top_p", "1.5"], "top_p"), (["--top_k", "-3"], "top_k"),
    (["--repetition_penalty", "-2"], "repetition_penalty"), (["--repetition_penalty", "0"], "repetition_penalty"),
    (["--max_new_tokens", "0"], "max_new_tokens"),
])
def test_generate_refuses_bad_sampling_settings(tmp_path, capsys, flags, field):
    from mypt_hf.cli import main

    assert main(["generate", "--model", str(tmp_path), "--user", "Say Hello.", *flags]) == 2
    err = capsys.readouterr().err
    assert f"field '{field}'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("source", ["--prompt", "--user"])
def test_generate_refuses_an_empty_prompt(tmp_path, capsys, source):
    from mypt_hf.cli import main

    assert main(["generate", "--model", str(tmp_path), source, "  "]) == 2
    assert "the prompt is empty" in capsys.readouterr().err
