"""`mypt-hf train`: fine-tune on a prepared dataset (the original's train.py, same argument names)."""

from __future__ import annotations

import argparse

HELP = "Train (SFT) a model on a dataset prepared by `mypt-hf prepare-chat-sft`; saves a Hub-style model dir."

# The original's config-file keys and their MyPTSFTConfig / ModelArguments names.
ORIGINAL_KEYS = {
    "max_iters": "max_steps", "warmup_iters": "warmup_steps", "batch_size": "per_device_train_batch_size",
    "grad_clip": "max_grad_norm", "eval_interval": "eval_steps", "grad_accum_steps": "gradient_accumulation_steps",
    "n_embd": "hidden_size", "n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
    "epoch_seed": "seed", "eval_iters": None, "save_every": None, "use_amp": None, "amp_dtype": None,
    "name": None, "description": None, "log_file": None, "terminal_log_file": None, "eval_seed": None,
    "use_loss_mask": None, "batch_sampling_mode": None, "epoch_shuffle": None, "epoch_drop_last": None,
    "episode_min_tokens": None, "pad_token_id": None, "vocab_size": None, "bias": None, "tie_weights": None,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_name", default=None,
                        help="run name; the model is saved to checkpoints/<model_name> unless --output_dir is given")
    parser.add_argument("--dataset_dir", required=True, help="prepared dataset (mypt-hf prepare-chat-sft output)")
    parser.add_argument("--init_from_model", default=None, help="saved model directory to fine-tune from "
                                                                "(default: a fresh model sized by the config)")
    parser.add_argument("--config_file", default=None,
                        help="YAML or JSON with MyPTSFTConfig / model keys (original key names accepted)")
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

    p = Path(path)
    if not p.is_file():
        raise MyPTInputError("config file not found", path=path, field="config_file")
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise MyPTInputError(f"cannot parse config: {error}", path=path) from None
    if not isinstance(data, dict):
        raise MyPTInputError("config must be a mapping of keys to values", path=path)
    out = {}
    for key, value in data.items():
        if key.startswith("comment"):
            continue
        if key in ORIGINAL_KEYS:
            if ORIGINAL_KEYS[key] is None:
                continue  # the original's keys with no meaning here (logging, sampler details, model fields)
            key = ORIGINAL_KEYS[key]
        out[key] = value
    return out


def build_arguments(args: argparse.Namespace):
    """(ModelArguments, MyPTSFTConfig) from the config file and the CLI; unknown keys are a MyPTInputError."""
    from transformers import HfArgumentParser

    from mypt_hf.errors import MyPTInputError
    from mypt_hf.training.config import MyPTSFTConfig
    from mypt_hf.training.modeling import ModelArguments

    values = _load_config_file(args.config_file) if args.config_file else {}
    for key in ("init_from_model", "eval_prompts_file", "learning_rate", "output_dir", "max_steps", "coverage",
                "resume_from_checkpoint"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if "output_dir" not in values:
        values["output_dir"] = f"checkpoints/{args.model_name or 'mypt-sft'}"
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
