"""GGUF export for llama.cpp: read back with gguf.GGUFReader, the file holds the model in llama.cpp's layout.

llama.cpp itself is not run (llama-cpp-python has no wheel on this machine's index): instead the tensors are read
back and (1) compared with the model's after undoing the q/k permutation with transformers' own inverse of it, and
(2) run through an independent NumPy re-statement of llama.cpp's ``llama`` graph (RMSNorm, RoPE on adjacent pairs
with linear scaling, SwiGLU, ``output`` falling back to ``token_embd``), whose logits must equal the MyPT model's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from bad_inputs import Case, copy_fixture, permissions_enforced, run_case  # noqa: E402
from mypt_hf.cli import main as cli_main  # noqa: E402
from mypt_hf.configuration_mypt import MyPTConfig  # noqa: E402
from mypt_hf.errors import MyPTInputError  # noqa: E402
from mypt_hf.gguf_export import export_gguf  # noqa: E402
from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config  # noqa: E402
from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size  # noqa: E402
from mypt_hf.tokens import ASSISTANT_CLOSE, EOT, GPT2_TAG_IDS, TAG_STRINGS, tag_ids_for_base  # noqa: E402

torch.set_num_threads(1)
T = gguf.TokenType


# ------------------------------------------------------------------------------------------- helpers


def save_model(path, tokenizer=None, seed=0, **config):
    """A tiny MyPT model (Llama-exact unless ``config`` says otherwise) saved with its tokenizer; biases and norm
    weights randomised so that a swapped or unpermuted tensor shows."""
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
    torch.manual_seed(seed)
    settings = dict(vocab_size=model_vocab_size(tokenizer), hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=64, lm_head_bias=False)
    settings.update(config)
    model = MyPTForCausalLM(MyPTConfig(**settings)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.2)
            elif "norm" in name:
                param.uniform_(0.5, 1.5)
            else:
                param.normal_(0, 0.3)
    set_mypt_generation_config(model, tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model, tokenizer


def field(reader, key):
    assert key in reader.fields, f"GGUF lacks {key}"
    return reader.fields[key].contents()


def tensors(reader):
    """name -> (float32 array in NumPy order, GGUF type, GGUF shape as llama.cpp lists it: ne0 first)."""
    out = {}
    for t in reader.tensors:
        shape = [int(n) for n in t.shape]
        data = gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(reversed(shape)))
        out[t.name] = (np.asarray(data, dtype=np.float32), t.tensor_type, shape)
    return out


def hf_order(weight, n_head):
    """transformers' convert_llama_weights_to_hf ``permute`` (interleaved pairs -> rotate-half): the inverse of
    llama.cpp's converter permutation, written independently of mypt_hf.gguf_export."""
    rows = weight.shape[0]
    return weight.reshape(n_head, rows // n_head // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def llama_cpp_logits(reader, ids):
    """llama.cpp's ``llama`` graph (src/models/llama.cpp) restated in float64 NumPy from the file's own contents."""
    w = {name: data.astype(np.float64) for name, (data, _, _) in tensors(reader).items()}
    n_layer, n_head = field(reader, "llama.block_count"), field(reader, "llama.attention.head_count")
    eps = field(reader, "llama.attention.layer_norm_rms_epsilon")
    base, n_rot = field(reader, "llama.rope.freq_base"), field(reader, "llama.rope.dimension_count")
    freq_scale = 1.0 / field(reader, "llama.rope.scaling.factor") if "llama.rope.scaling.factor" in reader.fields \
        else 1.0

    def rms(x, weight):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight

    def rope(x):  # LLAMA_ROPE_TYPE_NORM: dimension 2i pairs with 2i+1
        pos = np.arange(x.shape[0])[:, None] * freq_scale
        theta = pos * base ** (-np.arange(0, n_rot, 2) / n_rot)
        cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = x0 * cos - x1 * sin, x0 * sin + x1 * cos
        return out

    def linear(x, name):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    x = w["token_embd.weight"][ids]
    steps, width = x.shape
    hd = width // n_head
    mask = np.triu(np.full((steps, steps), -np.inf), 1)
    for i in range(n_layer):
        b = f"blk.{i}."
        h = rms(x, w[b + "attn_norm.weight"])
        q, k, v = (linear(h, b + name).reshape(steps, n_head, hd) for name in ("attn_q", "attn_k", "attn_v"))
        q, k = rope(q), rope(k)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        x = x + linear(np.einsum("hqk,khd->qhd", probs, v).reshape(steps, width), b + "attn_output")
        h = rms(x, w[b + "ffn_norm.weight"])
        gate = linear(h, b + "ffn_gate")
        x = x + linear(gate / (1 + np.exp(-gate)) * linear(h, b + "ffn_up"), b + "ffn_down")
    x = rms(x, w["output_norm.weight"])
    return x @ w.get("output.weight", w["token_embd.weight"]).T


def mypt_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].double().numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An untied model with attention biases and linear RoPE scaling, exported f32."""
    root = tmp_path_factory.mktemp("gguf")
    model, tokenizer = save_model(root / "m", bias=True, tie_word_embeddings=False, rope_scale=2.0, rope_theta=500.0)
    out = export_gguf(root / "m", root / "m.gguf", outtype="f32")
    return model, tokenizer, gguf.GGUFReader(str(out)), root


# ------------------------------------------------------------------------------------------- contents


def test_every_tensor_is_the_models_in_llama_cpp_layout(exported):
    model, _, reader, _ = exported
    cfg = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    got = tensors(reader)
    state = {k: v for k, v in model.state_dict().items()}
    expected = {names.get_name(k, try_suffixes=(".weight", ".bias")): v for k, v in state.items()}
    assert set(got) == set(expected)
    assert {"token_embd.weight", "output_norm.weight", "output.weight", "blk.1.attn_q.bias"} <= set(got)
    for name, (data, qtype, _) in got.items():
        if ".attn_q." in name or ".attn_k." in name:
            data = hf_order(data, cfg.num_attention_heads)
        assert qtype == gguf.GGMLQuantizationType.F32, name
        assert np.array_equal(data, expected[name].numpy()), name
    # the permutation is not the identity here, so a missing one would have failed above
    q = state["model.layers.0.self_attn.q_proj.weight"].numpy()
    assert not np.array_equal(got["blk.0.attn_q.weight"][0], q)


def test_shapes_are_what_llama_cpp_creates(exported):
    model, _, reader, _ = exported
    cfg = model.config
    C, V, F = cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size
    shapes = {name: shape for name, (_, _, shape) in tensors(reader).items()}
    assert shapes["token_embd.weight"] == [C, V] and shapes["output.weight"] == [C, V]
    assert shapes["output_norm.weight"] == [C]
    for i in range(cfg.num_hidden_layers):
        b = f"blk.{i}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            assert shapes[b + name + ".weight"] == [C, C] and shapes[b + name + ".bias"] == [C]
        assert shapes[b + "ffn_gate.weight"] == [C, F] == shapes[b + "ffn_up.weight"]
        assert shapes[b + "ffn_down.weight"] == [F, C]
        assert shapes[b + "attn_norm.weight"] == [C] == shapes[b + "ffn_norm.weight"]


def test_llama_cpp_graph_on_the_file_gives_the_models_logits(exported):
    model, tokenizer, reader, _ = exported
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Say OK."}], add_generation_prompt=True,
                                        tokenize=True, return_dict=True)["input_ids"]
    ids = ids + [5, 77, 300, 12, 9, 100][: 40 - len(ids)]
    ours, theirs = mypt_logits(model, ids), llama_cpp_logits(reader, np.array(ids))
    assert np.abs(ours).max() > 1.0  # not a degenerate model
    assert np.allclose(theirs, ours, atol=2e-4, rtol=0), np.abs(theirs - ours).max()


def test_metadata_llama_cpp_requires(exported):
    model, _, reader, _ = exported
    cfg = model.config
    expected = {
        "general.architecture": "llama", "general.type": "model", "general.name": "m", "general.file_type": 0,
        "general.quantization_version": 2,
        "llama.context_length": 64, "llama.embedding_length": 32, "llama.block_count": 2,
        "llama.feed_forward_length": cfg.intermediate_size, "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 4, "llama.rope.dimension_count": 8, "llama.vocab_size": cfg.vocab_size,
        "llama.attention.key_length": 8, "llama.attention.value_length": 8, "llama.rope.scaling.type": "linear",
    }
    for key, value in expected.items():
        assert field(reader, key) == value, key
    assert field(reader, "llama.rope.freq_base") == 500.0 and field(reader, "llama.rope.scaling.factor") == 2.0
    assert field(reader, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-6, rel=1e-6)


def test_tokenizer_tags_are_control_padding_unused(exported):
    model, tokenizer, reader, _ = exported
    tokens, types = field(reader, "tokenizer.ggml.tokens"), field(reader, "tokenizer.ggml.token_type")
    vocab_size = model.config.vocab_size
    assert len(tokens) == len(types) == vocab_size > len(tokenizer)  # 531 tokenizer ids padded to 576 rows
    assert field(reader, "tokenizer.ggml.model") == "gpt2" and field(reader, "tokenizer.ggml.pre") == "gpt-2"
    tag_ids = tag_ids_for_base(tokenizer.convert_tokens_to_ids(TAG_STRINGS[0]))
    for tag, index in tag_ids.items():
        assert tokens[index] == tag and types[index] == T.CONTROL, tag
    assert [i for i, t in enumerate(types) if t == T.CONTROL] == sorted(tag_ids.values())
    for index in range(len(tokenizer), vocab_size):
        assert tokens[index] == f"[PAD{index}]" and types[index] == T.UNUSED
    base = min(tag_ids.values())
    assert tokens[:base] == tokenizer.convert_ids_to_tokens(list(range(base)))
    assert set(types[:base]) == {T.NORMAL}
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    assert field(reader, "tokenizer.ggml.merges") == [m if isinstance(m, str) else " ".join(m) for m in merges]


def test_stop_ids_no_bos_and_the_chat_template(exported):
    _, tokenizer, reader, _ = exported
    eot, close = tokenizer.convert_tokens_to_ids(EOT), tokenizer.convert_tokens_to_ids(ASSISTANT_CLOSE)
    assert field(reader, "tokenizer.ggml.eos_token_id") == eot  # end of the conversation
    assert field(reader, "tokenizer.ggml.eot_token_id") == close  # end of the assistant turn
    assert field(reader, "tokenizer.ggml.padding_token_id") == eot
    assert "tokenizer.ggml.bos_token_id" not in reader.fields  # MyPT has no BOS
    assert field(reader, "tokenizer.ggml.add_bos_token") is False
    assert field(reader, "tokenizer.ggml.add_eos_token") is False
    assert field(reader, "tokenizer.chat_template") == tokenizer.chat_template
    assert "<myPT_assistant>" in field(reader, "tokenizer.chat_template")


@pytest.mark.parametrize("outtype, qtype, cast", [("f16", "F16", torch.float16), ("bf16", "BF16", torch.bfloat16)])
def test_half_types_round_matrices_and_keep_norms_f32(exported, outtype, qtype, cast):
    model, _, reader32, root = exported
    out = export_gguf(root / "m", root / f"m-{outtype}.gguf", outtype=outtype)
    reader = gguf.GGUFReader(str(out))
    assert field(reader, "general.file_type") == {"f16": 1, "bf16": 32}[outtype]
    full = tensors(reader32)
    for name, (data, got_type, _) in tensors(reader).items():
        if data.ndim == 1:
            assert got_type == gguf.GGMLQuantizationType.F32 and np.array_equal(data, full[name][0]), name
        else:
            assert got_type == getattr(gguf.GGMLQuantizationType, qtype), name
            rounded = torch.from_numpy(full[name][0].copy()).to(cast).float().numpy()
            assert np.array_equal(data, rounded), name


def test_tied_model_has_no_output_tensor_and_is_deterministic(tmp_path):
    model, tokenizer = save_model(tmp_path / "tied", tie_word_embeddings=True, num_hidden_layers=1)
    first = export_gguf(tmp_path / "tied", tmp_path / "a.gguf", outtype="f32")
    second = export_gguf(tmp_path / "tied", tmp_path / "b.gguf", outtype="f32")
    assert first.read_bytes() == second.read_bytes()
    reader = gguf.GGUFReader(str(first))
    got = tensors(reader)
    assert "output.weight" not in got  # llama.cpp falls back to token_embd
    assert np.array_equal(got["token_embd.weight"][0], model.model.embed_tokens.weight.detach().numpy())
    ids = np.array(tokenizer("Hello there, MyPT.")["input_ids"])
    assert np.allclose(llama_cpp_logits(reader, ids), mypt_logits(model, ids.tolist()), atol=2e-4, rtol=0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.slow
def test_gpt2_tokenizer_vocabulary(gpt2_tiktoken_path, tmp_path):
    tokenizer = load_tokenizer(str(gpt2_tiktoken_path))
    save_model(tmp_path / "g", tokenizer=tokenizer, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    reader = gguf.GGUFReader(str(export_gguf(tmp_path / "g", tmp_path / "g.gguf")))
    tokens, types = field(reader, "tokenizer.ggml.tokens"), field(reader, "tokenizer.ggml.token_type")
    assert field(reader, "llama.vocab_size") == len(tokens) == 50304 and len(tokenizer) == 50276
    assert tokens[262] == "Ġthe" and tokens[50256] == "<|endoftext|>" and types[50256] == T.NORMAL
    for tag, index in GPT2_TAG_IDS.items():
        assert tokens[index] == tag and types[index] == T.CONTROL
    assert types[50276:] == [T.UNUSED] * 28 and tokens[50303] == "[PAD50303]"
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]  # tiktoken ranks give > 50000
    assert field(reader, "tokenizer.ggml.merges") == [m if isinstance(m, str) else " ".join(m) for m in merges]
    assert field(reader, "tokenizer.ggml.eos_token_id") == GPT2_TAG_IDS[EOT] == 50275
    assert field(reader, "tokenizer.ggml.eot_token_id") == GPT2_TAG_IDS[ASSISTANT_CLOSE] == 50262
    assert field(reader, "general.file_type") == 1  # f16 by default, as the original's --outtype


def test_llama_cpp_logits_not_compared():
    pytest.skip("llama.cpp itself is not run: llama-cpp-python has no wheel on this machine's package index, and "
                "nothing is compiled here; the NumPy re-statement of its llama graph stands in for it")


# ------------------------------------------------------------------------------------------- refusals and paths


def test_non_llama_models_are_refused_with_the_reason(tmp_path):
    save_model(tmp_path / "biased", lm_head_bias=True, num_hidden_layers=1)
    with pytest.raises(MyPTInputError, match="lm_head has a non-zero bias"):
        export_gguf(tmp_path / "biased", tmp_path / "x.gguf")
    save_model(tmp_path / "learned", pos_encoding="learned", num_hidden_layers=1)
    with pytest.raises(MyPTInputError, match=r"cannot export to llama.cpp's llama \(GGUF\) exactly: "
                                             r"pos_encoding is 'learned'"):
        export_gguf(tmp_path / "learned", tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_cli_writes_and_overwrites(bad_input_fixtures, tmp_path, capsys):
    out = tmp_path / "o" / "model.gguf"
    argv = ["convert-to-gguf", "--hf", str(bad_input_fixtures.model), "--out", str(out), "--outtype", "f32"]
    assert cli_main(argv) == 0 and "wrote GGUF (f32)" in capsys.readouterr().out
    first = out.read_bytes()
    assert cli_main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert cli_main(argv[:-1] + ["f16", "--overwrite"]) == 0
    assert out.read_bytes() != first and gguf.GGUFReader(str(out)).fields["general.file_type"].contents() == 1


def test_cli_native_checkpoint_needs_a_tokenizer_and_names_the_input(tmp_path, capsys):
    from test_convert import original_config, original_state_dict, write_native_dir

    cfg = original_config(vocab_size=576)
    state = original_state_dict(cfg)
    biased = write_native_dir(tmp_path / "biased", cfg, state)
    argv = ["convert-to-gguf", "--hf", str(biased), "--out", str(tmp_path / "x.gguf"), "--tokenizer", "embedded"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert f"{biased}:" in err and "lm_head has a non-zero bias" in err
    state.pop("lm_head.bias")
    plain = write_native_dir(tmp_path / "plain", cfg, state)
    argv[2] = str(plain)
    assert cli_main(argv[:-2]) == 2 and "--tokenizer" in capsys.readouterr().err  # no tokenizer to write
    assert cli_main(argv) == 0
    reader = gguf.GGUFReader(str(tmp_path / "x.gguf"))
    assert field(reader, "general.name") == "plain" and len(field(reader, "tokenizer.ggml.tokens")) == 576


GGUF = ["convert-to-gguf", "--hf"]
NO_TOKENIZER = copy_fixture("model", lambda d: [(d / n).unlink() for n in ("tokenizer.json", "tokenizer_config.json",
                                                                        "chat_template.jinja") if (d / n).exists()])
BAD_PATHS = [
    Case("gguf-missing-input", GGUF + ["{ws}/nowhere", "--out", "{ws}/x.gguf"], says=("{ws}/nowhere", "not found")),
    Case("gguf-input-is-a-file", GGUF + ["{episodes}", "--out", "{ws}/x.gguf"], says=("{episodes}",)),
    Case("gguf-no-tokenizer", GGUF + ["{ws}/m", "--out", "{ws}/x.gguf"], files={"m": NO_TOKENIZER},
         says=("{ws}/m", "tokenizer")),
    Case("gguf-out-is-a-directory", GGUF + ["{model}", "--out", "{ws}/d", "--overwrite"], files={"d/keep": "x"},
         says=("{ws}/d", "directory")),
    Case("gguf-out-exists", GGUF + ["{model}", "--out", "{ws}/x.gguf"], files={"x.gguf": "mine"},
         says=("{ws}/x.gguf", "--overwrite")),
    Case("gguf-tokenizer-with-hf-dir", GGUF + ["{model}", "--out", "{ws}/x.gguf", "--tokenizer", "embedded"],
         says=("{model}", "--tokenizer")),
    Case("gguf-bad-outtype", GGUF + ["{model}", "--out", "{ws}/x.gguf", "--outtype", "q4"], says=("q4",)),
    Case("gguf-not-llama", GGUF + ["{ws}/m", "--out", "{ws}/x.gguf"],
         files={"m": lambda fixtures, path: save_model(path, num_hidden_layers=1, mlp_type="gelu", norm_type="layernorm")},
         says=("{ws}/m:", "mlp_type is 'gelu'", "norm_type is 'layernorm'")),
]
if permissions_enforced():
    BAD_PATHS.append(Case("gguf-out-unwritable", GGUF + ["{model}", "--out", "{ws}/ro/x.gguf"], files={"ro/keep": "x"},
                          modes={"ro": 0o555}, says=("{ws}/ro/x.gguf", "permission denied")))


@pytest.mark.parametrize("case", BAD_PATHS, ids=str)
def test_bad_paths_exit_2_and_write_nothing(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)


def test_help_names_the_original_arguments(capsys):
    with pytest.raises(SystemExit):
        cli_main(["convert-to-gguf", "--help"])
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--hf", "--out", "--outtype", "--overwrite", "--tokenizer"))
