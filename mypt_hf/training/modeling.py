"""Model construction for training: a fresh MyPT model, or a saved one to fine-tune (init_from_model)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from ..errors import MyPTInputError

logger = logging.getLogger(__name__)


#: The context of a fresh model when ``block_size`` is not given.
DEFAULT_BLOCK_SIZE = 256


@dataclass
class ModelArguments:
    """What to train: a saved model (``init_from_model``) or a fresh MyPT of the given shape.

    The shape fields only apply to a fresh model; a model loaded with ``init_from_model`` keeps its own
    config (as the original does), except ``dropout`` and ``block_size`` when set explicitly: the original's
    init_from_model takes the fine-tuning config's block_size (reference §6.8, §6.13), so the 750M α-3a-2 configs
    (512) save their models with a 512-token context and the operator config (1024) with 1024.
    """

    tokenizer: str = field(default="embedded", metadata={"help": "Tokenizer for a fresh model: 'embedded', "
                                                                 "'embedded:<N>', a .tiktoken file or a directory."})
    hidden_size: int = field(default=256, metadata={"help": "Width (n_embd) of a fresh model."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Blocks (n_layer) of a fresh model."})
    num_attention_heads: int = field(default=4, metadata={"help": "Heads (n_head) of a fresh model."})
    block_size: Optional[int] = field(
        default=None, metadata={"help": f"Context length (max_position_embeddings): of a fresh model (default "
                                        f"{DEFAULT_BLOCK_SIZE}), or the new context of a loaded one (default: its "
                                        "own)."})
    pos_encoding: str = field(default="rope", metadata={"help": "rope or learned."})
    mlp_type: str = field(default="swiglu", metadata={"help": "swiglu or gelu."})
    norm_type: str = field(default="rmsnorm", metadata={"help": "rmsnorm or layernorm."})
    tie_word_embeddings: bool = field(default=True, metadata={"help": "Tie embedding and head."})
    dropout: Optional[float] = field(default=None, metadata={"help": "Dropout (None = the model's own)."})
    require_init_from_model: bool = field(
        default=False, metadata={"help": "Refuse to start from a fresh model (the 750M configs fine-tune a base)."})

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "block_size"):
            value = getattr(self, name)
            if name == "block_size" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MyPTInputError(f"must be a whole number >= 1, got {value!r}", field=name)
        if self.hidden_size % self.num_attention_heads:
            raise MyPTInputError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                                 f"{self.num_attention_heads}", field="hidden_size")
        choices = {"pos_encoding": ("rope", "learned"), "mlp_type": ("swiglu", "gelu"),
                   "norm_type": ("rmsnorm", "layernorm")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise MyPTInputError(f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}", field=name)
        if self.dropout is not None and not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise MyPTInputError(f"must be a number in [0, 1), got {self.dropout!r}", field="dropout")


def build_fresh_model(args: ModelArguments, tokenizer: Any = None, seed: int = 42) -> Tuple[Any, Any]:
    """A freshly initialised MyPT model sized by ``args`` and its tokenizer (``load_tokenizer(args.tokenizer)``)."""
    import torch

    from ..configuration_mypt import MyPTConfig
    from ..modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
    from ..tokenization_mypt import load_tokenizer, model_vocab_size, stop_token_ids

    if tokenizer is None:
        tokenizer = load_tokenizer(None if args.tokenizer in (None, "", "embedded") else args.tokenizer)
    config = MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=args.hidden_size,
                        num_hidden_layers=args.num_hidden_layers, num_attention_heads=args.num_attention_heads,
                        max_position_embeddings=args.block_size or DEFAULT_BLOCK_SIZE,
                        pos_encoding=args.pos_encoding,
                        mlp_type=args.mlp_type, norm_type=args.norm_type,
                        tie_word_embeddings=args.tie_word_embeddings,
                        dropout=args.dropout if args.dropout is not None else 0.0,
                        pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_token_ids(tokenizer))
    torch.manual_seed(seed)
    model = MyPTForCausalLM(config)
    set_mypt_generation_config(model, tokenizer)
    return model, tokenizer


def set_context_length(model: Any, block_size: int) -> Optional[int]:
    """Give a loaded model the context ``block_size``, as the original's init_from_model does with the fine-tuning
    config's block_size (reference §6.8); returns the old context, or None when it was already ``block_size``.

    RoPE computes its angles per position, so only ``max_position_embeddings`` changes (what the saved config
    says, what generation and the data checks cap at). A learned position table is cut to its first rows; it is
    never grown (the original fills new rows with untrained N(0, 1) values): MyPTInputError.
    """
    import torch

    old = int(model.config.max_position_embeddings)
    if block_size == old:
        return None
    if getattr(model.config, "pos_encoding", "rope") == "learned":
        if block_size > old:
            raise MyPTInputError(f"block_size {block_size} is larger than the loaded model's learned position table "
                                 f"({old} positions); the new positions would be untrained: use block_size {old} "
                                 "or less", field="block_size")
        decoder = model.get_decoder()
        table = torch.nn.Embedding(block_size, model.config.hidden_size, dtype=decoder.embed_positions.weight.dtype)
        with torch.no_grad():
            table.weight.copy_(decoder.embed_positions.weight[:block_size])
        decoder.embed_positions = table
    model.config.max_position_embeddings = int(block_size)
    return old


def load_model_for_training(path: str | os.PathLike, dropout: Optional[float] = None,
                            block_size: Optional[int] = None) -> Tuple[Any, Any]:
    """Load a saved model directory (weights + tokenizer) to fine-tune, in fp32; ``dropout`` and ``block_size``
    (:func:`set_context_length`) replace the model's own when given.

    Raises MyPTInputError naming the directory (or its damaged file) when it is missing, lacks a config, whole
    weights or a tokenizer, or holds a config the model class refuses.
    """
    import torch

    from ..model_files import check_saved_model_dir, load_causal_lm
    from ..tokenization_mypt import load_tokenizer

    check_saved_model_dir(path, field="init_from_model",
                          tokenizer_hint="fine-tuning needs the model's own tokenizer: save it into the directory "
                                         "(tokenizer.save_pretrained(dir))")
    model = load_causal_lm(path, field="init_from_model", dtype=torch.float32)
    if dropout is not None and hasattr(model.config, "dropout"):
        model.config.dropout = dropout
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = dropout
    if block_size is not None:
        old = set_context_length(model, block_size)
        if old is not None:
            logger.info("context %d -> %d tokens (block_size of the config, as the original's init_from_model)",
                        old, block_size)
    tokenizer = load_tokenizer(str(path))
    return model, tokenizer
