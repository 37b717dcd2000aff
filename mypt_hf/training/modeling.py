"""Model construction for training: a fresh MyPT model, or a saved one to fine-tune (init_from_model)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Tuple

from ..errors import MyPTInputError


@dataclass
class ModelArguments:
    """What to train: a saved model (``init_from_model``) or a fresh MyPT of the given shape.

    The shape fields only apply to a fresh model; a model loaded with ``init_from_model`` keeps its own
    config (as the original does), except ``dropout`` when set explicitly.
    """

    tokenizer: str = field(default="embedded", metadata={"help": "Tokenizer for a fresh model: 'embedded', "
                                                                 "'embedded:<N>', a .tiktoken file or a directory."})
    hidden_size: int = field(default=256, metadata={"help": "Width (n_embd) of a fresh model."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Blocks (n_layer) of a fresh model."})
    num_attention_heads: int = field(default=4, metadata={"help": "Heads (n_head) of a fresh model."})
    block_size: int = field(default=256, metadata={"help": "Context length (max_position_embeddings)."})
    pos_encoding: str = field(default="rope", metadata={"help": "rope or learned."})
    mlp_type: str = field(default="swiglu", metadata={"help": "swiglu or gelu."})
    norm_type: str = field(default="rmsnorm", metadata={"help": "rmsnorm or layernorm."})
    tie_word_embeddings: bool = field(default=True, metadata={"help": "Tie embedding and head."})
    dropout: Optional[float] = field(default=None, metadata={"help": "Dropout (None = the model's own)."})
    require_init_from_model: bool = field(
        default=False, metadata={"help": "Refuse to start from a fresh model (the 750M configs fine-tune a base)."})


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
                        max_position_embeddings=args.block_size, pos_encoding=args.pos_encoding,
                        mlp_type=args.mlp_type, norm_type=args.norm_type,
                        tie_word_embeddings=args.tie_word_embeddings,
                        dropout=args.dropout if args.dropout is not None else 0.0,
                        pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_token_ids(tokenizer))
    torch.manual_seed(seed)
    model = MyPTForCausalLM(config)
    set_mypt_generation_config(model, tokenizer)
    return model, tokenizer


def load_model_for_training(path: str | os.PathLike, dropout: Optional[float] = None) -> Tuple[Any, Any]:
    """Load a saved model directory (weights + tokenizer) to fine-tune, in fp32.

    Raises MyPTInputError naming the directory when it is missing or lacks a config or a tokenizer.
    """
    import torch
    from transformers import AutoModelForCausalLM

    import mypt_hf  # noqa: F401  (registers MyPT with the Auto classes)

    from ..tokenization_mypt import load_tokenizer

    path = Path(path)
    if not path.is_dir():
        raise MyPTInputError("init_from_model directory not found", path=str(path), field="init_from_model")
    if not (path / "config.json").is_file():
        raise MyPTInputError("not a saved model directory (no config.json)", path=str(path), field="init_from_model")
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise MyPTInputError("saved model has no tokenizer (tokenizer.json)", path=str(path), field="init_from_model")
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    if dropout is not None and hasattr(model.config, "dropout"):
        model.config.dropout = dropout
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = dropout
    tokenizer = load_tokenizer(str(path))
    return model, tokenizer
