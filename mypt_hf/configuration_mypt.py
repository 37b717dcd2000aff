"""MyPTConfig: every architecture option of the original MyPT GPT, under HF and original names.

The original ``GPTConfig`` silently fell back to the GPT-2 variant for any unknown string option
(a typo gave a different model); here unknown values raise ``ValueError``.

Original names are accepted as aliases (``n_embd``, ``n_head``, ``n_layer``, ``block_size``) both as
constructor keywords and as attributes, via ``attribute_map``; the HF names are what is stored.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Dict, Optional, Union

from transformers import PreTrainedConfig

POS_ENCODINGS = ("rope", "learned")
MLP_TYPES = ("swiglu", "gelu")
NORM_TYPES = ("rmsnorm", "layernorm")
#: The original's fixed eps per norm type (RMSNorm class default 1e-6, torch LayerNorm default 1e-5).
DEFAULT_NORM_EPS = {"rmsnorm": 1e-6, "layernorm": 1e-5}


def swiglu_hidden_size(n_embd: int) -> int:
    """The original's SwiGLU width: int(8*C/3) rounded up to a multiple of 64 (1280 -> 3456)."""
    hidden = int(8 * n_embd / 3)
    return ((hidden + 63) // 64) * 64


class MyPTConfig(PreTrainedConfig):
    r"""Configuration of the MyPT decoder-only GPT (pre-norm, optional RoPE/SwiGLU/RMSNorm, lm_head bias).

    Defaults describe the production architecture (RoPE, SwiGLU, RMSNorm, tied embeddings) at the
    original's default size; converted checkpoints set every field explicitly.

    Args:
        vocab_size: rows of the embedding and lm_head (50304 for the GPT-2 layout).
        hidden_size: model width C (original ``n_embd``).
        num_hidden_layers: blocks (original ``n_layer``).
        num_attention_heads: heads; multi-head only (original ``n_head``).
        max_position_embeddings: context length (original ``block_size``): learned position table size.
        pos_encoding: ``"rope"`` (rotate-half RoPE) or ``"learned"`` (absolute position table).
        mlp_type: ``"swiglu"`` (bias-free gate/up/down) or ``"gelu"`` (exact-erf GELU, Linears with bias).
        norm_type: ``"rmsnorm"`` (weight only) or ``"layernorm"`` (weight and bias).
        norm_eps: defaults to the original's value for the norm type (1e-6 / 1e-5).
        intermediate_size: MLP width; defaults to the original's (8C/3 rounded up to 64 for SwiGLU, 4C for GELU).
        bias: bias on the attention qkv and out projections only (as in the original).
        lm_head_bias: the original's lm_head always has a bias; default True so a fresh model is the
            original architecture (same parameters, loadable into the original's state-dict layout, same
            training dynamics). Set False for a model that exports exactly to ``LlamaForCausalLM``.
        tie_word_embeddings: share the embedding and lm_head weight (the bias stays separate).
        rope_theta: RoPE base.
        rope_scale: linear position interpolation factor (positions are divided by it).
        dropout: probability used at the original's three places (attention probabilities, after the
            attention out-projection, after the MLP); 0.0 by default, as fine-tuning recipes set it.
        initializer_range: std of the N(0, std) init; output projections get std / sqrt(2 * n_layer).
    """

    model_type: ClassVar[str] = "mypt"
    keys_to_ignore_at_inference: ClassVar[list] = ["cache"]
    attribute_map: ClassVar[Dict[str, str]] = {
        "n_embd": "hidden_size",
        "n_head": "num_attention_heads",
        "n_layer": "num_hidden_layers",
        "block_size": "max_position_embeddings",
    }
    base_model_tp_plan: ClassVar[Optional[dict]] = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.o_proj": "rowwise",
        "layers.*.mlp.gate_proj": "colwise",
        "layers.*.mlp.up_proj": "colwise",
        "layers.*.mlp.down_proj": "rowwise",
    }

    vocab_size: int = 50304
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 6
    max_position_embeddings: int = 256
    pos_encoding: str = "rope"
    mlp_type: str = "swiglu"
    norm_type: str = "rmsnorm"
    norm_eps: Optional[float] = None
    intermediate_size: Optional[int] = None
    bias: bool = False
    lm_head_bias: bool = True
    tie_word_embeddings: bool = True
    rope_theta: float = 10000.0
    rope_scale: float = 1.0
    dropout: float = 0.0
    initializer_range: float = 0.02
    use_cache: bool = True
    pad_token_id: Optional[int] = None
    bos_token_id: Optional[int] = None
    eos_token_id: Optional[Union[int, list]] = None

    def __post_init__(self, **kwargs: Any) -> None:
        # Original names arrive as extra kwargs; apply them before deriving anything from the HF fields.
        for old, new in self.attribute_map.items():
            if old in kwargs:
                setattr(self, new, kwargs.pop(old))
        if "tie_weights" in kwargs:  # the original's name for the same flag
            self.tie_word_embeddings = bool(kwargs.pop("tie_weights"))
        for name, allowed in (("pos_encoding", POS_ENCODINGS), ("mlp_type", MLP_TYPES), ("norm_type", NORM_TYPES)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"MyPTConfig: unknown {name} {value!r}; expected one of {', '.join(allowed)}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(f"MyPTConfig: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.pos_encoding == "rope" and self.head_dim % 2 != 0:
            raise ValueError(f"MyPTConfig: RoPE needs an even head_dim, got {self.head_dim}")
        if not (self.rope_scale > 0 and math.isfinite(self.rope_scale)):
            raise ValueError(f"MyPTConfig: rope_scale must be a positive number, got {self.rope_scale!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MyPTConfig: dropout must be in [0, 1), got {self.dropout!r}")
        if self.norm_eps is None:
            self.norm_eps = DEFAULT_NORM_EPS[self.norm_type]
        if self.intermediate_size is None:
            self.intermediate_size = (swiglu_hidden_size(self.hidden_size) if self.mlp_type == "swiglu"
                                      else 4 * self.hidden_size)
        super().__post_init__(**kwargs)

    @property
    def head_dim(self) -> int:
        """Per-head width (hidden_size / num_attention_heads); no override, as in the original."""
        return self.hidden_size // self.num_attention_heads

    @property
    def num_key_value_heads(self) -> int:
        """Multi-head attention only: one key/value head per query head."""
        return self.num_attention_heads


# save_pretrained copies this file and writes auto_map, so trust_remote_code loading works without mypt_hf.
MyPTConfig.register_for_auto_class()

# AutoConfig.from_pretrained without trust_remote_code once mypt_hf is imported (mypt_hf/__init__.py sees to it
# that this module is imported when transformers is). Only the package's copy registers: the copy next to a saved
# model runs under transformers_modules.* with trust_remote_code and must not take over "mypt" in a process that
# has mypt_hf.
if __package__ == "mypt_hf":
    from transformers import AutoConfig

    AutoConfig.register(MyPTConfig.model_type, MyPTConfig, exist_ok=True)

__all__ = ["MyPTConfig", "swiglu_hidden_size", "POS_ENCODINGS", "MLP_TYPES", "NORM_TYPES", "DEFAULT_NORM_EPS"]
