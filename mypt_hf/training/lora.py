"""LoRA fine-tuning the way TRL does it: TRL's ``ModelConfig`` PEFT flags (same names, same defaults), turned into
a ``peft.LoraConfig`` by ``trl.get_peft_config`` and handed to the trainer as ``peft_config``; the combinations
MyPT refuses; and the saved layout.

Saved layout of a LoRA run (``output_dir``)::

    output_dir/            the merged full model (merge_and_unload of the adapter into the starting model), as a full
                           fine-tune saves it: the next phase, eval, generate and from_pretrained load it unchanged
    output_dir/adapter/    the PEFT adapter alone (adapter_config.json + adapter_model.safetensors + tokenizer),
                           base_model_name_or_path = the starting model (init_from_model)

Light on purpose (no torch, no TRL at import): ``mypt-hf train`` builds its flags from :class:`LoraArguments`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import MyPTInputError

ADAPTER_DIR = "adapter"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass
class LoraArguments:
    """The PEFT fields of ``trl.ModelConfig``, with its names and defaults (tests/test_peft.py compares them).

    Left out: ``load_in_4bit`` / ``load_in_8bit`` and the other bitsandbytes fields (QLoRA: CUDA-only, and MyPT's
    starting model is loaded in fp32) and ModelConfig's model-loading fields (``init_from_model`` names the model).
    ``lora_target_modules`` None = every linear of the decoder blocks (attention q/k/v/o and the MLP projections).
    """

    use_peft: bool = field(default=False, metadata={"help": "Train a LoRA adapter instead of every weight (TRL's "
                                                            "flag); saves the merged model and output_dir/adapter."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scaling alpha/r, or alpha/sqrt(r) with "
                                                          "use_rslora)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: Optional[List[str]] = field(
        default=None, metadata={"help": "Module names to adapt (comma- or space-separated; 'all-linear' = every "
                                        "linear but the head). Default: the decoder blocks' linears (q_proj k_proj "
                                        "v_proj o_proj, and gate_proj up_proj down_proj or up_proj down_proj)."})
    lora_target_parameters: Optional[List[str]] = field(
        default=None, metadata={"help": "PEFT target_parameters (MoE expert weights); MyPT has none: refused."})
    lora_modules_to_save: Optional[List[str]] = field(
        default=None, metadata={"help": "Modules trained fully beside the adapter and saved with it (e.g. norm); "
                                        "not the tied embedding / head."})
    lora_task_type: str = field(default="CAUSAL_LM", metadata={"help": "PEFT task type (only CAUSAL_LM here)."})
    use_rslora: bool = field(default=False, metadata={"help": "Rank-stabilised LoRA: scaling alpha/sqrt(r)."})
    use_dora: bool = field(default=False, metadata={"help": "DoRA (weight-decomposed LoRA)."})

    def __post_init__(self) -> None:
        for name in ("lora_target_modules", "lora_target_parameters", "lora_modules_to_save"):
            setattr(self, name, _names(getattr(self, name)))
        if isinstance(self.lora_r, bool) or not isinstance(self.lora_r, int) or self.lora_r < 1:
            raise MyPTInputError(f"must be a whole number >= 1, got {self.lora_r!r}", field="lora_r")
        if isinstance(self.lora_alpha, bool) or not isinstance(self.lora_alpha, (int, float)) or self.lora_alpha <= 0:
            raise MyPTInputError(f"must be a number > 0, got {self.lora_alpha!r}", field="lora_alpha")
        if not isinstance(self.lora_dropout, (int, float)) or not 0.0 <= self.lora_dropout < 1.0:
            raise MyPTInputError(f"must be a number in [0, 1), got {self.lora_dropout!r}", field="lora_dropout")
        if self.use_peft and str(self.lora_task_type).upper() != "CAUSAL_LM":
            raise MyPTInputError(f"MyPT is a causal LM: only CAUSAL_LM is supported, got {self.lora_task_type!r}",
                                 field="lora_task_type")
        if self.use_peft and self.lora_target_parameters:
            raise MyPTInputError("MyPT has no parameter-targeted layers (MoE experts); adapt modules with "
                                 "lora_target_modules instead", field="lora_target_parameters")

    def card_rows(self) -> Dict[str, Any]:
        """The LoRA settings as the model card lists them."""
        return {key: value for key, value in asdict(self).items() if key not in ("lora_target_parameters",)}


def _names(value: Any) -> Optional[List[str]]:
    """A list-of-names field from YAML (a list or a "a,b" string) or the command line (``--x a b`` or ``--x a,b``,
    ``--set x=a,b``): a flat list of names, None when empty."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    names = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    return names or None


def check_lora_arguments(lora: Optional[LoraArguments], args: Any, *, fresh_model: bool = False) -> None:
    """Refuse the combinations of LoRA and the trainer's settings that cannot work, before a model is loaded.

    ``args`` is the MyPTSFTConfig; ``fresh_model``: the run would start from a freshly initialised model. Also
    refuses resuming a checkpoint of the other kind (an adapter-only checkpoint without use_peft, or a full one
    with it), which the Trainer would load wrongly or crash on mid-run.
    """
    use_peft = bool(lora is not None and lora.use_peft)
    resume = getattr(args, "resume_from_checkpoint", None)
    if resume:
        from .checkpoints import resolve_resume_checkpoint

        checkpoint = resolve_resume_checkpoint(resume, args.output_dir)
        if checkpoint is not None:
            is_adapter = (Path(checkpoint) / ADAPTER_CONFIG).is_file()
            if is_adapter != use_peft:
                kind = "a LoRA adapter checkpoint" if is_adapter else "a full-model checkpoint"
                raise MyPTInputError(f"{kind}: resume it with use_peft {'true' if is_adapter else 'false'} (and the "
                                     "same LoRA settings) as the run that wrote it", path=checkpoint,
                                     field="resume_from_checkpoint")
    if not use_peft:
        return
    if fresh_model:
        raise MyPTInputError("LoRA adapts a trained model; a fresh model has nothing to adapt: pass --init_from_model "
                             "(the tiny base trains fully)", field="use_peft")
    if getattr(args, "freeze_layers", 0) or getattr(args, "freeze_embeddings", False):
        name = "freeze_layers" if getattr(args, "freeze_layers", 0) else "freeze_embeddings"
        raise MyPTInputError("LoRA already freezes every base weight (only the adapter trains); freeze_layers and "
                             "freeze_embeddings are for full fine-tuning: leave them off with use_peft", field=name)


def default_target_modules(model: Any) -> List[str]:
    """The names of the linears inside the decoder blocks (attention and MLP), in model order."""
    from torch import nn

    from .freezing import decoder_layers

    names: List[str] = []
    for name, module in decoder_layers(model).named_modules():
        short = name.rsplit(".", 1)[-1]
        if isinstance(module, nn.Linear) and short not in names:
            names.append(short)
    return names


def _matches(module_name: str, target: str) -> bool:
    # PEFT's rule for a list of names: the full name, or its last components
    return module_name == target or module_name.endswith("." + target)


def build_peft_config(lora: LoraArguments, model: Any) -> Any:
    """``trl.get_peft_config`` of these settings (a ``peft.LoraConfig``) for ``model``, checked against it.

    Refused (MyPTInputError): a target or module to save that the model does not have; the output head as a target
    (TRL's loss reads ``lm_head.weight`` directly, so its adapter would never train); the embedding or the head as a
    target or module to save when they are tied (the adapter or the trained copy would untie them, and the merged
    model would differ from the trained one).
    """
    from trl import ModelConfig, get_peft_config

    targets = lora.lora_target_modules or default_target_modules(model)
    module_names = [name for name, _ in model.named_modules() if name]
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    by_name = dict(model.named_modules())
    tied = head is not None and embedding is not None and head.weight is embedding.weight
    for field_name, names in (("lora_target_modules", [] if targets == ["all-linear"] else targets),
                              ("lora_modules_to_save", lora.lora_modules_to_save or [])):
        for target in names:
            found = [name for name in module_names if _matches(name, target)]
            if not found:
                leaves = sorted({name.rsplit(".", 1)[-1] for name in module_names})
                raise MyPTInputError(f"the model has no module {target!r} (its module names: {', '.join(leaves)})",
                                     field=field_name)
            hits = {id(by_name[name]) for name in found}
            if field_name == "lora_target_modules" and head is not None and id(head) in hits:
                raise MyPTInputError(f"{target!r} is the output head: TRL computes the loss from lm_head.weight "
                                     "directly, so an adapter there never trains; adapt the blocks' linears",
                                     field=field_name)
            if tied and (id(head) in hits or id(embedding) in hits):
                raise MyPTInputError(f"{target!r} is the embedding or the output head, which this model ties; an "
                                     f"adapter or a trained copy there would untie them (the merged model would "
                                     "differ from the trained one): leave it out", field=field_name)
    config = ModelConfig(use_peft=True, lora_r=lora.lora_r, lora_alpha=lora.lora_alpha,
                         lora_dropout=lora.lora_dropout, lora_target_modules=list(targets),
                         lora_modules_to_save=lora.lora_modules_to_save, lora_task_type=lora.lora_task_type,
                         use_rslora=lora.use_rslora, use_dora=lora.use_dora)
    # ModelConfig turns a one-name list into a string, which PEFT reads as a regex of the full module name (it is
    # meant for "all-linear"); a single module name must stay a list to match by suffix.
    config.lora_target_modules = "all-linear" if targets == ["all-linear"] else list(targets)
    return get_peft_config(config)


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is a ``peft.PeftModel`` (without importing peft when it is not loaded)."""
    import sys

    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def trainable_counts(model: Any) -> Optional[Tuple[int, int]]:
    """``(trainable, total)`` parameters of a PEFT model (``PeftModel.get_nb_trainable_parameters``), None for a
    plain model."""
    return tuple(model.get_nb_trainable_parameters()) if is_peft_model(model) else None


def save_merged_model(adapter_dir: str | Path, base_dir: str | Path, output_dir: str | Path, tokenizer: Any) -> Any:
    """Load ``base_dir`` (the starting model) fresh, apply the adapter saved in ``adapter_dir``, merge it
    (``merge_and_unload``) and save the full model with MyPT's generation config and ``tokenizer`` to
    ``output_dir``; returns the merged model.

    From disk rather than the trainer's module, so it works whatever wrapped the model in training (FSDP shards,
    DeepSpeed) and proves the saved adapter loads as ``PeftModel.from_pretrained(base, adapter_dir)``.
    """
    import torch
    from peft import PeftModel

    from ..model_files import load_causal_lm
    from ..modeling_mypt import set_mypt_generation_config

    base = load_causal_lm(base_dir, field="init_from_model", dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    try:
        set_mypt_generation_config(merged, tokenizer)
    except ValueError:  # not a MyPT tokenizer: keep the model's own stop ids
        merged.generation_config.pad_token_id = tokenizer.pad_token_id
    merged.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    return merged


def adapter_settings(adapter_dir: str | Path) -> Dict[str, Any]:
    """The saved adapter's ``adapter_config.json`` (r, alpha, targets, base model) for the model card."""
    return json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text(encoding="utf-8"))


def card_section(lora: LoraArguments, adapter_dir: str | Path, trainable: Optional[Sequence[int]] = None) -> List[str]:
    """The model card's LoRA section: how the model was trained, where the adapter is and how to load it."""
    saved = adapter_settings(adapter_dir) if (Path(adapter_dir) / ADAPTER_CONFIG).is_file() else {}
    targets = saved.get("target_modules") or lora.lora_target_modules
    if isinstance(targets, (list, tuple, set)):
        targets = ", ".join(sorted(targets))
    rows = {"r": lora.lora_r, "lora_alpha": lora.lora_alpha, "lora_dropout": lora.lora_dropout,
            "target_modules": targets, "modules_to_save": ", ".join(lora.lora_modules_to_save or []) or "none",
            "use_rslora": lora.use_rslora, "use_dora": lora.use_dora,
            "base_model_name_or_path": saved.get("base_model_name_or_path", "")}
    lines = ["## LoRA", "",
             "Trained as a LoRA adapter (TRL `peft_config`); this directory holds the merged full model "
             "(`merge_and_unload`), `adapter/` the adapter alone:", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {str(value).replace('|', '/')} |" for key, value in rows.items()]
    if trainable:
        lines.append(f"| trainable parameters | {trainable[0]:,} of {trainable[1]:,} ({trainable[0] / trainable[1]:.2%}) |")
    lines += ["", "```python", "from peft import PeftModel",
              "model = PeftModel.from_pretrained(base_model, 'adapter')  # base_model: the model above", "```", ""]
    return lines


__all__ = ["ADAPTER_DIR", "ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "LoraArguments", "check_lora_arguments",
           "default_target_modules", "build_peft_config", "is_peft_model", "trainable_counts", "save_merged_model", "adapter_settings",
           "card_section"]
