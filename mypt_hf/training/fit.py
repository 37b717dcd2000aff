"""The one train-and-save path: ``mypt-hf train`` and every phase run call :func:`train_and_save`, then
:func:`write_run_card` once the run's results are known."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from .config import MyPTSFTConfig

if TYPE_CHECKING:
    from .lora import LoraArguments


def evaluated_at_end(trainer: Any) -> bool:
    """Whether the trainer's last evaluation was at its final step (so another would only repeat it)."""
    steps = [entry.get("step") for entry in trainer.state.log_history if "eval_loss" in entry]
    return bool(steps) and steps[-1] == trainer.state.global_step


def train_and_save(model: Any, tokenizer: Any, args: MyPTSFTConfig, dataset: Any, metadata: Any = None,
                   dataset_dir: Optional[str] = None, lora: Optional["LoraArguments"] = None) -> Any:
    """Train ``model`` on a prepared ``dataset`` (``train`` / ``validation`` splits) with MyPTSFTTrainer, evaluate
    once more when the last step was not evaluated, and save the model to ``args.output_dir``.

    ``args.resume_from_checkpoint`` may be a checkpoint directory or ``"true"`` (the newest complete one under
    output_dir); either is checked before the trainer starts. An empty validation split switches evaluation off.
    A run that fails before its first checkpoint removes the output directory it created (nothing half-written is
    left); one that fails later keeps it, so it can be resumed. The ``report_to`` trackers are closed on return (the
    final evaluation reopens them after training). Returns the trainer.

    ``lora`` with ``use_peft``: TRL's route (``trl.get_peft_config`` → ``peft_config``) trains a LoRA adapter on the
    model started from ``args.init_from_model``; the adapter is saved to ``output_dir/adapter`` and the merged full
    model to ``output_dir`` (:mod:`mypt_hf.training.lora`), so whatever loads a phase's output loads it unchanged.
    """
    from ..errors import MyPTInputError
    from .checkpoints import resolve_resume_checkpoint
    from .lora import build_peft_config, check_lora_arguments
    from .tracking import close_trackers
    from .trainer import MyPTSFTTrainer

    if args.init_from_model and Path(args.init_from_model).resolve() == Path(args.output_dir).resolve():
        raise MyPTInputError("output_dir is the init_from_model directory; saving would overwrite the starting "
                             "model: choose another output_dir", path=str(args.output_dir), field="output_dir")
    resume = resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir)
    use_peft = bool(lora is not None and lora.use_peft)
    check_lora_arguments(lora, args, fresh_model=not args.init_from_model)
    peft_config = build_peft_config(lora, model) if use_peft else None
    validation = dataset["validation"] if "validation" in dataset and len(dataset["validation"]) else None
    if validation is None:
        args.eval_strategy = "no"
    created = first_missing_ancestor(args.output_dir)
    trainer = None
    try:
        trainer = MyPTSFTTrainer(model=model, args=args, train_dataset=dataset["train"], eval_dataset=validation,
                                 processing_class=tokenizer, dataset_metadata=metadata, dataset_dir=dataset_dir,
                                 peft_config=peft_config)
        trainer.train(resume_from_checkpoint=resume)
        if validation is not None and not evaluated_at_end(trainer):
            trainer.evaluate()
        if use_peft:
            save_lora_outputs(trainer, tokenizer, args)
        else:
            trainer.save_model(args.output_dir)
    except BaseException:
        remove_if_no_checkpoint(created, args.output_dir)
        raise
    finally:
        if trainer is not None:  # the evaluation after on_train_end reopened them; a gate reopens them again
            close_trackers(trainer)
    return trainer


def save_lora_outputs(trainer: Any, tokenizer: Any, args: MyPTSFTConfig) -> None:
    """A LoRA run's outputs: the adapter (``trainer.save_model``, every process as the Trainer needs) in
    ``output_dir/adapter``, then, on the main process, the merged full model and the training arguments in
    ``output_dir`` (as a full fine-tune leaves them)."""
    import torch
    from transformers.trainer import TRAINING_ARGS_NAME

    from .lora import ADAPTER_DIR, save_merged_model

    adapter_dir = Path(args.output_dir) / ADAPTER_DIR
    trainer.save_model(str(adapter_dir))
    if trainer.accelerator.is_main_process:
        save_merged_model(adapter_dir, args.init_from_model, args.output_dir, tokenizer)
        torch.save(args, Path(args.output_dir) / TRAINING_ARGS_NAME)
    trainer.accelerator.wait_for_everyone()


def first_missing_ancestor(path: str | Path) -> Optional[Path]:
    """The outermost of ``path`` and its parents that does not exist yet (what a ``makedirs(path)`` would create),
    or ``None`` when ``path`` exists."""
    path = Path(path).absolute()
    if path.exists():
        return None
    missing = path
    while not missing.parent.exists():
        missing = missing.parent
    return missing


def remove_if_no_checkpoint(created: Optional[Path], output_dir: str | Path) -> None:
    """After a failed run: remove ``created`` (the folders the run made for ``output_dir``) unless a checkpoint
    was written under ``output_dir``, which a later ``--resume_from_checkpoint`` needs."""
    from .checkpoints import checkpoint_dirs

    if created is None or not created.exists() or checkpoint_dirs(output_dir):
        return
    shutil.rmtree(created, ignore_errors=True)


def write_run_card(output_dir: str | Path, *, model_name: str, args: Any, model_config: Any,
                   log_history: Sequence[Mapping[str, Any]], dataset_rows: Optional[Mapping[str, Any]] = None,
                   title: Optional[str] = None, **card: Any) -> None:
    """The loss plot and the model card (README.md) of a finished run, written once per run by the main process.

    ``card`` goes to :func:`~mypt_hf.training.model_card.write_model_card` (data sources, gate report, wall time...).
    """
    from .model_card import write_model_card
    from .plots import plot_loss

    output_dir = Path(output_dir)
    plot_loss(list(log_history), output_dir / "loss.png", title=title or model_name)
    write_model_card(output_dir, model_name=model_name, args=args, dataset_metadata=dict(dataset_rows or {}),
                     log_history=list(log_history), model_config=model_config, **card)


__all__ = ["evaluated_at_end", "train_and_save", "save_lora_outputs", "write_run_card", "first_missing_ancestor",
           "remove_if_no_checkpoint"]
