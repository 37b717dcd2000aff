"""Native MyPT checkpoints convert to HF models with the original's logits; Llama export only when exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mypt_hf.cli import main as cli_main
from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.convert import (build_hf_model, convert_checkpoint, export_llama, legacy15_row_moves,
                             load_native_checkpoint)
from mypt_hf.errors import GateFailure, MyPTInputError
from mypt_hf.evaluation.checks import assert_tie_weights, check_tie_weights
from mypt_hf.modeling_mypt import MyPTForCausalLM
from mypt_hf.tokens import GPT2_TAG_IDS, LEGACY_15_TAG_IDS

torch.set_num_threads(1)

CASES = ["rope_swiglu_rmsnorm_tied", "rope_swiglu_rmsnorm_tied_bf16", "rope_swiglu_rmsnorm_tied_fp16",
         "learned_gelu_layernorm_untied_bias", "rope_scale_2", "legacy_single_file", "rope_swiglu_rmsnorm_tied_v50304"]


# ------------------------------------------------------------------------------------------- helpers


def original_config(**overrides) -> dict:
    """A GPTConfig dict as the original writes it to config.json."""
    cfg = {"batch_size": 32, "block_size": 32, "vocab_size": 80, "n_embd": 32, "n_head": 4, "n_layer": 2,
           "dropout": 0.0, "bias": False, "use_checkpoint": False, "device": "cpu", "use_loss_mask": False,
           "tie_weights": True, "save_dtype": None, "pos_encoding": "rope", "mlp_type": "swiglu",
           "norm_type": "rmsnorm", "rope_theta": 10000.0, "rope_scale": 1.0, "segment_position_reset": True,
           "neftune_alpha": 0.0, "batch_sampling_mode": "epoch", "pad_token_id": None, "episode_min_tokens": 2,
           "epoch_seed": 1337, "epoch_shuffle": True, "epoch_drop_last": True}
    cfg.update(overrides)
    return cfg


def original_state_dict(cfg: dict, seed: int = 0) -> dict:
    """Random tensors under the original's key names and shapes (reference §2), qkv fused q|k|v."""
    g = torch.Generator().manual_seed(seed)
    C, V, L, n = cfg["n_embd"], cfg["vocab_size"], cfg["block_size"], cfg["n_layer"]
    H = ((int(8 * C / 3) + 63) // 64) * 64

    def r(*shape, std=0.3):
        return torch.randn(*shape, generator=g) * std

    sd = {"token_embedding_table.weight": r(V, C, std=0.25)}
    if cfg["pos_encoding"] != "rope":
        sd["position_embedding_table.weight"] = r(L, C, std=0.25)
    for i in range(n):
        p = f"blocks.{i}."
        sd[p + "sa.qkv.weight"] = r(3 * C, C, std=2 / C ** 0.5)
        if cfg["bias"]:
            sd[p + "sa.qkv.bias"] = r(3 * C, std=0.1)
        sd[p + "sa.proj.weight"] = r(C, C, std=C ** -0.5)
        if cfg["bias"]:
            sd[p + "sa.proj.bias"] = r(C, std=0.1)
        if cfg["mlp_type"] == "swiglu":
            sd[p + "fwd.w_gate.weight"] = r(H, C, std=C ** -0.5)
            sd[p + "fwd.w_up.weight"] = r(H, C, std=C ** -0.5)
            sd[p + "fwd.w_down.weight"] = r(C, H, std=H ** -0.5)
        else:
            sd[p + "fwd.net.0.weight"], sd[p + "fwd.net.0.bias"] = r(4 * C, C, std=C ** -0.5), r(4 * C, std=0.1)
            sd[p + "fwd.net.2.weight"], sd[p + "fwd.net.2.bias"] = r(C, 4 * C, std=(4 * C) ** -0.5), r(C, std=0.1)
        for ln in ("ln1", "ln2"):
            sd[f"{p}{ln}.weight"] = 0.5 + torch.rand(C, generator=g)
            if cfg["norm_type"] != "rmsnorm":
                sd[f"{p}{ln}.bias"] = r(C, std=0.1)
    sd["ln_f.weight"] = 0.5 + torch.rand(C, generator=g)
    if cfg["norm_type"] != "rmsnorm":
        sd["ln_f.bias"] = r(C, std=0.1)
    sd["lm_head.weight"] = sd["token_embedding_table.weight"] if cfg["tie_weights"] else r(V, C, std=0.25)
    sd["lm_head.bias"] = r(V, std=0.5)
    return sd


def reference_logits(cfg: dict, sd: dict, ids: torch.Tensor) -> torch.Tensor:
    """An independent re-statement of the original forward (reference §1.2-1.7), for built checkpoints."""
    C, nh = cfg["n_embd"], cfg["n_head"]
    hd = C // nh
    T = ids.shape[1]
    x = sd["token_embedding_table.weight"][ids]
    if cfg["pos_encoding"] != "rope":
        x = x + sd["position_embedding_table.weight"][:T]
    else:
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(T).float() / cfg["rope_scale"], inv)
        cos, sin = ang.cos(), ang.sin()

    def norm(h, w, b):
        if cfg["norm_type"] == "rmsnorm":
            return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * w
        return torch.nn.functional.layer_norm(h, (C,), w, b, eps=1e-5)

    def rope(t):
        t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
        return torch.cat([t1 * cos - t2 * sin, t2 * cos + t1 * sin], dim=-1)

    for i in range(cfg["n_layer"]):
        p = f"blocks.{i}."
        h = norm(x, sd[p + "ln1.weight"], sd.get(p + "ln1.bias"))
        qkv = torch.nn.functional.linear(h, sd[p + "sa.qkv.weight"], sd.get(p + "sa.qkv.bias"))
        q, k, v = (t.view(*t.shape[:2], nh, hd).transpose(1, 2) for t in qkv.split(C, dim=-1))
        if cfg["pos_encoding"] == "rope":
            q, k = rope(q), rope(k)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        a = a.transpose(1, 2).reshape(*x.shape[:2], C)
        x = x + torch.nn.functional.linear(a, sd[p + "sa.proj.weight"], sd.get(p + "sa.proj.bias"))
        h = norm(x, sd[p + "ln2.weight"], sd.get(p + "ln2.bias"))
        if cfg["mlp_type"] == "swiglu":
            m = torch.nn.functional.silu(h @ sd[p + "fwd.w_gate.weight"].T) * (h @ sd[p + "fwd.w_up.weight"].T)
            m = m @ sd[p + "fwd.w_down.weight"].T
        else:
            m = torch.nn.functional.gelu(torch.nn.functional.linear(h, sd[p + "fwd.net.0.weight"], sd[p + "fwd.net.0.bias"]))
            m = torch.nn.functional.linear(m, sd[p + "fwd.net.2.weight"], sd[p + "fwd.net.2.bias"])
        x = x + m
    x = norm(x, sd["ln_f.weight"], sd.get("ln_f.bias"))
    return torch.nn.functional.linear(x, sd["lm_head.weight"], sd["lm_head.bias"])


def write_native_dir(path: Path, cfg: dict, sd: dict, wrapper: bool = True, tokenizer: dict | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
    obj = {"state_dict": sd, "checkpoint_dtype": None, "model_dtype": "float32"} if wrapper else sd
    torch.save(obj, path / "model.pt")
    if tokenizer is not None:
        (path / "tokenizer.json").write_text(json.dumps(tokenizer))
    return path


def hf_logits(model_dir: Path, ids: torch.Tensor) -> torch.Tensor:
    model = MyPTForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(ids).logits


# ------------------------------------------------------------------------------------------- parity fixtures


@pytest.mark.parametrize("case", CASES)
def test_parity_checkpoint_converts_to_the_original_logits(case, parity_dir, tmp_path, request):
    folder = parity_dir / "checkpoints" / case
    expected = json.loads((folder / "expected.json").read_text())
    tokenizer = None
    if case.endswith("v50304"):
        pytest.importorskip("mypt_hf.tokenization_mypt")
        tokenizer = str(request.getfixturevalue("gpt2_tiktoken_path"))
    out = convert_checkpoint(folder, tmp_path / "hf", tokenizer)
    logits = hf_logits(out, torch.tensor(expected["input_ids"]))
    cols = expected.get("logits_columns")
    got = logits[..., cols] if cols else logits
    assert torch.allclose(got, torch.tensor(expected["logits"]), atol=1e-4, rtol=0), \
        (got - torch.tensor(expected["logits"])).abs().max()
    full = expected["logits_full_vocab"]
    assert torch.allclose(torch.logsumexp(logits, -1), torch.tensor(full["logsumexp"]), atol=1e-4)
    assert torch.allclose(logits.max(-1).values, torch.tensor(full["max"]), atol=1e-4)
    assert torch.equal(logits.argmax(-1), torch.tensor(full["argmax"]))
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] == expected["config"]["tie_weights"]
    if case == "rope_scale_2":
        assert (config["rope_scale"], config["rope_theta"]) == (2.0, 50000.0)
    if tokenizer is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(out)
        assert tok.chat_template and tok.convert_tokens_to_ids("<myPT_eot>") == 50275
        gen = json.loads((out / "generation_config.json").read_text())
        assert gen["eos_token_id"] == [50262, 50275] and gen["pad_token_id"] == 50275
    else:
        assert not (out / "tokenizer.json").exists()  # char-level toy tokenizers are skipped


def test_fp32_folder_and_legacy_file_give_the_same_model(parity_dir):
    a = build_hf_model(load_native_checkpoint(parity_dir / "checkpoints" / "rope_swiglu_rmsnorm_tied"))
    b = build_hf_model(load_native_checkpoint(parity_dir / "checkpoints" / "legacy_single_file" / "final.pt"))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_bf16_checkpoint_is_widened_and_retied(parity_dir):
    model = build_hf_model(load_native_checkpoint(parity_dir / "checkpoints" / "rope_swiglu_rmsnorm_tied_bf16"))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_legacy_15_tag_rows_are_moved(parity_dir):
    folder = parity_dir / "checkpoints" / "legacy_15_token_layout"
    expected = json.loads((folder / "expected.json").read_text())
    moves = {int(k): v for k, v in expected["row_move_canonical_id_from_legacy_id"].items()}
    assert all(legacy15_row_moves()[c] == legacy for c, legacy in moves.items())
    model = build_hf_model(load_native_checkpoint(folder))
    # Stored rows: each tag's canonical row now holds what was trained at its legacy id (exact fp32 values).
    checked_rows = 0
    for row in expected["special_token_rows_as_stored"]:
        if row.get("legacy_id") is None:
            continue
        canonical = row["canonical_id"]
        assert torch.equal(model.model.embed_tokens.weight[canonical], torch.tensor(row["embedding_row_at_legacy_id"]))
        assert model.lm_head.bias[canonical].item() == pytest.approx(row["lm_head_bias_at_legacy_id"], abs=0)
        checked_rows += 1
    assert checked_rows == 15
    ids = torch.tensor(expected["input_ids"])
    with torch.no_grad():
        logits = model(ids[1:2]).logits[0]  # canonical ids
    cols = expected["logits_columns"]
    original_row0 = torch.tensor(expected["logits"][0])
    pos = {c: i for i, c in enumerate(cols)}
    checked = 0
    for c in cols:
        if 50257 <= c <= 50275 and c not in moves:
            continue  # think/cite did not exist in the legacy model
        source = moves.get(c, c)
        if source in pos:
            assert torch.allclose(logits[:, c], original_row0[:, pos[source]], atol=1e-4), c
            checked += 1
    assert checked > 250
    assert model.lm_head.bias[50275] == load_native_checkpoint(folder).state_dict["lm_head.bias"][50271]


def test_legacy_15_layout_detected_in_a_built_checkpoint(tmp_path):
    cfg = original_config(vocab_size=50304, n_embd=8, n_head=2, n_layer=1)
    sd = original_state_dict(cfg)
    tok = {"token_kind": "gpt2", "chars": None, "base_vocab_size": 50257, "model_vocab_size": 50304,
           "special_token_encoder": {**{k: v for k, v in LEGACY_15_TAG_IDS.items() if "toolcall" not in k},
                                     "<myPT_tool_call>": 50267, "</myPT_tool_call>": 50268}}
    folder = write_native_dir(tmp_path / "ck", cfg, sd, tokenizer=tok)
    model = build_hf_model(load_native_checkpoint(folder))
    assert torch.equal(model.model.embed_tokens.weight[GPT2_TAG_IDS["<myPT_assistant>"]],
                       sd["lm_head.weight"][LEGACY_15_TAG_IDS["<myPT_assistant>"]])
    assert torch.equal(model.lm_head.bias[GPT2_TAG_IDS["<myPT_eot>"]], sd["lm_head.bias"][50271])
    tok["special_token_encoder"] = {"<myPT_eot>": 50300}
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(MyPTInputError, match="unknown special-token layout"):
        build_hf_model(load_native_checkpoint(folder))


# ------------------------------------------------------------------------------------------- built checkpoints


@pytest.mark.parametrize("variant", [
    dict(),
    dict(tie_weights=False, bias=True),
    dict(pos_encoding="learned", mlp_type="gelu", norm_type="layernorm", bias=True, tie_weights=False),
    dict(rope_scale=4.0, rope_theta=50000.0),
])
@pytest.mark.parametrize("wrapper", [True, False])
def test_built_native_checkpoint_converts(tmp_path, variant, wrapper):
    cfg = original_config(**variant)
    sd = original_state_dict(cfg, seed=len(variant))
    folder = write_native_dir(tmp_path / "ck", cfg, sd, wrapper=wrapper)
    ids = torch.randint(0, cfg["vocab_size"], (2, 12), generator=torch.Generator().manual_seed(0))
    out = convert_checkpoint(folder, tmp_path / "hf")
    with torch.no_grad():
        assert torch.allclose(hf_logits(out, ids), reference_logits(cfg, sd, ids), atol=1e-4, rtol=0)


def test_legacy_single_file_and_lm_head_wins_when_tied(tmp_path):
    cfg = original_config()
    sd = original_state_dict(cfg)
    sd["token_embedding_table.weight"] = sd["lm_head.weight"].clone() + 1.0  # differs: lm_head.weight must win
    folder = tmp_path / "legacy"
    folder.mkdir()
    torch.save({"model_state_dict": sd, "config": cfg, "tokenizer": {"token_kind": "char", "chars": []},
                "step": 10, "optimizer_state_dict": None}, folder / "latest.pt")
    model = build_hf_model(load_native_checkpoint(folder))
    assert torch.equal(model.model.embed_tokens.weight, sd["lm_head.weight"])
    ids = torch.randint(0, cfg["vocab_size"], (1, 10))
    expected = reference_logits(cfg, {**sd, "token_embedding_table.weight": sd["lm_head.weight"]}, ids)
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, expected, atol=1e-4)


class NeedsCode:  # a class the safe unpickler does not know
    def __init__(self):
        self.x = 1


def test_pickle_needing_code_is_refused(tmp_path):
    cfg = original_config()
    folder = write_native_dir(tmp_path / "ck", cfg, original_state_dict(cfg))
    torch.save({"state_dict": original_state_dict(cfg), "extra": NeedsCode()}, folder / "model.pt")
    with pytest.raises(MyPTInputError, match="arbitrary code"):
        load_native_checkpoint(folder)
    assert cli_main(["convert", "--input", str(folder), "--output_dir", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(MyPTInputError, match="no MyPT checkpoint"):
        load_native_checkpoint(tmp_path)
    cfg = original_config()
    sd = original_state_dict(cfg)
    del sd["blocks.1.sa.proj.weight"]
    folder = write_native_dir(tmp_path / "ck", cfg, sd)
    with pytest.raises(MyPTInputError, match="blocks.1.sa.proj.weight"):
        build_hf_model(load_native_checkpoint(folder))


def test_cli_convert_overwrite_and_tie_check(tmp_path, capsys):
    cfg = original_config()
    folder = write_native_dir(tmp_path / "ck", cfg, original_state_dict(cfg))
    out = tmp_path / "hf"
    assert cli_main(["convert", "--input", str(folder), "--output_dir", str(out)]) == 0
    assert cli_main(["convert", "--input", str(folder), "--output_dir", str(out)]) == 2  # exists
    assert cli_main(["convert", "--input", str(folder), "--output_dir", str(out), "--overwrite"]) == 0
    assert cli_main(["check-tie-weights", "--model", str(out)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_tie_check_verdicts():
    model = MyPTForCausalLM(MyPTConfig(vocab_size=64, n_embd=16, n_head=2, n_layer=1, tie_word_embeddings=True))
    assert check_tie_weights(model).verdict == "PASS"
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    report = check_tie_weights(model)
    assert report.verdict == "FAIL" and report.values_equal and not report.shares_storage
    with pytest.raises(GateFailure):
        assert_tie_weights(model)
    assert check_tie_weights(model, config_tied=False).verdict == "PASS"
    untied = MyPTForCausalLM(MyPTConfig(vocab_size=64, n_embd=16, n_head=2, n_layer=1, tie_word_embeddings=False))
    untied.lm_head.weight = untied.model.embed_tokens.weight
    assert check_tie_weights(untied).verdict == "WARN" and check_tie_weights(untied).passed


# ------------------------------------------------------------------------------------------- Llama export


def test_llama_export_exact_and_refused_with_lm_head_bias(tmp_path):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = MyPTForCausalLM(MyPTConfig(vocab_size=64, n_embd=32, n_head=4, n_layer=2, block_size=32,
                                       lm_head_bias=False, rope_scale=2.0, bias=True))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    model.save_pretrained(tmp_path / "mypt")
    export_llama(tmp_path / "mypt", tmp_path / "llama")
    llama = LlamaForCausalLM.from_pretrained(tmp_path / "llama").eval()
    assert json.loads((tmp_path / "llama" / "config.json").read_text())["model_type"] == "llama"
    ids = torch.randint(0, 64, (2, 20))
    with torch.no_grad():
        assert torch.allclose(llama(ids).logits, model.eval()(ids).logits, atol=1e-5, rtol=0)

    biased = MyPTForCausalLM(MyPTConfig(vocab_size=64, n_embd=32, n_head=4, n_layer=1, lm_head_bias=True))
    with torch.no_grad():
        biased.lm_head.bias.normal_()
    biased.save_pretrained(tmp_path / "biased")
    with pytest.raises(MyPTInputError, match="lm_head has a non-zero bias"):
        export_llama(tmp_path / "biased", tmp_path / "no")
    assert not (tmp_path / "no").exists()
    gelu = MyPTForCausalLM(MyPTConfig(vocab_size=64, n_embd=32, n_head=4, n_layer=1, mlp_type="gelu",
                                      lm_head_bias=False))
    gelu.save_pretrained(tmp_path / "gelu")
    with pytest.raises(MyPTInputError, match="mlp_type is 'gelu'"):
        export_llama(tmp_path / "gelu", tmp_path / "no")
