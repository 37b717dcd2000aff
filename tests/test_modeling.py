"""MyPTForCausalLM behaves like a transformers causal LM and like the original MyPT GPT."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mypt_hf.configuration_mypt import MyPTConfig, swiglu_hidden_size
from mypt_hf.modeling_mypt import MyPTForCausalLM, compute_rope_inv_freq, set_mypt_generation_config

torch.set_num_threads(1)

TINY = dict(vocab_size=96, n_embd=32, n_head=4, n_layer=2, block_size=64)


def make_model(seed: int = 0, **overrides) -> MyPTForCausalLM:
    torch.manual_seed(seed)
    model = MyPTForCausalLM(MyPTConfig(**{**TINY, **overrides})).eval()
    # Non-trivial norms and biases so that a wrong mapping shows in the logits.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm.weight" in name:
                param.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                param.normal_(0.0, 0.1)
    return model


def llama_twin(model: MyPTForCausalLM) -> LlamaForCausalLM:
    cfg = model.config
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings, rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=cfg.tie_word_embeddings, attention_bias=cfg.bias,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta})).eval()
    llama.load_state_dict(model.state_dict(), strict=True)
    return llama


# ------------------------------------------------------------------------------------------- config


def test_config_accepts_original_and_hf_names():
    a = MyPTConfig(n_embd=64, n_head=4, n_layer=3, block_size=128, vocab_size=512, tie_weights=False)
    b = MyPTConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=3, max_position_embeddings=128,
                   vocab_size=512, tie_word_embeddings=False)
    for c in (a, b):
        assert (c.hidden_size, c.num_attention_heads, c.num_hidden_layers, c.max_position_embeddings) == (64, 4, 3, 128)
        assert (c.n_embd, c.n_head, c.n_layer, c.block_size) == (64, 4, 3, 128)
        assert c.tie_word_embeddings is False
    assert a.to_dict()["hidden_size"] == 64 and "n_embd" not in a.to_dict()


def test_config_derived_defaults_follow_the_original():
    assert [swiglu_hidden_size(c) for c in (1280, 384, 128, 64)] == [3456, 1024, 384, 192]
    assert MyPTConfig(n_embd=1280, n_head=20).intermediate_size == 3456
    assert MyPTConfig(n_embd=64, n_head=4, mlp_type="gelu").intermediate_size == 256
    assert MyPTConfig(norm_type="rmsnorm").norm_eps == 1e-6
    assert MyPTConfig(norm_type="layernorm").norm_eps == 1e-5


@pytest.mark.parametrize("field,value", [("pos_encoding", "rotary"), ("mlp_type", "swiglue"),
                                         ("norm_type", "rms_norm")])
def test_unknown_option_strings_are_rejected(field, value):
    with pytest.raises(ValueError, match=f"unknown {field}"):
        MyPTConfig(**{field: value})


def test_production_parameter_count_matches_the_original():
    # 750M: 698,911,104 parameters (tied weight counted once, lm_head bias included), built on meta.
    with torch.device("meta"):
        model = MyPTForCausalLM(MyPTConfig(vocab_size=50304, n_embd=1280, n_head=20, n_layer=32, block_size=1024))
    assert sum(p.numel() for p in model.parameters()) == 698_911_104


# ------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("tied,bias", [(False, False), (True, False), (True, True)])
def test_logits_equal_llama_with_the_same_weights(tied, bias):
    model = make_model(tie_word_embeddings=tied, bias=bias, lm_head_bias=False)
    llama = llama_twin(model)
    ids = torch.randint(0, TINY["vocab_size"], (2, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(ids).logits, llama(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0), (ours - theirs).abs().max()


def test_lm_head_bias_is_added_to_the_logits():
    model = make_model(lm_head_bias=True)
    ids = torch.randint(0, TINY["vocab_size"], (1, 9))
    with torch.no_grad():
        with_bias = model(ids).logits
        model.lm_head.bias.zero_()
        without = model(ids).logits
    assert not torch.allclose(with_bias, without)
    assert model.get_output_embeddings() is model.lm_head and isinstance(model.lm_head, torch.nn.Linear)


def test_tied_weights_share_storage_and_bias_stays_separate():
    model = make_model(tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.lm_head.bias is not None


def test_logits_to_keep_and_loss():
    model = make_model()
    ids = torch.randint(0, TINY["vocab_size"], (2, 12))
    labels = ids.clone()
    labels[:, :4] = -100
    out = model(ids, labels=labels)
    assert model(ids, logits_to_keep=1).logits.shape == (2, 1, TINY["vocab_size"])
    assert torch.allclose(model(ids, logits_to_keep=1).logits[:, 0], out.logits[:, -1], atol=1e-6)
    shift_logits, shift_labels = out.logits[:, :-1], labels[:, 1:]
    ref = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                                            ignore_index=-100)
    assert torch.allclose(out.loss, ref, atol=1e-6)
    n = int((shift_labels != -100).sum())
    summed = model(ids, labels=labels, num_items_in_batch=torch.tensor(2 * n)).loss
    assert torch.allclose(summed, ref / 2, atol=1e-6)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_packed_row_equals_separate_forwards(impl, pos):
    model = make_model(pos_encoding=pos, mlp_type="swiglu" if pos == "rope" else "gelu",
                       norm_type="rmsnorm" if pos == "rope" else "layernorm", bias=pos == "learned")
    model.set_attn_implementation(impl)
    gen = torch.Generator().manual_seed(3)
    episodes = [torch.randint(0, TINY["vocab_size"], (n,), generator=gen) for n in (7, 11, 5)]
    packed = torch.cat(episodes).unsqueeze(0)
    position_ids = torch.cat([torch.arange(len(e)) for e in episodes]).unsqueeze(0)
    with torch.no_grad():
        # config.use_cache is True: the packed detection must still hold without an explicit use_cache=False.
        packed_logits = model(packed, position_ids=position_ids).logits[0]
        separate = torch.cat([model(e.unsqueeze(0)).logits[0] for e in episodes])
        contaminated = model(packed).logits[0]
    assert torch.allclose(packed_logits, separate, atol=1e-5, rtol=0), (packed_logits - separate).abs().max()
    assert not torch.allclose(contaminated[7:], separate[7:], atol=1e-3)


def test_kwargs_reach_the_attention_function():
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    seen = []

    def spy(module, q, k, v, mask, **kwargs):
        seen.append(sorted(kwargs))
        return sdpa_attention_forward(module, q, k, v, mask, **{k_: v_ for k_, v_ in kwargs.items()
                                                                 if k_ in ("dropout", "scaling", "is_causal")})

    AttentionInterface.register("mypt_test_spy", spy)
    model = make_model()
    model.set_attn_implementation("mypt_test_spy")
    ids = torch.randint(0, TINY["vocab_size"], (1, 6))
    cu = torch.tensor([0, 2, 6], dtype=torch.int32)
    model(ids, position_ids=torch.tensor([[0, 1, 0, 1, 2, 3]]), use_cache=False, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
          max_length_q=4, max_length_k=4)
    assert seen and all("cu_seq_lens_q" in s and "max_length_k" in s for s in seen)


def test_dropout_only_in_training_and_at_three_places():
    model = make_model(dropout=0.5)
    attn = model.model.layers[0].self_attn
    assert attn.attention_dropout == 0.5 and attn.resid_dropout == 0.5
    assert model.model.layers[0].mlp.dropout == 0.5
    ids = torch.randint(0, TINY["vocab_size"], (1, 8))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model(ids).logits)  # eval: deterministic
        model.train()
        assert not torch.equal(model(ids, use_cache=False).logits, model(ids, use_cache=False).logits)


def test_original_init():
    torch.manual_seed(0)
    model = MyPTForCausalLM(MyPTConfig(vocab_size=2048, n_embd=256, n_head=4, n_layer=8, block_size=64))
    layer = model.model.layers[0]
    scaled = 0.02 / math.sqrt(2 * 8)
    assert abs(model.model.embed_tokens.weight.std().item() - 0.02) < 1e-3
    assert abs(layer.self_attn.q_proj.weight.std().item() - 0.02) < 1e-3
    assert abs(layer.mlp.down_proj.weight.std().item() - scaled) < 5e-4
    assert abs(layer.self_attn.o_proj.weight.std().item() - scaled) < 5e-4
    assert torch.all(model.lm_head.bias == 0) and torch.all(layer.input_layernorm.weight == 1)


# ------------------------------------------------------------------------------------------- generation


def test_cached_greedy_generate_equals_no_cache_greedy():
    model = make_model()
    prompt = torch.randint(0, TINY["vocab_size"], (1, 6), generator=torch.Generator().manual_seed(5))
    cached = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=True, eos_token_id=None)
    plain = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=False, eos_token_id=None)
    manual = prompt
    with torch.no_grad():
        for _ in range(20):
            next_id = model(manual, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            manual = torch.cat([manual, next_id], dim=1)
    assert torch.equal(cached, plain) and torch.equal(cached, manual)


def test_left_padded_batch_generate_matches_single():
    model = make_model()
    a = torch.randint(1, TINY["vocab_size"], (1, 8), generator=torch.Generator().manual_seed(6))
    b = torch.randint(1, TINY["vocab_size"], (1, 5), generator=torch.Generator().manual_seed(7))
    batch = torch.cat([a, torch.cat([torch.zeros(1, 3, dtype=torch.long), b], dim=1)])
    mask = torch.ones_like(batch)
    mask[1, :3] = 0
    out = model.generate(batch, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0,
                         eos_token_id=None)
    single_b = model.generate(b, max_new_tokens=8, do_sample=False, eos_token_id=None)
    assert torch.equal(out[1, 8:], single_b[0, 5:])


def test_sampling_options_and_eos_list_stop():
    model = make_model()
    prompt = torch.randint(0, TINY["vocab_size"], (1, 4), generator=torch.Generator().manual_seed(8))
    torch.manual_seed(0)
    out = model.generate(prompt, max_new_tokens=12, do_sample=True, temperature=0.8, top_k=20, top_p=0.9,
                         repetition_penalty=1.1, eos_token_id=None)
    assert out.shape == (1, 16)
    greedy = model.generate(prompt, max_new_tokens=12, do_sample=False, eos_token_id=None)
    stop = int(greedy[0, 7])  # the 4th generated token: generation must stop right after emitting it
    first = next(i for i in range(4, 16) if int(greedy[0, i]) in (stop, 95))
    stopped = model.generate(prompt, max_new_tokens=12, do_sample=False, eos_token_id=[95, stop])
    assert stopped.shape[1] == first + 1 and int(stopped[0, -1]) in (stop, 95)


def test_set_mypt_generation_config_uses_the_stop_tags():
    from mypt_hf.tokenization_mypt import load_tokenizer
    from mypt_hf.tokens import EOT, STOP_TAG_STRINGS

    tok = load_tokenizer("embedded")
    model = make_model(vocab_size=len(tok) + 8)
    set_mypt_generation_config(model, tok)
    expected = [tok.convert_tokens_to_ids(t) for t in STOP_TAG_STRINGS]
    assert model.generation_config.eos_token_id == expected
    assert model.generation_config.pad_token_id == tok.convert_tokens_to_ids(EOT)


# ------------------------------------------------------------------------------------------- save / load


def test_rope_buffers_correct_after_from_pretrained(tmp_path):
    model = make_model(rope_theta=50000.0, rope_scale=2.0)
    model.save_pretrained(tmp_path)
    loaded = MyPTForCausalLM.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded.model.rotary_emb.inv_freq, compute_rope_inv_freq(loaded.config))
    ids = torch.randint(0, TINY["vocab_size"], (2, 20))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight


def test_remote_code_load_without_mypt_hf(tmp_path):
    model = make_model(tie_word_embeddings=True, rope_scale=2.0)
    save_dir = tmp_path / "model"
    model.save_pretrained(save_dir)
    cfg = json.loads((save_dir / "config.json").read_text())
    assert cfg["auto_map"] == {"AutoConfig": "configuration_mypt.MyPTConfig",
                               "AutoModelForCausalLM": "modeling_mypt.MyPTForCausalLM"}
    assert (save_dir / "modeling_mypt.py").is_file() and (save_dir / "configuration_mypt.py").is_file()
    ids = torch.randint(0, TINY["vocab_size"], (2, 10), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = model(ids).logits
    torch.save(ids, tmp_path / "ids.pt")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["mypt_hf"] = None  # the package is installed editable: block it actively
        try:
            import mypt_hf  # noqa
            raise SystemExit("mypt_hf importable")
        except ImportError:
            pass
        import torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained({str(save_dir)!r}, trust_remote_code=True).eval()
        assert not type(model).__module__.startswith("mypt_hf"), type(model).__module__
        ids = torch.load({str(tmp_path / 'ids.pt')!r})
        with torch.no_grad():
            torch.save(model(ids).logits, {str(tmp_path / 'logits.pt')!r})
        print(type(model).__module__)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transformers_modules" in result.stdout
    assert torch.equal(torch.load(tmp_path / "logits.pt"), expected)


def test_gradient_checkpointing_trains():
    model = make_model()
    model.train()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    assert all(layer.gradient_checkpointing for layer in model.model.layers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.randint(0, TINY["vocab_size"], (4, 16), generator=torch.Generator().manual_seed(10))
    losses = []
    for _ in range(8):
        loss = model(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses
    # Checkpointed gradients equal plain ones.
    model.eval()
    model.zero_grad()
    model(ids, labels=ids).loss.backward()
    with_ckpt = model.model.layers[0].self_attn.q_proj.weight.grad.clone()
    model.activation_checkpointing_disable()
    model.zero_grad()
    model(ids, labels=ids).loss.backward()
    assert torch.allclose(with_ckpt, model.model.layers[0].self_attn.q_proj.weight.grad, atol=1e-6)
