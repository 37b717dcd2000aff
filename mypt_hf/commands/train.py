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
    parser.add_argument("--report_to", default=None,
                        help="trackers, comma-separated: tensorboard (<output_dir>/runs/<run_name>), trackio (local "
                             "store $TRACKIO_DIR, default $HF_HOME/trackio); pip install 'mypt_hf[tracking]'")
    parser.add_argument("--run_name", default=None,
                        help="tracker run name (default: the output directory's name and the UTC start time)")
    add_lora_arguments(parser)


def add_lora_arguments(parser: argparse.ArgumentParser) -> None:
    """TRL's LoRA flags (``--use_peft true --lora_r 8 ...``, the fields of LoraArguments); their values are typed
    and checked with the config file's (build_arguments)."""
    import dataclasses

    from mypt_hf.training.lora import LoraArguments  # a plain dataclass: no torch, no TRL

    group = parser.add_argument_group("LoRA (TRL's ModelConfig flags)")
    for f in dataclasses.fields(LoraArguments):
        listed = "List" in str(f.type)
        group.add_argument(f"--{f.name}", default=None, nargs="+" if listed else None,
                           metavar="NAME" if listed else None,
                           help=f"{f.metadata.get('help', '')} (default: {f.default})")


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
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MyPTInputError("not a text file (expected YAML or JSON of MyPTSFTConfig / model keys)", path=path,
                             field="config_file") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise MyPTInputError(f"invalid JSON ({error.msg})", path=path, line=error.lineno) from None
    except (ValueError, yaml.YAMLError) as error:
        mark = getattr(error, "problem_mark", None)
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise MyPTInputError(f"cannot parse config: {reason}", path=path,
                             line=mark.line + 1 if mark is not None else None) from None
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
    from mypt_hf.training.lora import LoraArguments
    from mypt_hf.training.modeling import ModelArguments

    recipe = {f.name for cls in (PhaseArguments, CopyArguments, TinyBaseArguments, EchoArguments, OperatorArguments)
              for f in fields(cls)}
    return recipe - {f.name for cls in (ModelArguments, MyPTSFTConfig, LoraArguments) for f in fields(cls)}


CLI_KEYS = ("init_from_model", "eval_prompts_file", "learning_rate", "output_dir", "max_steps", "coverage",
            "resume_from_checkpoint", "report_to", "run_name", "use_peft", "lora_r", "lora_alpha", "lora_dropout",
            "lora_target_modules", "lora_target_parameters", "lora_modules_to_save", "lora_task_type", "use_rslora",
            "use_dora")


def build_arguments(args: argparse.Namespace):
    """(ModelArguments, MyPTSFTConfig, LoraArguments) from the config file and the CLI.

    An unknown key, or a value of the wrong type or out of range, is a MyPTInputError naming the config file and
    the key (the flag, when the value came from the command line), raised before anything is created.
    """
    from transformers import HfArgumentParser

    from mypt_hf.errors import MyPTInputError
    from mypt_hf.model_names import output_dir_for, resolve_model
    from mypt_hf.training.config import MyPTSFTConfig, typed_config_values
    from mypt_hf.training.lora import LoraArguments
    from mypt_hf.training.modeling import ModelArguments

    values = _load_config_file(args.config_file) if args.config_file else {}
    from_cli = {key for key in CLI_KEYS if getattr(args, key) is not None}
    for key in from_cli:
        values[key] = getattr(args, key)
    if "output_dir" not in values:  # the original's layout: checkpoints/<model_name>
        values["output_dir"] = str(output_dir_for(args.model_name or "mypt-sft"))
    if values.get("init_from_model"):  # a model name (checkpoints/<name>) or a path
        values["init_from_model"] = str(resolve_model(str(values["init_from_model"]), field="init_from_model"))
    parser = HfArgumentParser((ModelArguments, MyPTSFTConfig, LoraArguments))
    try:
        values = typed_config_values(values, parser.dataclass_types)
        model_args, train_args, lora_args = parser.parse_dict(values, allow_extra_keys=False)
    except MyPTInputError as error:
        if not error.field:
            raise MyPTInputError(str(error), path=args.config_file) from None
        # the checks raise "field 'x': reason" without a path: say where the value came from
        reason = str(error).split(": ", 1)[-1]
        if error.field in from_cli or args.config_file is None:
            raise MyPTInputError(reason, field=f"--{error.field}" if error.field in from_cli else error.field) from None
        from mypt_hf.training.original_config import RENAMED

        original = [key for key, name in RENAMED.items() if name == error.field]
        if original:  # the file may spell it the original's way
            reason = f"{reason} (the original's key: {original[0]})"
        raise MyPTInputError(reason, path=args.config_file, field=error.field) from None
    except ValueError as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise MyPTInputError(reason, path=args.config_file, field=None if args.config_file else "arguments") from None
    return model_args, train_args, lora_args


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from accelerate import PartialState

    from mypt_hf.training.callbacks import load_eval_prompts
    from mypt_hf.training.checkpoints import resolve_resume_checkpoint
    from mypt_hf.training.dataset_files import load_prepared_checked
    from mypt_hf.training.fit import train_and_save, write_run_card
    from mypt_hf.training.lora import check_lora_arguments, trainable_counts
    from mypt_hf.training.modeling import build_fresh_model, load_model_for_training

    model_args, train_args, lora_args = build_arguments(args)
    dataset, metadata = load_prepared_checked(args.dataset_dir)
    # train_and_save checks these too; here they are refused before a model is loaded
    resolve_resume_checkpoint(train_args.resume_from_checkpoint, train_args.output_dir)
    check_lora_arguments(lora_args, train_args, fresh_model=not train_args.init_from_model)
    if train_args.eval_prompts_file:
        load_eval_prompts(train_args.eval_prompts_file)
    if train_args.init_from_model:
        model, tokenizer = load_model_for_training(train_args.init_from_model, dropout=model_args.dropout,
                                                   block_size=model_args.block_size)
    else:
        model, tokenizer = build_fresh_model(model_args, seed=train_args.seed)
    trainer = train_and_save(model, tokenizer, train_args, dataset, metadata, dataset_dir=args.dataset_dir,
                             lora=lora_args)
    if PartialState().is_main_process:
        out = Path(train_args.output_dir)
        write_run_card(out, model_name=args.model_name or out.name, args=train_args, model_config=model.config,
                       log_history=trainer.state.log_history,
                       dataset_rows={"dataset_dir": str(args.dataset_dir), **metadata.card_rows()},
                       lora=lora_args, lora_trainable=trainable_counts(trainer.model))
        print(f"saved {out}")
    return 0
