"""`mypt-hf train`: fine-tune on a prepared dataset (the original's train.py, same argument names)."""

from __future__ import annotations

import argparse

HELP = "Train (SFT) a model on a dataset prepared by `mypt-hf prepare-chat-sft`; saves a Hub-style model dir."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_name", default=None,
                        help="run name; the model is saved to checkpoints/<model_name> unless --output_dir is given")
    parser.add_argument("--dataset_dir", required=True, help="prepared dataset (mypt-hf prepare-chat-sft output)")
    parser.add_argument("--init_from_model", default=None,
                        help="model to fine-tune from: a name in the checkpoints directory ($MYPT_CHECKPOINTS_DIR, "
                             "default ./checkpoints) or a path (default: a fresh model sized by the config)")
    parser.add_argument("--config_file", default=None,
                        help="YAML or JSON with MyPTSFTConfig / model keys, or the original train.py's JSON config "
                             "(its keys are mapped; those ignored on purpose are listed at start)")
    parser.add_argument("--eval_prompts_file", default=None,
                        help="JSON {'prompts': {name: prompt}} generated with and without KV cache at each eval")
    parser.add_argument("--learning_rate", type=float, default=None)
    parser.add_argument("--output_dir", default=None, help="where the model is saved")
    parser.add_argument("--max_steps", type=int, default=None)
    parser.add_argument("--coverage", type=float, default=None, help="passes over the training rows -> max_steps")
    parser.add_argument("--resume_from_checkpoint", default=None, help="checkpoint dir, or 'true' for the latest")


def _load_config_file(path: str) -> dict:
    import json
    from pathlib import Path

    import yaml

    from mypt_hf.errors import MyPTInputError
    from mypt_hf.training.original_config import format_notes, translate_original_config

    p = Path(path)
    if not p.is_file():  # a packaged phase config's name (phase3a1_alpha_750M), else an error naming the path
        from mypt_hf.phases.registry import find_config

        p = find_config(path)
        path = str(p)
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise MyPTInputError(f"cannot parse config: {error}", path=path) from None
    if not isinstance(data, dict):
        raise MyPTInputError("config must be a mapping of keys to values", path=path)
    # the original train.py's keys (max_iters, use_amp, ...) become mypt_hf's; the ones ignored on purpose are said
    values, notes = translate_original_config(data, path)
    recipe_only = sorted(set(values) & _recipe_only_keys())
    if recipe_only:  # a phase config: its data keys are the recipe's; train reads an already prepared dataset
        notes.append(f"ignored the recipe's data keys (train reads a prepared dataset): {', '.join(recipe_only)}")
        values = {key: value for key, value in values.items() if key not in recipe_only}
    prompts = values.get("eval_prompts_file")
    if prompts and not Path(prompts).is_absolute() and (p.parent / prompts).is_file():
        values["eval_prompts_file"] = str(p.parent / prompts)  # named relative to the config, as the phases read it
    if notes:
        print(format_notes(notes, path), flush=True)
    return values


def _recipe_only_keys() -> set:
    """Keys of the phase configs that only the recipes read (data generation, mixing, preparation, gates)."""
    from dataclasses import fields

    from mypt_hf.phases.settings import (CopyArguments, EchoArguments, OperatorArguments, PhaseArguments,
                                         TinyBaseArguments)
    from mypt_hf.training.config import MyPTSFTConfig
    from mypt_hf.training.modeling import ModelArguments

    recipe = {f.name for cls in (PhaseArguments, CopyArguments, TinyBaseArguments, EchoArguments, OperatorArguments)
              for f in fields(cls)}
    return recipe - {f.name for cls in (ModelArguments, MyPTSFTConfig) for f in fields(cls)}


def build_arguments(args: argparse.Namespace):
    """(ModelArguments, MyPTSFTConfig) from the config file and the CLI; unknown keys are a MyPTInputError."""
    from transformers import HfArgumentParser

    from mypt_hf.errors import MyPTInputError
    from mypt_hf.model_names import output_dir_for, resolve_model
    from mypt_hf.training.config import MyPTSFTConfig
    from mypt_hf.training.modeling import ModelArguments

    values = _load_config_file(args.config_file) if args.config_file else {}
    for key in ("init_from_model", "eval_prompts_file", "learning_rate", "output_dir", "max_steps", "coverage",
                "resume_from_checkpoint"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if "output_dir" not in values:  # the original's layout: checkpoints/<model_name>
        values["output_dir"] = str(output_dir_for(args.model_name or "mypt-sft"))
    if values.get("init_from_model"):  # a model name (checkpoints/<name>) or a path
        values["init_from_model"] = str(resolve_model(str(values["init_from_model"]), field="init_from_model"))
    parser = HfArgumentParser((ModelArguments, MyPTSFTConfig))
    try:
        model_args, train_args = parser.parse_dict(values, allow_extra_keys=False)
    except ValueError as error:
        raise MyPTInputError(str(error), path=args.config_file, field="config_file") from None
    return model_args, train_args


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from accelerate import PartialState

    from mypt_hf.data.prepare import load_prepared
    from mypt_hf.errors import MyPTInputError
    from mypt_hf.training.fit import train_and_save, write_run_card
    from mypt_hf.training.modeling import build_fresh_model, load_model_for_training

    model_args, train_args = build_arguments(args)
    if not Path(args.dataset_dir).is_dir():
        raise MyPTInputError("dataset directory not found", path=args.dataset_dir, field="dataset_dir")
    dataset, metadata = load_prepared(args.dataset_dir)
    if train_args.init_from_model:
        model, tokenizer = load_model_for_training(train_args.init_from_model, dropout=model_args.dropout)
    else:
        model, tokenizer = build_fresh_model(model_args, seed=train_args.seed)
    trainer = train_and_save(model, tokenizer, train_args, dataset, metadata, dataset_dir=args.dataset_dir)
    if PartialState().is_main_process:
        out = Path(train_args.output_dir)
        write_run_card(out, model_name=args.model_name or out.name, args=train_args, model_config=model.config,
                       log_history=trainer.state.log_history,
                       dataset_rows={"dataset_dir": str(args.dataset_dir), **metadata.card_rows()})
        print(f"saved {out}")
    return 0
