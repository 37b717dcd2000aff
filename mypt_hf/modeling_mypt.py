"""The MyPT GPT as a transformers causal LM (written after transformers' models/llama/modeling_llama.py).

Differences from Llama, all taken from the original MyPT model:
- the lm_head has a bias (the original always has one; ``config.lm_head_bias``);
- options for learned absolute positions, an exact-erf GELU MLP with biases, LayerNorm with bias,
  biases on the attention projections (``config.bias``);
- RoPE supports linear position interpolation (positions / ``rope_scale``), computed exactly as the
  original does (scaled positions times inverse frequencies);
- dropout at the original's three places (attention probabilities, after the attention
  out-projection, after the MLP);
- the original's init (N(0, 0.02); output projections N(0, 0.02 / sqrt(2 * n_layer))).

This file imports only ``.configuration_mypt`` relatively (plus torch/transformers), so a saved model
directory loads with ``trust_remote_code=True`` where the mypt_hf package is not installed.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Tuple, Union

import torch
from torch import nn

from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel, slice_logits_to_keep
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_mypt import MyPTConfig

logger = logging.get_logger(__name__)


class MyPTRMSNorm(nn.Module):
    """RMSNorm with weight only. Computed in fp32 and cast back before the weight (identical to the
    original in fp32; in bf16 it matches the original's autocast training, where the norm ran in fp32)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


def _make_norm(config: MyPTConfig) -> nn.Module:
    if config.norm_type == "rmsnorm":
        return MyPTRMSNorm(config.hidden_size, eps=config.norm_eps)
    return nn.LayerNorm(config.hidden_size, eps=config.norm_eps)  # weight and bias, as the original


def compute_rope_inv_freq(config: MyPTConfig) -> torch.Tensor:
    """inv_freq_i = 1 / theta^(2i / head_dim), in fp32, as the original builds it."""
    dim = config.head_dim
    return 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


class MyPTRotaryEmbedding(nn.Module):
    """Rotate-half RoPE with linear position interpolation (positions divided by ``rope_scale``).

    ``inv_freq`` is a non-persistent buffer; ``MyPTPreTrainedModel._init_weights`` recomputes it, so it is
    right after ``from_pretrained`` (which builds the model on the meta device).
    """

    def __init__(self, config: MyPTConfig) -> None:
        super().__init__()
        self.config = config
        self.rope_scale = float(config.rope_scale)
        self.register_buffer("inv_freq", compute_rope_inv_freq(config), persistent=False)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        positions = position_ids.float()
        if self.rope_scale != 1.0:
            positions = positions / self.rope_scale
        freqs = positions[..., None] * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype=x.dtype), emb.sin().to(dtype=x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Dimension j is paired with j + head_dim/2 (the original's and Llama's layout, not interleaved)."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                         unsqueeze_dim: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


class MyPTMLP(nn.Module):
    """SwiGLU (bias-free gate/up/down) or GELU (exact erf; both Linears with bias, as the original)."""

    def __init__(self, config: MyPTConfig) -> None:
        super().__init__()
        self.mlp_type = config.mlp_type
        hidden, inner = config.hidden_size, config.intermediate_size
        if self.mlp_type == "swiglu":
            self.gate_proj = nn.Linear(hidden, inner, bias=False)
            self.up_proj = nn.Linear(hidden, inner, bias=False)
            self.down_proj = nn.Linear(inner, hidden, bias=False)
            self.act_fn = nn.SiLU()
        else:
            self.up_proj = nn.Linear(hidden, inner, bias=True)
            self.down_proj = nn.Linear(inner, hidden, bias=True)
            self.act_fn = nn.GELU(approximate="none")
        self.down_proj._is_residual_projection = True
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mlp_type == "swiglu":
            x = self.act_fn(self.gate_proj(x)) * self.up_proj(x)
        else:
            x = self.act_fn(self.up_proj(x))
        x = self.down_proj(x)
        # Functional and skipped when off: a Dropout module per call costs ~5% of small-model decode speed.
        if self.training and self.dropout > 0.0:
            x = nn.functional.dropout(x, p=self.dropout, training=True)
        return x


def eager_attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: Optional[torch.Tensor], scaling: float, dropout: float = 0.0,
                            **kwargs: Unpack[TransformersKwargs]) -> Tuple[torch.Tensor, torch.Tensor]:
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value)
    return attn_output.transpose(1, 2).contiguous(), attn_weights


class MyPTAttention(nn.Module):
    """Multi-head causal self-attention; q/k/v are the row thirds of the original's fused ``qkv``."""

    def __init__(self, config: MyPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = 1
        self.scaling = self.head_dim ** -0.5
        self.attention_dropout = config.dropout
        self.is_causal = True
        self.use_rope = config.pos_encoding == "rope"
        width = config.hidden_size
        self.q_proj = nn.Linear(width, width, bias=config.bias)
        self.k_proj = nn.Linear(width, width, bias=config.bias)
        self.v_proj = nn.Linear(width, width, bias=config.bias)
        self.o_proj = nn.Linear(width, width, bias=config.bias)
        self.o_proj._is_residual_projection = True
        self.resid_dropout = config.dropout

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(self, hidden_states: torch.Tensor,
                position_embeddings: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                attention_mask: Optional[torch.Tensor] = None, cache: Optional[Cache] = None,
                **kwargs: Unpack[TransformersKwargs]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        if self.use_rope:
            cos, sin = position_embeddings
            query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if cache is not None:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx, kwargs=kwargs)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward)
        attn_output, attn_weights = attention_interface(
            self, query_states, key_states, value_states, attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling, **kwargs)
        attn_output = self.o_proj(attn_output.reshape(*input_shape, -1).contiguous())
        if self.training and self.resid_dropout > 0.0:
            attn_output = nn.functional.dropout(attn_output, p=self.resid_dropout, training=True)
        return attn_output, attn_weights


class MyPTDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: x + Attn(Norm1(x)), then x + MLP(Norm2(x))."""

    def __init__(self, config: MyPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.hidden_size = config.hidden_size
        self.self_attn = MyPTAttention(config=config, layer_idx=layer_idx)
        self.mlp = MyPTMLP(config)
        self.input_layernorm = _make_norm(config)
        self.post_attention_layernorm = _make_norm(config)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(self, hidden_states: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.LongTensor] = None, cache: Optional[Cache] = None,
                use_cache: Optional[bool] = False,
                position_embeddings: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, _ = self.self_attn(
            hidden_states=hidden_states, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
            use_cache=use_cache, position_embeddings=position_embeddings, **kwargs)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.mlp(self.post_attention_layernorm(hidden_states))
        return residual + hidden_states


class MyPTPreTrainedModel(PreTrainedModel):
    """Shared attributes and the original's weight initialization."""

    config: MyPTConfig
    config_class = MyPTConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MyPTDecoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _can_compile_fullgraph = True
    _supports_attention_backend = True
    _can_record_outputs = {"hidden_states": MyPTDecoderLayer, "attentions": MyPTAttention}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            if getattr(module, "_is_residual_projection", False):
                # Scaled residual init. The original meant it for both output projections but its name filter
                # missed the attention one ("attn.proj" vs "sa.proj"); we follow the stated intent.
                std = std / math.sqrt(2 * self.config.num_hidden_layers)
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, (MyPTRMSNorm, nn.LayerNorm)):
            init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, MyPTRotaryEmbedding):
            # Non-persistent buffer: from_pretrained leaves it uninitialized unless recomputed here.
            init.copy_(module.inv_freq, compute_rope_inv_freq(module.config))


class MyPTModel(MyPTPreTrainedModel):
    """The decoder stack without the lm_head; returns the final-normed hidden states."""

    def __init__(self, config: MyPTConfig) -> None:
        super().__init__(config)
        self.vocab_size = config.vocab_size
        # No padding_idx: the pad id is a real, trained token (<myPT_eot>).
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.pos_encoding == "learned":
            self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
            self.rotary_emb = None
        else:
            self.embed_positions = None
            self.rotary_emb = MyPTRotaryEmbedding(config=config)
        self.layers = nn.ModuleList([MyPTDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = _make_norm(config)
        self.gradient_checkpointing = False
        self.post_init()

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @merge_with_config_defaults
    @capture_outputs
    def forward(self, input_ids: Optional[torch.LongTensor] = None, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.LongTensor] = None, cache: Optional[Cache] = None,
                inputs_embeds: Optional[torch.Tensor] = None, use_cache: Optional[bool] = None,
                **kwargs: Unpack[TransformersKwargs]) -> BaseModelOutputWithPast:
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)

        cache_created_here = False
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
            cache_created_here = True
        if position_ids is None:
            past_seen_tokens = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen_tokens
            position_ids = position_ids.unsqueeze(0)

        # A cache made in this very call is empty, so the mask is the same without it; leaving it out keeps
        # create_causal_mask's packed-row detection (position_ids restarting at 0) working even when
        # use_cache defaults to True, so packed episodes never attend to each other.
        causal_mask = create_causal_mask(
            config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
            cache=None if cache_created_here else cache, position_ids=position_ids)

        hidden_states = inputs_embeds
        position_embeddings = None
        if self.embed_positions is not None:
            hidden_states = hidden_states + self.embed_positions(position_ids)
        else:
            position_embeddings = self.rotary_emb(hidden_states, position_ids=position_ids)

        for decoder_layer in self.layers[: self.config.num_hidden_layers]:
            hidden_states = decoder_layer(
                hidden_states, attention_mask=causal_mask, position_embeddings=position_embeddings,
                position_ids=position_ids, cache=cache, use_cache=use_cache, **kwargs)

        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, cache=cache)


class MyPTForCausalLM(MyPTPreTrainedModel, GenerationMixin):
    """MyPT with its language-model head (Linear with bias when ``config.lm_head_bias``)."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}

    def __init__(self, config: MyPTConfig) -> None:
        super().__init__(config)
        self.model = MyPTModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=config.lm_head_bias)
        self.post_init()

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(self, input_ids: Optional[torch.LongTensor] = None, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.LongTensor] = None, cache: Optional[Cache] = None,
                inputs_embeds: Optional[torch.Tensor] = None, labels: Optional[torch.LongTensor] = None,
                use_cache: Optional[bool] = None, logits_to_keep: Union[int, torch.Tensor] = 0,
                **kwargs: Unpack[TransformersKwargs]) -> CausalLMOutputWithPast:
        """Standard causal-LM forward. ``labels`` are shifted inside (-100 = ignored); pass
        ``num_items_in_batch`` for gradient-accumulation-correct token averaging. Packed rows: give
        ``position_ids`` restarting at 0 per episode and no ``attention_mask``."""
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
            inputs_embeds=inputs_embeds, use_cache=use_cache, **kwargs)
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=outputs.cache,
                                      hidden_states=outputs.hidden_states, attentions=outputs.attentions)


def set_mypt_generation_config(model: PreTrainedModel, tokenizer) -> None:
    """Point ``model.generation_config`` (and the config) at the MyPT stop tags and pad id.

    eos = ``mypt_hf.tokenization_mypt.stop_token_ids(tokenizer)`` (the ids of ``</myPT_assistant>`` and
    ``<myPT_eot>``; a ``ValueError`` when the tokenizer lacks them), pad = the tokenizer's pad id
    (``<myPT_eot>``), no BOS. Needs the mypt_hf package.
    """
    try:  # imported here: remote-code copies of this file run without mypt_hf
        from mypt_hf.tokenization_mypt import stop_token_ids
    except ImportError as error:
        raise ImportError("set_mypt_generation_config needs the mypt_hf package") from error
    stop_ids = stop_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[-1]
    model.generation_config.eos_token_id = stop_ids
    model.generation_config.pad_token_id = int(pad_id)
    model.generation_config.bos_token_id = None
    model.config.eos_token_id = stop_ids
    model.config.pad_token_id = int(pad_id)


MyPTForCausalLM.register_for_auto_class("AutoModelForCausalLM")

# AutoModelForCausalLM.from_pretrained without trust_remote_code once mypt_hf is imported (see
# configuration_mypt.py for why only the package's copy registers; transformers registers a remote copy itself).
if __package__ == "mypt_hf":
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.register(MyPTConfig, MyPTForCausalLM, exist_ok=True)

__all__ = ["MyPTPreTrainedModel", "MyPTModel", "MyPTForCausalLM", "set_mypt_generation_config"]
