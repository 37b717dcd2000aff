"""Bad input to the model commands (train, convert, generate, eval, eval-episodes, check-tie-weights,
debug-train-eval-parity): each case exits 2 (1 for a failed gate) with one line naming the file, the row or the
field, and leaves nothing written (tests/bad_inputs.py asserts the contract)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bad_inputs import Case, copy_fixture, permissions_enforced, run_case

BINARY = bytes(range(256)) * 8
TRAIN = ["train", "--dataset_dir", "{dataset}", "--output_dir", "{ws}/out", "--max_steps", "1"]


def truncate_weights(model_dir: Path) -> None:
    """Keep the safetensors header, cut the tensor data in half (a copy interrupted half-way)."""
    weights = model_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:len(data) // 2])


def cut_header(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def remove(*names: str):
    def damage(directory: Path) -> None:
        for name in names:
            (directory / name).unlink()
    return damage


def write(name: str, content: str):
    def damage(directory: Path) -> None:
        (directory / name).write_text(content, encoding="utf-8")
    return damage


def edit_json(name: str, **changes):
    def damage(directory: Path) -> None:
        path = directory / name
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, value in changes.items():
            if value is None:
                data.pop(key)
            else:
                data[key] = value
        path.write_text(json.dumps(data), encoding="utf-8")
    return damage


def damage_split_file(name: str, content: bytes):
    def damage(directory: Path) -> None:
        (directory / "train" / name).write_bytes(content)
    return damage


def fake_checkpoint(damage=None):
    """A checkpoint-<step> folder: the fixture model plus a trainer_state.json, then ``damage``."""
    def build(directory: Path) -> None:
        (directory / "trainer_state.json").write_text(json.dumps({"global_step": 1}), encoding="utf-8")
        if damage is not None:
            damage(directory)
    return build


TRAIN_CASES = [
    # 1. config values: type and range, before anything is created
    Case("train-lr-not-a-number", TRAIN + ["--config_file", "{ws}/c.json"], files={"c.json": '{{"learning_rate": "fast"}}'},
         says=("c.json", "learning_rate", "fast")),
    Case("train-batch-size-0", TRAIN + ["--config_file", "{ws}/c.json"],
         files={"c.json": '{{"per_device_train_batch_size": 0}}'}, says=("c.json", "per_device_train_batch_size", ">= 1")),
    Case("train-original-batch-size-0", TRAIN + ["--config_file", "{ws}/c.yaml"], files={"c.yaml": "batch_size: 0\n"},
         says=("c.yaml", "per_device_train_batch_size", "batch_size")),
    Case("train-negative-max-steps-in-config", ["train", "--dataset_dir", "{dataset}", "--output_dir", "{ws}/out",
                                                "--config_file", "{ws}/c.json"],
         files={"c.json": '{{"max_steps": -5}}'}, says=("c.json", "max_steps", "-1")),
    Case("train-negative-max-steps-flag", TRAIN[:-1] + ["-3"], says=("--max_steps",)),
    Case("train-zero-learning-rate-flag", TRAIN + ["--learning_rate", "0"], says=("--learning_rate", "> 0")),
    Case("train-grad-accum-0", TRAIN + ["--config_file", "{ws}/c.json"],
         files={"c.json": '{{"gradient_accumulation_steps": 0}}'}, says=("c.json", "gradient_accumulation_steps")),
    Case("train-bool-not-a-bool", TRAIN + ["--config_file", "{ws}/c.json"], files={"c.json": '{{"bf16": "maybe"}}'},
         says=("c.json", "bf16", "true or false")),
    Case("train-heads-do-not-divide", TRAIN + ["--config_file", "{ws}/c.json"],
         files={"c.json": '{{"num_attention_heads": 3}}'}, says=("c.json", "hidden_size", "num_attention_heads")),
    Case("train-unknown-pos-encoding", TRAIN + ["--config_file", "{ws}/c.json"],
         files={"c.json": '{{"pos_encoding": "alibi"}}'}, says=("c.json", "pos_encoding", "rope")),
    Case("train-dropout-1", TRAIN + ["--config_file", "{ws}/c.json"], files={"c.json": '{{"dropout": 1.5}}'},
         says=("c.json", "dropout")),
    Case("train-config-not-json", TRAIN + ["--config_file", "{ws}/c.json"], files={"c.json": '{{"max_steps": '},
         says=("c.json", "line 1", "invalid JSON")),
    Case("train-config-not-yaml", TRAIN + ["--config_file", "{ws}/c.yaml"], files={"c.yaml": "learning_rate: [1\n"},
         says=("c.yaml", "line 2")),
    Case("train-config-binary", TRAIN + ["--config_file", "{ws}/c.yaml"], files={"c.yaml": BINARY},
         says=("c.yaml", "not a text file")),
    Case("train-config-empty", TRAIN + ["--config_file", "{ws}/c.yaml"], files={"c.yaml": ""},
         says=("c.yaml", "mapping")),
    Case("train-config-missing", TRAIN + ["--config_file", "{ws}/nowhere.yaml"], says=("nowhere.yaml", "not found")),
    Case("train-config-unknown-key", TRAIN + ["--config_file", "{ws}/c.json"], files={"c.json": '{{"learning_rat": 1}}'},
         says=("c.json", "learning_rat")),
    # 2. resume and init_from_model
    Case("train-resume-missing", TRAIN + ["--resume_from_checkpoint", "{ws}/checkpoint-9"],
         says=("{ws}/checkpoint-9", "resume_from_checkpoint", "not found")),
    Case("train-resume-truncated-weights", TRAIN + ["--resume_from_checkpoint", "{ws}/checkpoint-1"],
         files={"checkpoint-1": copy_fixture("model", fake_checkpoint(truncate_weights))},
         says=("{ws}/checkpoint-1", "resume_from_checkpoint", "truncated")),
    Case("train-resume-no-state", TRAIN + ["--resume_from_checkpoint", "{ws}/checkpoint-1"],
         files={"checkpoint-1": copy_fixture("model")}, says=("{ws}/checkpoint-1", "trainer_state.json")),
    Case("train-resume-true-none-there", ["train", "--dataset_dir", "{dataset}", "--output_dir", "{ws}/prev",
                                          "--max_steps", "1", "--resume_from_checkpoint", "true"],
         files={"prev/checkpoint-1": copy_fixture("model", fake_checkpoint(cut_header))},
         says=("{ws}/prev", "checkpoint-1", "resume_from_checkpoint")),
    Case("train-init-missing", TRAIN + ["--init_from_model", "{ws}/nowhere"], says=("nowhere", "init_from_model")),
    Case("train-init-no-config", TRAIN + ["--init_from_model", "{ws}/m"],
         files={"m": copy_fixture("model", remove("config.json"))}, says=("{ws}/m", "config.json", "init_from_model")),
    Case("train-init-config-not-json", TRAIN + ["--init_from_model", "{ws}/m"],
         files={"m": copy_fixture("model", write("config.json", "{not json"))},
         says=("{ws}/m/config.json", "line 1", "init_from_model")),
    Case("train-init-truncated-weights", TRAIN + ["--init_from_model", "{ws}/m"],
         files={"m": copy_fixture("model", truncate_weights)}, says=("{ws}/m/model.safetensors", "truncated")),
    Case("train-init-cut-header", TRAIN + ["--init_from_model", "{ws}/m"],
         files={"m": copy_fixture("model", cut_header)}, says=("{ws}/m/model.safetensors", "init_from_model")),
    Case("train-init-no-weights", TRAIN + ["--init_from_model", "{ws}/m"],
         files={"m": copy_fixture("model", remove("model.safetensors"))}, says=("{ws}/m", "no model weights")),
    Case("train-init-no-tokenizer", TRAIN + ["--init_from_model", "{ws}/m"],
         files={"m": copy_fixture("model", remove("tokenizer.json"))}, says=("{ws}/m", "tokenizer.json")),
    Case("train-init-config-wrong-type", TRAIN + ["--init_from_model", "{ws}/m"],
         files={"m": copy_fixture("model", edit_json("config.json", hidden_size="wide"))},
         says=("{ws}/m", "init_from_model")),
    # 3. the dataset directory
    Case("train-dataset-missing", ["train", "--dataset_dir", "{ws}/nowhere", "--output_dir", "{ws}/out"],
         says=("nowhere", "dataset_dir")),
    Case("train-dataset-is-a-file", ["train", "--dataset_dir", "{episodes}", "--output_dir", "{ws}/out"],
         says=("{episodes}",)),
    Case("train-metadata-not-json", ["train", "--dataset_dir", "{ws}/d", "--output_dir", "{ws}/out"],
         files={"d": copy_fixture("dataset", write("mypt_metadata.json", "{oops"))},
         says=("{ws}/d/mypt_metadata.json", "JSON")),
    Case("train-metadata-missing-field", ["train", "--dataset_dir", "{ws}/d", "--output_dir", "{ws}/out"],
         files={"d": copy_fixture("dataset", edit_json("mypt_metadata.json", tokenizer=None))},
         says=("{ws}/d/mypt_metadata.json", "tokenizer")),
    Case("train-metadata-binary", ["train", "--dataset_dir", "{ws}/d", "--output_dir", "{ws}/out"],
         files={"d": copy_fixture("dataset", lambda d: (d / "mypt_metadata.json").write_bytes(BINARY))},
         says=("{ws}/d/mypt_metadata.json", "UTF-8")),
    Case("train-arrow-garbage", ["train", "--dataset_dir", "{ws}/d", "--output_dir", "{ws}/out"],
         files={"d": copy_fixture("dataset", damage_split_file("data-00000-of-00001.arrow", BINARY))},
         says=("{ws}/d/train/data-00000-of-00001.arrow", "Arrow")),
    Case("train-arrow-missing", ["train", "--dataset_dir", "{ws}/d", "--output_dir", "{ws}/out"],
         files={"d": copy_fixture("dataset", lambda d: (d / "train" / "data-00000-of-00001.arrow").unlink())},
         says=("{ws}/d/train/data-00000-of-00001.arrow", "missing")),
    Case("train-split-state-not-json", ["train", "--dataset_dir", "{ws}/d", "--output_dir", "{ws}/out"],
         files={"d": copy_fixture("dataset", damage_split_file("state.json", b"x"))},
         says=("{ws}/d/train/state.json", "JSON")),
    Case("train-eval-prompts-binary", TRAIN + ["--eval_prompts_file", "{ws}/p.json"], files={"p.json": BINARY},
         says=("p.json",)),
    Case("train-eval-prompts-missing", TRAIN + ["--eval_prompts_file", "{ws}/p.json"], says=("p.json", "not found")),
]


@pytest.mark.parametrize("case", TRAIN_CASES, ids=str)
def test_train_bad_input(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)


def test_failed_train_leaves_no_output_dir(bad_input_fixtures, tmp_path, monkeypatch):
    """A run that fails inside the trainer, before its first checkpoint, removes the folders it created."""
    from mypt_hf.training import fit, trainer

    def broken_train(self, *args, **kwargs):
        raise RuntimeError("broken inside the trainer")

    monkeypatch.setattr(trainer.MyPTSFTTrainer, "train", broken_train)
    out = tmp_path / "new" / "deeper" / "out"
    from mypt_hf.cli import main

    assert main(["train", "--dataset_dir", str(bad_input_fixtures.dataset), "--output_dir", str(out),
                 "--max_steps", "1"]) == 3
    assert not (tmp_path / "new").exists()
    assert fit.first_missing_ancestor(tmp_path) is None


# ------------------------------------------------------------------------------------------- convert


def native_checkpoint(config_changes=None, raw_config: str = None):
    """A ``files`` entry: a native MyPT checkpoint directory (config.json + model.pt), its config edited."""
    def build(fixtures, path: Path) -> None:
        import torch

        from test_convert import original_config, original_state_dict

        config = original_config()
        state = original_state_dict(config)
        path.mkdir(parents=True)
        torch.save(state, path / "model.pt")
        config.update(config_changes or {})
        text = raw_config if raw_config is not None else json.dumps(config)
        (path / "config.json").write_text(text, encoding="utf-8")
    return build


def pickle_needing_code(fixtures, path: Path) -> None:
    import fractions

    import torch

    # any class outside torch's allow-list: loading it would run its (here harmless) code
    torch.save({"config": {}, "model_state_dict": {"w": fractions.Fraction(1, 3)}}, path)


def native_learned_checkpoint(fixtures, path: Path) -> None:
    import torch

    from test_convert import original_config, original_state_dict

    config = original_config(pos_encoding="learned", mlp_type="gelu", norm_type="layernorm")
    path.mkdir(parents=True)
    torch.save(original_state_dict(config), path / "model.pt")
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")


CONVERT = ["convert", "--input", "{ws}/ck", "--output_dir", "{ws}/out", "--skip_tokenizer"]
CONVERT_CASES = [
    Case("convert-vocab-disagrees", CONVERT, files={"ck": native_checkpoint({"vocab_size": 99})},
         says=("{ws}/ck/config.json", "vocab_size", "80")),
    Case("convert-n-embd-disagrees", CONVERT, files={"ck": native_checkpoint({"n_embd": 48, "n_head": 4})},
         says=("{ws}/ck/config.json", "n_embd", "32")),
    Case("convert-n-head-does-not-divide", CONVERT, files={"ck": native_checkpoint({"n_head": 3})},
         says=("{ws}/ck/config.json", "n_head")),
    Case("convert-n-head-zero", CONVERT, files={"ck": native_checkpoint({"n_head": 0})},
         says=("{ws}/ck/config.json", "n_head", ">= 1")),
    Case("convert-n-embd-not-a-number", CONVERT, files={"ck": native_checkpoint({"n_embd": "wide"})},
         says=("{ws}/ck/config.json", "n_embd", "wide")),
    Case("convert-vocab-bool", CONVERT, files={"ck": native_checkpoint({"vocab_size": True})},
         says=("{ws}/ck/config.json", "vocab_size")),
    Case("convert-block-size-0", CONVERT, files={"ck": native_checkpoint({"block_size": 0})},
         says=("{ws}/ck/config.json", "block_size")),
    Case("convert-n-layer-disagrees", CONVERT, files={"ck": native_checkpoint({"n_layer": 3})},
         says=("{ws}/ck/config.json", "n_layer", "2 blocks")),
    Case("convert-dropout-out-of-range", CONVERT, files={"ck": native_checkpoint({"dropout": 2})},
         says=("{ws}/ck/config.json", "dropout")),
    Case("convert-config-not-json", CONVERT, files={"ck": native_checkpoint(raw_config="{oops")},
         says=("{ws}/ck/config.json", "line 1")),
    Case("convert-random-binary", ["convert", "--input", "{ws}/final.pt", "--output_dir", "{ws}/out"],
         files={"final.pt": BINARY}, says=("{ws}/final.pt", "not a PyTorch checkpoint")),
    Case("convert-text-file", ["convert", "--input", "{ws}/final.pt", "--output_dir", "{ws}/out"],
         files={"final.pt": "hello, I am text\n"}, says=("{ws}/final.pt", "not a PyTorch checkpoint")),
    Case("convert-empty-file", ["convert", "--input", "{ws}/final.pt", "--output_dir", "{ws}/out"],
         files={"final.pt": b""}, says=("{ws}/final.pt", "empty")),
    Case("convert-needs-code", ["convert", "--input", "{ws}/final.pt", "--output_dir", "{ws}/out"],
         files={"final.pt": pickle_needing_code}, says=("{ws}/final.pt", "arbitrary code")),
    Case("convert-missing", ["convert", "--input", "{ws}/nowhere", "--output_dir", "{ws}/out"],
         says=("{ws}/nowhere", "not found")),
    Case("convert-empty-dir", ["convert", "--input", "{ws}/empty", "--output_dir", "{ws}/out"],
         files={"empty/.keep": ""}, says=("{ws}/empty", "config.json")),
    Case("convert-to-llama-names-the-input", ["convert", "--input", "{ws}/ck", "--output_dir", "{ws}/out",
                                              "--to_llama", "--skip_tokenizer"],
         files={"ck": native_learned_checkpoint}, says=("{ws}/ck:", "pos_encoding")),
    Case("convert-to-llama-hf-truncated", ["convert", "--input", "{ws}/m", "--output_dir", "{ws}/out", "--to_llama"],
         files={"m": copy_fixture("model", truncate_weights)}, says=("{ws}/m/model.safetensors", "truncated")),
    Case("convert-to-llama-hf-config-not-json", ["convert", "--input", "{ws}/m", "--output_dir", "{ws}/out",
                                                 "--to_llama"],
         files={"m": copy_fixture("model", write("config.json", "[1, 2"))}, says=("{ws}/m/config.json",)),
    Case("convert-output-exists", ["convert", "--input", "{model}", "--output_dir", "{ws}/out", "--to_llama"],
         files={"out/keep.txt": "mine"}, says=("{ws}/out", "--overwrite")),
]


@pytest.mark.parametrize("case", CONVERT_CASES, ids=str)
def test_convert_bad_input(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)


# ------------------------------------------------------------------------------------------- generate, eval, checks

NO_TOKENIZER = copy_fixture("model", remove("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"))
GENERATE = ["generate", "--prompt", "Hello", "--temperature", "0", "--max_new_tokens", "2", "--model"]
EVAL = ["eval", "--buckets", "A", "--max_new_tokens", "2", "--no_progress", "--model"]
EPISODES = ["eval-episodes", "--episodes", "{episodes}", "--max_new_tokens", "2", "--model"]
LONG_PROMPT = " ".join(["word"] * 200)  # well over the fixture model's 128-token context

MODEL_CASES = [
    Case("generate-no-tokenizer", GENERATE + ["{ws}/m"], files={"m": NO_TOKENIZER},
         says=("{ws}/m", "tokenizer.json", "--tokenizer")),
    Case("generate-missing-model", GENERATE + ["{ws}/nowhere"], says=("{ws}/nowhere", "not found")),
    Case("generate-model-is-a-file", GENERATE + ["{episodes}"], says=("{episodes}", "directory")),
    Case("generate-empty-dir", GENERATE + ["{ws}/m"], files={"m/.keep": ""}, says=("{ws}/m", "config.json")),
    Case("generate-config-not-json", GENERATE + ["{ws}/m"], files={"m": copy_fixture("model", write("config.json", "x"))},
         says=("{ws}/m/config.json",)),
    Case("generate-config-wrong-type", GENERATE + ["{ws}/m"],
         files={"m": copy_fixture("model", edit_json("config.json", hidden_size="wide"))}, says=("{ws}/m",)),
    Case("generate-truncated-weights", GENERATE + ["{ws}/m"], files={"m": copy_fixture("model", truncate_weights)},
         says=("{ws}/m/model.safetensors", "truncated")),
    Case("generate-binary-weights", GENERATE + ["{ws}/m"],
         files={"m": copy_fixture("model", lambda d: (d / "model.safetensors").write_bytes(BINARY))},
         says=("{ws}/m/model.safetensors",)),
    Case("generate-missing-tokenizer-spec", GENERATE + ["{model}", "--tokenizer", "{ws}/nowhere.tiktoken"],
         says=("nowhere.tiktoken",)),
    Case("generate-prompt-too-long", ["generate", "--prompt", LONG_PROMPT, "--temperature", "0", "--model", "{model}"],
         says=("prompt", "128 tokens")),
    Case("generate-max-new-tokens-0", GENERATE[:-2] + ["0", "--model", "{model}"], says=("max_new_tokens",)),
    Case("eval-no-tokenizer", EVAL + ["{ws}/m"], files={"m": NO_TOKENIZER}, says=("{ws}/m", "tokenizer.json")),
    Case("eval-truncated-weights", EVAL + ["{ws}/m"], files={"m": copy_fixture("model", truncate_weights)},
         says=("{ws}/m/model.safetensors",)),
    Case("eval-batch-size-0", EVAL + ["{model}", "--batch_size", "0"], says=("batch_size",)),
    Case("eval-bad-threshold", EVAL + ["{model}", "--threshold", "A=2"], says=("threshold",)),
    Case("eval-episodes-no-tokenizer", EPISODES + ["{ws}/m"], files={"m": NO_TOKENIZER},
         says=("{ws}/m", "tokenizer.json")),
    Case("eval-episodes-min-exact-match-over-1", EPISODES + ["{model}", "--min_exact_match", "75"],
         says=("min_exact_match", "[0, 1]")),
    Case("eval-episodes-batch-size-0", EPISODES + ["{model}", "--batch_size", "0"], says=("batch_size",)),
    Case("eval-episodes-limit-0", EPISODES + ["{model}", "--limit", "0"], says=("limit",)),
    Case("eval-episodes-episodes-binary", ["eval-episodes", "--episodes", "{ws}/e.jsonl", "--model", "{model}"],
         files={"e.jsonl": BINARY}, says=("e.jsonl",)),
    Case("eval-episodes-episodes-empty", ["eval-episodes", "--episodes", "{ws}/e.jsonl", "--model", "{model}"],
         files={"e.jsonl": ""}, says=("e.jsonl",)),
    Case("eval-episodes-episodes-a-dir", ["eval-episodes", "--episodes", "{ws}/e", "--model", "{model}"],
         files={"e/.keep": ""}, says=("{ws}/e",)),
    Case("check-tie-weights-truncated", ["check-tie-weights", "--model", "{ws}/m"],
         files={"m": copy_fixture("model", truncate_weights)}, says=("{ws}/m/model.safetensors",)),
    Case("check-tie-weights-config-not-json", ["check-tie-weights", "--model", "{ws}/m"],
         files={"m": copy_fixture("model", write("config.json", "{"))}, says=("{ws}/m/config.json",)),
    Case("check-tie-weights-missing", ["check-tie-weights", "--model", "{ws}/nowhere"], says=("{ws}/nowhere",)),
    Case("parity-arrow-garbage", ["debug-train-eval-parity", "--model", "{model}", "--dataset_dir", "{ws}/d",
                                  "--split", "train"],
         files={"d": copy_fixture("dataset", damage_split_file("data-00000-of-00001.arrow", BINARY))},
         says=("{ws}/d/train/data-00000-of-00001.arrow",)),
    Case("parity-truncated-weights", ["debug-train-eval-parity", "--model", "{ws}/m", "--dataset_dir", "{dataset}"],
         files={"m": copy_fixture("model", truncate_weights)}, says=("{ws}/m/model.safetensors",)),
    Case("parity-n-batches-0", ["debug-train-eval-parity", "--model", "{model}", "--dataset_dir", "{dataset}",
                                "--n_batches", "0"], says=("n_batches",)),
    Case("parity-unknown-device", ["debug-train-eval-parity", "--model", "{model}", "--dataset_dir", "{dataset}",
                                   "--device", "toaster"], says=("device",)),
    # 7. eval-episodes gates by default: a random model scores 0 % and fails bucket E's 0.75
    Case("eval-episodes-gates-by-default", EPISODES + ["{model}"], code=1, says=("75.0%",)),
]

UNREADABLE_CASES = [
    Case("train-config-unreadable", TRAIN + ["--config_file", "{ws}/c.yaml"], files={"c.yaml": "max_steps: 1\n"},
         modes={"c.yaml": 0o000}, says=("c.yaml",)),
    Case("generate-config-unreadable", GENERATE + ["{ws}/m"], files={"m": copy_fixture("model")},
         modes={"m/config.json": 0o000}, says=("{ws}/m/config.json",)),
    Case("eval-episodes-episodes-unreadable", ["eval-episodes", "--episodes", "{ws}/e.jsonl", "--model", "{model}"],
         files={"e.jsonl": "{{}}\n"}, modes={"e.jsonl": 0o000}, says=("e.jsonl",)),
    Case("convert-input-unreadable", ["convert", "--input", "{ws}/final.pt", "--output_dir", "{ws}/out"],
         files={"final.pt": BINARY}, modes={"final.pt": 0o000}, says=("final.pt",)),
]


@pytest.mark.parametrize("case", MODEL_CASES, ids=str)
def test_model_command_bad_input(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)


@pytest.mark.skipif(not permissions_enforced(), reason="running as root: a chmod 000 file stays readable")
@pytest.mark.parametrize("case", UNREADABLE_CASES, ids=str)
def test_unreadable_input(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)


def test_eval_episodes_default_gate_is_bucket_e_and_zero_reports_only(bad_input_fixtures, tmp_path, monkeypatch, capsys):
    from mypt_hf.cli import build_command_parser, main
    from mypt_hf.commands.eval_episodes import DEFAULT_MIN_EXACT_MATCH
    from mypt_hf.evaluation.suite import DEFAULT_THRESHOLDS

    assert DEFAULT_MIN_EXACT_MATCH == DEFAULT_THRESHOLDS["operators"]
    assert "default 0.75" in build_command_parser("eval-episodes").format_help()
    monkeypatch.chdir(tmp_path)
    code = main(["eval-episodes", "--episodes", str(bad_input_fixtures.episodes), "--model",
                 str(bad_input_fixtures.model), "--max_new_tokens", "2", "--min_exact_match", "0"])
    assert code == 0
    assert "exact match: 0/8" in capsys.readouterr().out


def test_generate_caps_max_new_tokens_at_the_context_and_says_so(bad_input_fixtures, tmp_path, monkeypatch, capsys):
    """--max_new_tokens past the context: the prompt is kept whole and the reply capped, with one note on stderr."""
    from mypt_hf.cli import main
    from mypt_hf.generation import generate_ids
    from mypt_hf.tokenization_mypt import load_tokenizer
    from transformers import AutoModelForCausalLM

    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--model", str(bad_input_fixtures.model), "--prompt", "Hello there", "--temperature",
                 "0", "--max_new_tokens", "1000000000"]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if "capped" in line]
    assert len(notes) == 1 and "1000000000" in notes[0] and "128" in notes[0]
    assert captured.out.startswith("Hello there")

    tokenizer = load_tokenizer(str(bad_input_fixtures.model))
    model = AutoModelForCausalLM.from_pretrained(str(bad_input_fixtures.model))
    prompt = tokenizer("Hello there", add_special_tokens=False)["input_ids"]
    # no stop ids, so generation runs to the cap: exactly what the context leaves after the whole prompt
    monkeypatch.setattr("mypt_hf.generation.stop_token_ids", lambda tok: [len(tokenizer) + 10])
    reply = generate_ids(model, tokenizer, [prompt], max_new_tokens=250)[0]
    assert len(reply) == 128 - len(prompt)
    assert "capped to" in capsys.readouterr().err
