"""Write a native MyPT checkpoint the way the original project saves one, without mypt_hf.

The rehearsal of the 750M chain (``benchmarks/rehearse_750M.py``, ``tests/test_rehearsal_750M.py``) needs a base
shaped like production (GPT-2 BPE + the 19 tags, 50304 rows, rope / swiglu / rmsnorm, tied, context 1024) but small
enough for a laptop. This module writes one from the original's specification alone (torch, json and tiktoken;
../shared/reference/original-model-and-training.md §1-3 and §7, and the parity checkpoints under
../shared/reference/parity/checkpoints), so converting it tests ``mypt-hf convert`` against the original's format,
not against mypt_hf's own idea of it:

- ``config.json``: the whole ``GPTConfig`` field dict in the original's order (§1.1), as ``save_checkpoint_bundle``
  writes it; ``device`` is where it was trained ("cuda" for a production save).
- ``model.pt``: the wrapper ``{"state_dict", "checkpoint_dtype", "model_dtype"}`` (§3.1). A production training save
  is bf16 (train.py casts the model and saves with ``save_dtype='bf16'``): every tensor bf16 and the tied pair stored
  as two separate equal tensors; fp32 keeps the tied pair as one shared tensor (as the parity fixtures show).
- ``tokenizer.json``: the gpt2-kind tokenizer state with the 19 tags at 50257-50275 (``special_token_version`` 1).
- ``training_state.json``: step and dtypes.

Weights follow the original's init (§1.9): every Linear and Embedding N(0, 0.02), biases 0 (``lm_head.bias``
included), norm weights 1, SwiGLU ``w_down`` scaled to 0.02 / sqrt(2 n_layer) (the attention out-projection is not,
the original's name filter misses it). ``sft_ready`` then does what scripts/model/init_special_embeddings.py does
before SFT (§7, ``--phase 3a``): the seven chat tags' rows become the mean of their source words' GPT-2 rows.

    python tests/native_checkpoint.py OUT_DIR [--n_embd 64 --n_head 4 --n_layer 2 --block_size 1024 --dtype bf16]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Dict, Optional

import torch

GPT2_BASE_VOCAB = 50257
MODEL_VOCAB = 50304  # 50257 BPE ids + 19 tags + 28 unused rows, a multiple of 64 (§1.10)

#: The pinned tag table (§4): name, string; ids 50257.. in this order.
TAGS = [
    ("myPT_system_open", "<myPT_system>"), ("myPT_system_close", "</myPT_system>"),
    ("myPT_user_open", "<myPT_user>"), ("myPT_user_close", "</myPT_user>"),
    ("myPT_assistant_open", "<myPT_assistant>"), ("myPT_assistant_close", "</myPT_assistant>"),
    ("myPT_user_context_open", "<myPT_user_context>"), ("myPT_user_context_close", "</myPT_user_context>"),
    ("myPT_assistant_context_open", "<myPT_assistant_context>"),
    ("myPT_assistant_context_close", "</myPT_assistant_context>"),
    ("myPT_toolcall_open", "<myPT_toolcall>"), ("myPT_toolcall_close", "</myPT_toolcall>"),
    ("myPT_toolresult_open", "<myPT_toolresult>"), ("myPT_toolresult_close", "</myPT_toolresult>"),
    ("myPT_think_open", "<myPT_think>"), ("myPT_think_close", "</myPT_think>"),
    ("myPT_cite_open", "<myPT_cite>"), ("myPT_cite_close", "</myPT_cite>"),
    ("myPT_eot", "<myPT_eot>"),
]
TAG_IDS = {name: GPT2_BASE_VOCAB + i for i, (name, _) in enumerate(TAGS)}

#: init_special_embeddings.py --phase 3a: the source strings of each tag's row (§7).
SFT_READY_SOURCES = {
    "myPT_system_open": ["system", ":", "<"], "myPT_system_close": ["system", ">", "/"],
    "myPT_user_open": ["user", ":", "<"], "myPT_user_close": ["user", ">", "/"],
    "myPT_assistant_open": ["assistant", ":", "<"], "myPT_assistant_close": ["assistant", ">", "/"],
    "myPT_eot": ["end", ".", "\n"],
}
GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def gpt_config(n_embd: int, n_head: int, n_layer: int, block_size: int, device: str = "cuda",
               dropout: float = 0.1) -> Dict[str, object]:
    """The original's GPTConfig dict (§1.1, field order kept) for a production-architecture model of this size
    (the 750M base's settings otherwise: configs/base/750M_unified_v1.json)."""
    return {"batch_size": 12, "block_size": block_size, "vocab_size": MODEL_VOCAB, "n_embd": n_embd,
            "n_head": n_head, "n_layer": n_layer, "dropout": dropout, "bias": False, "use_checkpoint": True,
            "device": device, "use_loss_mask": False, "tie_weights": True, "save_dtype": None,
            "pos_encoding": "rope", "mlp_type": "swiglu", "norm_type": "rmsnorm", "rope_theta": 10000.0,
            "rope_scale": 1.0, "segment_position_reset": True, "neftune_alpha": 0.0, "batch_sampling_mode": "epoch",
            "pad_token_id": None, "episode_min_tokens": 2, "epoch_seed": 1337, "epoch_shuffle": True,
            "epoch_drop_last": True}


def tokenizer_state() -> Dict[str, object]:
    """The gpt2-kind ``tokenizer.json`` the original writes (the canonical 19-tag layout)."""
    return {"token_kind": "gpt2", "chars": None, "base_vocab_size": GPT2_BASE_VOCAB, "model_vocab_size": MODEL_VOCAB,
            "special_token_encoder": {string: TAG_IDS[name] for name, string in TAGS},
            "special_tokens_by_name": dict(TAG_IDS), "special_token_version": 1}


def init_state_dict(cfg: Dict[str, object], seed: int = 0) -> Dict[str, torch.Tensor]:
    """Fresh weights under the original's key names, shapes (§2) and init (§1.9); the tied pair is one tensor."""
    g = torch.Generator().manual_seed(seed)
    C, V, n = int(cfg["n_embd"]), int(cfg["vocab_size"]), int(cfg["n_layer"])
    H = ((int(8 * C / 3) + 63) // 64) * 64  # SwiGLU hidden, rounded up to a multiple of 64 (§1.5)

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    sd: Dict[str, torch.Tensor] = {"token_embedding_table.weight": normal(V, C)}
    for i in range(n):
        p = f"blocks.{i}."
        sd[p + "sa.qkv.weight"] = normal(3 * C, C)
        sd[p + "sa.proj.weight"] = normal(C, C)
        sd[p + "fwd.w_gate.weight"] = normal(H, C)
        sd[p + "fwd.w_up.weight"] = normal(H, C)
        sd[p + "fwd.w_down.weight"] = normal(C, H, std=0.02 / math.sqrt(2 * n))
        sd[p + "ln1.weight"] = torch.ones(C)
        sd[p + "ln2.weight"] = torch.ones(C)
    sd["ln_f.weight"] = torch.ones(C)
    sd["lm_head.weight"] = sd["token_embedding_table.weight"]  # tie_weights: the same Parameter
    sd["lm_head.bias"] = torch.zeros(V)
    return sd


def make_sft_ready(sd: Dict[str, torch.Tensor], tiktoken_file: Path) -> None:
    """init_special_embeddings.py --phase 3a (§7): each chat tag's row = the mean of the GPT-2 rows of its source
    strings (encoded without a leading space, every piece < 50257 kept), in the embedding and the (tied) lm_head."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    encoding = tiktoken.Encoding("gpt2", pat_str=GPT2_PAT, mergeable_ranks=load_tiktoken_bpe(str(tiktoken_file)),
                                 special_tokens={})
    embedding = sd["token_embedding_table.weight"]
    for name, sources in SFT_READY_SOURCES.items():
        ids = [i for text in sources for i in encoding.encode_ordinary(text) if i < GPT2_BASE_VOCAB]
        embedding[TAG_IDS[name]] = embedding[ids].mean(dim=0)  # lm_head.weight is this tensor (tied)


def write_native_checkpoint(out_dir: Path | str, *, n_embd: int = 64, n_head: int = 4, n_layer: int = 2,
                            block_size: int = 1024, dtype: str = "bf16", seed: int = 0, step: int = 75000,
                            tiktoken_file: Optional[Path | str] = None, device: str = "cuda") -> Path:
    """Write ``out_dir/{config.json, model.pt, tokenizer.json, training_state.json}`` as the original's
    ``save_checkpoint_bundle`` does; ``dtype`` "bf16" (a training save) or "fp32" (no save dtype). With
    ``tiktoken_file`` (the GPT-2 ranks) the chat tags get the sft_ready rows (§7). Returns ``out_dir``."""
    if dtype not in ("bf16", "fp32"):
        raise ValueError(f"dtype must be bf16 or fp32, got {dtype!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=False)
    cfg = gpt_config(n_embd, n_head, n_layer, block_size, device=device)
    sd = init_state_dict(cfg, seed=seed)
    if tiktoken_file is not None:
        make_sft_ready(sd, Path(tiktoken_file))
    if dtype == "bf16":
        # model.to(bfloat16) then save_dtype='bf16': each tensor cast on its own, so the tied pair becomes two
        sd = {key: value.to(torch.bfloat16).clone() for key, value in sd.items()}
        wrapper = {"state_dict": sd, "checkpoint_dtype": "bf16", "model_dtype": "bfloat16"}
        state = {"step": step, "model_dtype_at_save": "bfloat16", "checkpoint_dtype": "bf16"}
    else:
        wrapper = {"state_dict": sd, "checkpoint_dtype": None, "model_dtype": "float32"}
        state = {"step": step, "model_dtype_at_save": "float32"}
    (out / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    torch.save(wrapper, out / "model.pt")
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_state(), indent=2), encoding="utf-8")
    (out / "training_state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--n_embd", type=int, default=64)
    parser.add_argument("--n_head", type=int, default=4)
    parser.add_argument("--n_layer", type=int, default=2)
    parser.add_argument("--block_size", type=int, default=1024)
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiktoken", type=Path, default=None, help="GPT-2 ranks: give the chat tags sft_ready rows")
    args = parser.parse_args()
    path = write_native_checkpoint(args.out_dir, n_embd=args.n_embd, n_head=args.n_head, n_layer=args.n_layer,
                                   block_size=args.block_size, dtype=args.dtype, seed=args.seed,
                                   tiktoken_file=args.tiktoken)
    print(path)


if __name__ == "__main__":
    main()
