"""The original train.py's JSON configs (the guide's five, and its other keys) read into mypt_hf's options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED
from mypt_hf.errors import MyPTInputError
from mypt_hf.training.original_config import IGNORED, RENAMED, original_keys, translate_original_config

ORIGINAL_CONFIGS = SHARED / "reference" / "original-configs"
GUIDE_CONFIGS = ["750M_phase3a1_alpha.json", "750M_phase3a1_beta.json", "750M_phase3a1_gamma.json",
                 "750M_phase3a2.json", "750M_phase3a_operator.json"]


def _parse(values):
    from transformers import HfArgumentParser

    from mypt_hf.training.config import MyPTSFTConfig
    from mypt_hf.training.modeling import ModelArguments

    values = {"output_dir": "unused", **values}
    return HfArgumentParser((ModelArguments, MyPTSFTConfig)).parse_dict(values, allow_extra_keys=False)


@pytest.mark.parametrize("name", GUIDE_CONFIGS)
def test_guide_configs_translate_and_parse(name):
    path = ORIGINAL_CONFIGS / name
    if not path.is_file():
        pytest.skip(f"original configs not found at {ORIGINAL_CONFIGS}")
    data = json.loads(path.read_text())
    values, notes = translate_original_config(data, str(path))
    model_args, train_args = _parse(values)
    assert train_args.max_steps == data["max_iters"] and train_args.warmup_steps == data["warmup_iters"]
    assert train_args.eval_steps == data["eval_interval"] and train_args.save_steps == data["eval_interval"]
    assert train_args.per_device_train_batch_size == data["batch_size"] and train_args.seed == data["epoch_seed"]
    assert train_args.learning_rate == data["learning_rate"] and train_args.run_name == data["name"]
    assert (model_args.hidden_size, model_args.num_hidden_layers, model_args.num_attention_heads) == (1280, 32, 20)
    assert model_args.dropout == data["dropout"] and model_args.block_size == data["block_size"]
    assert train_args.bf16 in (None, False)  # use_amp bf16: bf16 where the GPU supports it, fp32 on CPU
    ignored = {note.split(":")[0] for note in notes}
    assert {"log_file", "eval_seed", "description", "eval_sets"} <= ignored
    assert all(len(note.splitlines()) == 1 for note in notes)


def test_every_key_the_original_reads_is_handled():
    # reference §1.1 (GPTConfig) and §6.12 (train.py's own keys)
    gpt_config = ["batch_size", "block_size", "vocab_size", "n_embd", "n_head", "n_layer", "dropout", "bias",
                  "use_checkpoint", "device", "use_loss_mask", "tie_weights", "save_dtype", "pos_encoding",
                  "mlp_type", "norm_type", "rope_theta", "rope_scale", "segment_position_reset", "neftune_alpha",
                  "batch_sampling_mode", "pad_token_id", "episode_min_tokens", "epoch_seed", "epoch_shuffle",
                  "epoch_drop_last"]
    training = ["name", "description", "learning_rate", "max_iters", "eval_interval", "eval_iters", "save_every",
                "warmup_iters", "grad_clip", "weight_decay", "use_amp", "amp_dtype", "eval_sets", "eval_seed",
                "log_file", "terminal_log_file", "freeze_layers", "freeze_embeddings", "curriculum",
                "grad_accum_steps", "gold_selection", "token_accuracy_saturation"]
    assert set(gpt_config + training) == set(original_keys())


def test_more_original_keys_map():
    values, notes = translate_original_config(
        {"freeze_layers": 28, "freeze_embeddings": True, "grad_clip": 0.5, "grad_accum_steps": 8,
         "use_amp": False, "warmup_iters": 0.03, "max_iters": 1000, "tie_weights": True, "use_checkpoint": True,
         "comment_why": "notes are skipped"}, "c.json")
    _, train_args = _parse(values)
    assert (train_args.freeze_layers, train_args.freeze_embeddings) == (28, True)
    assert train_args.max_grad_norm == 0.5 and train_args.gradient_accumulation_steps == 8
    assert train_args.bf16 is False and train_args.fp16 is False
    assert train_args.get_warmup_steps(1000) == 30  # a float in (0, 1) is a share of max_iters, as in the original
    assert values["activation_checkpointing"] is True and notes == []
    assert RENAMED["max_iters"] == "max_steps" and "log_file" in IGNORED


@pytest.mark.parametrize("data, field, message", [
    ({"use_loss_mask": False}, "use_loss_mask", "not supported"),
    ({"curriculum": {"x": 1}}, "curriculum", "not part of SFT"),
    ({"eval_sets": {"format_lock": "data/fl"}}, "eval_sets", "mypt-hf eval"),
    ({"batch_sampling_mode": "random"}, "batch_sampling_mode", "'epoch'"),
    ({"use_amp": "yes"}, "use_amp", "true or false"),
    ({"use_amp": True, "amp_dtype": "fp8"}, "amp_dtype", "'bf16' or 'fp16'"),
    ({"rope_theta": 500000.0}, "rope_theta", "10000"),
])
def test_values_this_pipeline_cannot_honour_are_refused(data, field, message):
    with pytest.raises(MyPTInputError) as error:
        translate_original_config(data, "my.json")
    assert f"field '{field}'" in str(error.value) and "my.json" in str(error.value) and message in str(error.value)


def test_unknown_keys_stay_for_the_parser_to_refuse():
    values, _ = translate_original_config({"max_iters": 5, "no_such_key": 1}, "c.json")
    with pytest.raises(ValueError, match="no_such_key"):
        _parse(values)


def test_train_command_with_an_original_config_and_model_names(tmp_path, monkeypatch, capsys, bad_input_fixtures):
    """The guide's by-hand step: `train --config_file <original JSON> --model_name NAME`, then a second run from
    that model by name (`--init_from_model NAME`), both under the checkpoints directory."""
    from mypt_hf.cli import main as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MYPT_CHECKPOINTS_DIR", str(tmp_path / "ckpts"))
    config = tmp_path / "tiny_phase.json"
    config.write_text(json.dumps({
        "name": "Tiny-Phase", "description": "original keys", "batch_size": 2, "block_size": 128, "vocab_size": 50304,
        "n_embd": 32, "n_head": 2, "n_layer": 1, "dropout": 0.0, "bias": False, "tie_weights": True,
        "pos_encoding": "rope", "mlp_type": "swiglu", "norm_type": "rmsnorm", "rope_theta": 10000.0,
        "learning_rate": 1e-3, "max_iters": 2, "eval_interval": 2, "warmup_iters": 1, "use_amp": True,
        "amp_dtype": "bf16", "use_loss_mask": True, "batch_sampling_mode": "epoch", "pad_token_id": None,
        "episode_min_tokens": 10, "epoch_seed": 4501, "epoch_shuffle": True, "epoch_drop_last": True,
        "weight_decay": 0.05, "eval_sets": None, "eval_seed": 1337, "log_file": "logs/train/tiny.jsonl"}))
    dataset = str(bad_input_fixtures.dataset)
    assert cli(["train", "--config_file", str(config), "--dataset_dir", dataset, "--model_name", "tiny_alpha"]) == 0
    out = capsys.readouterr().out
    assert "log_file: ignored - " in out and "eval_seed: ignored - " in out
    saved = tmp_path / "ckpts" / "tiny_alpha"
    assert (saved / "config.json").is_file() and (saved / "model.safetensors").is_file()
    assert not (tmp_path / "logs").exists()  # log_file is ignored, not half-honoured
    assert cli(["train", "--config_file", str(config), "--dataset_dir", dataset, "--model_name", "tiny_beta",
                "--init_from_model", "tiny_alpha"]) == 0
    assert "tiny_alpha" in (tmp_path / "ckpts" / "tiny_beta" / "README.md").read_text()
    assert cli(["train", "--config_file", str(config), "--dataset_dir", dataset, "--model_name", "x",
                "--init_from_model", "no_such"]) == 2
    err = capsys.readouterr().err
    assert "no model named 'no_such'" in err and "tiny_alpha, tiny_beta" in err
