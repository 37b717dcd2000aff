"""Parameter freezing and weight-decay grouping, model-agnostic (MyPT, Llama, GPT-2 layouts)."""

from __future__ import annotations

from typing import List

from torch import nn

from ..errors import MyPTInputError


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder blocks (the ModuleList whose length is the configured layer count)."""
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    backbone = getattr(model, "base_model", model)
    candidates = [module for module in backbone.modules() if isinstance(module, nn.ModuleList)]
    for module in candidates:
        if n_layers is None or len(module) == n_layers:
            return module
    raise MyPTInputError(f"cannot find the decoder blocks of {type(model).__name__} (expected a ModuleList of "
                         f"{n_layers} blocks)", field="freeze_layers")


def apply_freezing(model: nn.Module, freeze_layers: int = 0, freeze_embeddings: bool = False) -> List[str]:
    """Freeze the first ``freeze_layers`` decoder blocks and, optionally, the embedding tables.

    ``freeze_embeddings`` freezes every ``nn.Embedding`` outside the decoder blocks (the token table and a
    learned position table when there is one; with RoPE there is none, unlike the original this works).
    A tied output head shares the token table's parameter and is frozen with it; an untied head, the final
    norm and any head bias stay trainable, as in the original. Returns the frozen parameter names.
    """
    frozen: List[str] = []
    if freeze_layers:
        layers = decoder_layers(model)
        for block in list(layers)[: min(freeze_layers, len(layers))]:
            for param in block.parameters():
                param.requires_grad_(False)
    if freeze_embeddings:
        try:
            layer_modules = {id(m) for m in decoder_layers(model).modules()}
        except MyPTInputError:
            layer_modules = set()
        for module in model.modules():
            if isinstance(module, nn.Embedding) and id(module) not in layer_modules:
                module.weight.requires_grad_(False)
        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        if embeddings is not None:
            embeddings.weight.requires_grad_(False)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            frozen.append(name)
    return frozen


def decay_parameter_names(model: nn.Module) -> List[str]:
    """Names of the parameters that get weight decay: >=2-D weights that are not embedding tables.

    Norm weights and biases are 1-D and so excluded; the token (and position) tables are excluded by identity,
    which also excludes a tied output head (it is the same tensor), while an untied head is decayed, as in
    the original MyPT optimizer grouping.
    """
    embedding_params = {id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding)}
    return [name for name, param in model.named_parameters()
            if param.ndim >= 2 and id(param) not in embedding_params]
