"""MyPTSFTTrainer: TRL's SFTTrainer on MyPT's prepared (masked, optionally packed) datasets.

What it adds to SFTTrainer:
- prepared datasets straight from ``mypt_hf.data.prepare`` (no TRL tokenization/packing) with the packing
  collator, checked against the model's tokenizer and vocabulary before any step;
- the loss TRL computes with its fused head, sum of CE over supervised tokens / supervised tokens, where the
  denominator is always the count over the whole optimizer step (all gradient-accumulation micro-batches and
  ranks), so accumulation does not change the loss;
- MyPT's optimizer grouping (decay only on >=2-D non-embedding weights) and layer/embedding freezing;
- logs: loss, masked-token accuracy, supervised tokens/s, learning rate, and a correct token count for
  (B, L) batches that carry no attention_mask; ``report_to`` tensorboard / trackio get them too (tracking.py);
- eval prompts generated greedily with and without the KV cache at every evaluation (callbacks.py);
- Hub-style saving with MyPT's generation config and model card.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import nn
from trl import SFTTrainer

from ..data.metadata import PreparedMetadata
from ..errors import MyPTInputError
from .callbacks import EvalPromptsCallback
from .config import MyPTSFTConfig, resolve_max_steps
from .coverage import run_coverage
from .freezing import apply_freezing, decay_parameter_names
from .tracking import name_the_run, point_tensorboard

logger = logging.getLogger(__name__)


def check_dataset_matches(metadata: Optional[PreparedMetadata], tokenizer: Any, model: nn.Module,
                          datasets: Optional[Mapping[str, Any]] = None, dataset_dir: Optional[str] = None) -> None:
    """Refuse a dataset prepared with another tokenizer or vocabulary than the model's (before any step).

    Compares the metadata's tokenizer fingerprint with the tokenizer's, its vocabulary sizes with the
    tokenizer's length and the model's embedding rows, checks the largest token id of a sample of rows, and
    refuses rows longer than the model's context (``max_position_embeddings``): learned positions would crash
    mid-run, RoPE would silently train on positions the model is not configured for. ``metadata`` None: only
    the rows are checked.
    """
    where = str(dataset_dir) if dataset_dir else None
    model_vocab = int(model.get_input_embeddings().weight.shape[0])
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if metadata is not None:
        recorded = metadata.tokenizer
        if tokenizer is not None:
            from ..tokenization_mypt import tokenizer_fingerprint

            ours = tokenizer_fingerprint(tokenizer)
            if ours != recorded.fingerprint:
                raise MyPTInputError(
                    f"dataset was prepared with a different tokenizer (fingerprint {recorded.fingerprint[:12]}... vs "
                    f"the model's {ours[:12]}...); re-prepare it with the model's tokenizer", path=where,
                    field="tokenizer.fingerprint")
            if recorded.vocab_size != len(tokenizer):
                raise MyPTInputError(f"dataset tokenizer has {recorded.vocab_size} tokens, the model's tokenizer "
                                     f"{len(tokenizer)}", path=where, field="tokenizer.vocab_size")
        for size in (recorded.vocab_size, recorded.model_vocab_size):
            if size > model_vocab:
                raise MyPTInputError(f"dataset vocabulary ({size}) is larger than the model's embedding "
                                     f"({model_vocab} rows)", path=where, field="tokenizer.vocab_size")
        block = metadata.block_size
        if isinstance(context, int) and metadata.packing_enabled and block > context:
            raise MyPTInputError(f"dataset is packed into {block}-token blocks but the model's context is {context} "
                                 f"tokens; re-prepare with --pack_block_size {context} or less", path=where,
                                 field="block_size")
    if datasets:
        for split, dataset in datasets.items():
            if dataset is None or len(dataset) == 0:
                continue
            missing = {"input_ids", "labels"} - set(dataset.column_names)
            if missing:
                raise MyPTInputError(f"split '{split}' lacks columns {sorted(missing)}; prepare it with "
                                     "mypt_hf.data.prepare", path=where, field=sorted(missing)[0])
            sample = dataset.select(range(min(len(dataset), 256)))["input_ids"]
            top = max((max(row) for row in sample if len(row)), default=-1)
            longest = max((len(row) for row in sample), default=0)
            if isinstance(context, int) and longest > context:
                raise MyPTInputError(f"split '{split}' holds a {longest}-token row but the model's context is "
                                     f"{context} tokens", path=where, field="input_ids")
            if top >= model_vocab:
                raise MyPTInputError(f"split '{split}' holds token id {top} but the model has only {model_vocab} "
                                     "embedding rows (dataset prepared with another tokenizer?)",
                                     path=where, field="input_ids")


def _default_collator(tokenizer: Any):
    from ..data.packing import PackedEpisodeCollator

    pad_id = tokenizer.pad_token_id if tokenizer is not None and tokenizer.pad_token_id is not None else 0
    return PackedEpisodeCollator(pad_token_id=pad_id)


class MyPTSFTTrainer(SFTTrainer):
    """SFTTrainer for MyPT's prepared datasets (see the module docstring).

    Args beyond SFTTrainer's: ``dataset_metadata`` (the PreparedMetadata ``load_prepared`` returns) for the
    tokenizer check and coverage → max_steps, and ``dataset_dir`` for error messages.
    """

    _tag_names = ["trl", "sft", "mypt"]
    _name = "MyPT SFT"

    def __init__(self, model: nn.Module, args: MyPTSFTConfig, train_dataset: Any, eval_dataset: Any = None,
                 processing_class: Any = None, data_collator: Any = None, callbacks: Optional[List[Any]] = None,
                 dataset_metadata: Optional[PreparedMetadata] = None, dataset_dir: Optional[str] = None,
                 **kwargs: Any) -> None:
        if isinstance(model, str):
            raise MyPTInputError("MyPTSFTTrainer takes an instantiated model; load it first "
                                 "(mypt_hf.training.modeling.load_model_for_training)", field="model")
        if not isinstance(args, MyPTSFTConfig):
            raise TypeError("args must be a MyPTSFTConfig")
        metadata = dataset_metadata
        check_dataset_matches(metadata, processing_class, model,
                              {"train": train_dataset, "validation": eval_dataset}
                              if not isinstance(eval_dataset, dict) else {"train": train_dataset, **eval_dataset},
                              dataset_dir=dataset_dir)
        resolve_max_steps(args, metadata, num_train_rows=len(train_dataset))
        if args.max_steps and args.max_steps > 0 and args.process_index == 0:  # as the original printed it at start
            print(run_coverage(args, len(train_dataset)).describe(), flush=True)
        if args.activation_checkpointing and not getattr(model, "supports_gradient_checkpointing", False):
            logger.warning("%s does not support activation checkpointing; training without it.", type(model).__name__)
            args.activation_checkpointing = args.gradient_checkpointing = False
        frozen = apply_freezing(model, args.freeze_layers, args.freeze_embeddings)
        if frozen:
            logger.info("frozen parameters: %d tensors", len(frozen))
        if data_collator is None:
            data_collator = _default_collator(processing_class)
        callbacks = list(callbacks or [])
        if args.eval_prompts_file:
            callbacks.append(EvalPromptsCallback(args.eval_prompts_file, max_new_tokens=args.eval_max_new_tokens))
        self.dataset_metadata = metadata
        name_the_run(args, os.path.basename(os.path.normpath(args.output_dir)))  # trackers: a named run per training
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=processing_class, data_collator=data_collator, callbacks=callbacks, **kwargs)
        # TRL's loss divides by `num_items_in_batch` when it is given; making Trainer always count it over the
        # whole accumulation window (and across ranks) keeps the loss = sum CE / supervised tokens of the step.
        self.model_accepts_loss_kwargs = True
        point_tensorboard(self)  # <output_dir>/runs/<run_name>: one directory per run, named after it
        self._supervised_tokens_total = 0
        self._supervised_tokens_at_last_log = 0
        self._time_at_last_log: Optional[float] = None

    # ---- optimizer grouping ----------------------------------------------------------------------
    def get_decay_parameter_names(self, model: nn.Module) -> List[str]:
        return decay_parameter_names(model)

    # ---- loss + metrics --------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        training = self.model.training
        tokens_before = self._total_train_tokens
        result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                      num_items_in_batch=num_items_in_batch)
        if training:
            input_ids = inputs["input_ids"]
            if "attention_mask" in inputs:
                local_tokens = inputs["attention_mask"].sum()
            else:  # TRL counts only position_ids.size(1), i.e. one row of a (B, L) batch
                local_tokens = torch.tensor(input_ids.numel(), device=input_ids.device)
            self._total_train_tokens = tokens_before + int(self.accelerator.gather_for_metrics(local_tokens).sum().item())
            self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
            labels = inputs["labels"][..., 1:]
            supervised = labels.ne(-100).sum()
            self._supervised_tokens_total += int(self.accelerator.gather_for_metrics(supervised).sum().item())
        return result

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        if "loss" in logs and self.model.training:
            now = time.perf_counter()
            if self._time_at_last_log is None:
                self._time_at_last_log = getattr(self, "_train_start_perf", now)
            elapsed = max(now - self._time_at_last_log, 1e-9)
            logs["supervised_tokens"] = self._supervised_tokens_total
            logs["supervised_tokens_per_second"] = round(
                (self._supervised_tokens_total - self._supervised_tokens_at_last_log) / elapsed, 2)
            self._time_at_last_log = now
            self._supervised_tokens_at_last_log = self._supervised_tokens_total
        super().log(logs, start_time)

    def train(self, *args: Any, **kwargs: Any):
        self._train_start_perf = time.perf_counter()
        self._time_at_last_log = None
        return super().train(*args, **kwargs)

    # ---- saving ------------------------------------------------------------------------------------
    def _set_generation_config(self) -> None:
        model = self.accelerator.unwrap_model(self.model)
        tokenizer = self.processing_class
        if tokenizer is None:
            return
        from ..modeling_mypt import set_mypt_generation_config

        try:
            set_mypt_generation_config(model, tokenizer)
        except ValueError as error:  # not a MyPT tokenizer: no stop tags, the model keeps its own eos ids
            logger.debug("set_mypt_generation_config: %s", error)
            model.generation_config.pad_token_id = tokenizer.pad_token_id

    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False) -> None:
        self._set_generation_config()
        # The model card is written once per run, after the gate (mypt_hf.training.fit.write_run_card).
        super().save_model(output_dir, _internal_call)

    def create_model_card(self, model_name: Optional[str] = None, dataset_name: Optional[str] = None,
                          tags: Any = None) -> None:
        """MyPT's model card for ``push_to_hub`` (the only caller): a run's own card, with its gate results, is
        written once by mypt_hf.training.fit.write_run_card and kept."""
        if not self.is_world_process_zero() or os.path.isfile(os.path.join(self.args.output_dir, "README.md")):
            return
        from .model_card import write_model_card

        rows = self.dataset_metadata.card_rows() if self.dataset_metadata is not None else {}
        write_model_card(self.args.output_dir, model_name=model_name or "mypt-sft", args=self.args,
                         dataset_metadata=rows, log_history=self.state.log_history)
