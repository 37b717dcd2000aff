"""Phase recipes: the tiny base and α recipes end to end on a cut-down tiny config, argument handling, bad input."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from mypt_hf.errors import MyPTInputError

torch.set_num_threads(1)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
CUT_DOWN = ["--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2", "--max_steps", "3",
            "--eval_steps", "3", "--save_steps", "3", "--logging_steps", "1", "--eval_max_new_tokens", "4",
            "--per_device_train_batch_size", "4", "--disable_tqdm", "true"]
TINY_BASE_CUT_DOWN = ["--copy_train_rows", "16", "--copy_val_rows", "4", "--copy_probe_phrases", "3"]


def load_recipe(name):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_alpha_recipe_end_to_end_saves_model_card_plots_and_gate(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    import mypt_hf  # noqa: F401
    from mypt_hf.generation import build_chat_messages, generate_replies
    from mypt_hf.tokenization_mypt import load_tokenizer

    # the tiny base first: copy pretraining of a fresh model, gated by the copy probe
    base = tmp_path / "tiny_base"
    code = load_recipe("tiny_base").main(["--output_dir", str(base), *CUT_DOWN, *TINY_BASE_CUT_DOWN])
    assert code == 1  # 3 steps do not teach copying: the gate fails, the model is still saved
    report = json.loads((base / "gate_report.json").read_text())
    assert report["phase"] == "tiny_base" and report["gated_buckets"] == ["copy"]
    assert report["buckets"]["copy"]["total"] == 3 and report["buckets"]["copy"]["verdict"] == "FAIL"
    metadata = json.loads((base / "data" / "mypt_metadata.json").read_text())
    assert metadata["prepare_mode"] == "copy_pretraining" and metadata["splits"]["train"]["rows"] == 16
    card = (base / "README.md").read_text()
    assert "copy_pretraining" in card and "gates.png" in card and (base / "loss.png").is_file()
    assert "apply_chat_template" not in card and "has not learned the chat format" in card  # a base, not a chat model

    out = tmp_path / "phase3a1_alpha"
    code = load_recipe("phase3a1_alpha").main(["--output_dir", str(out), *CUT_DOWN])
    assert f"[phase3a1_alpha] starting from {base.resolve()}" in capsys.readouterr().out  # the sibling base
    assert code in (0, 1)  # 3 steps do not pass the gate; the exit status says so, the model is still saved
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "README.md",
                 "loss.png", "gates.png", "gate_report.json", "data/mypt_metadata.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "gate_report.json").read_text())
    assert set(report["buckets"]) >= {"format_strict", "echo_basic", "anti_echo", "regression_basic", "operators"}
    gated = {name for name, bucket in report["buckets"].items() if bucket["gated"]}
    assert gated == {"format_strict", "echo_basic"}  # α gates A and B; every bucket is reported
    assert code == (0 if report["passed"] else 1)
    card = (out / "README.md").read_text()
    for text in ("loss.png", "gates.png", "format_strict", "learning_rate", "format_lock", "minimal",
                 "apply_chat_template", "copy_replay"):
        assert text in card, text
    # the tiny α config replays copy-pretraining rows: half of the saved training rows, stated in the metadata
    metadata = json.loads((out / "data" / "mypt_metadata.json").read_text())
    replay = metadata["copy_replay"]
    assert replay["share"] == 0.5 and metadata["splits"]["train"]["rows"] == 2 * replay["rows"]
    sources = json.loads((out / "data_sources.json").read_text())
    assert [row["name"] for row in sources] == ["format_lock", "copy_replay"] and sources[1]["rows"] == replay["rows"]
    model = AutoModelForCausalLM.from_pretrained(str(out))
    tokenizer = load_tokenizer(str(out))
    assert model.config.num_hidden_layers == 1
    assert generate_replies(model, tokenizer, [build_chat_messages("Say Hello.")], max_new_tokens=3)
    # mypt-hf generate: --user builds the chat prompt; temperature 0 is greedy and matches generate_replies
    from mypt_hf.cli import main as cli

    expected = generate_replies(model, tokenizer, [build_chat_messages("Say Hello.")], max_new_tokens=3)[0]
    capsys.readouterr()
    assert cli(["generate", "--model", str(out), "--user", "Say Hello.", "--temperature", "0",
                "--max_new_tokens", "3", "--show_tags"]) == 0
    assert capsys.readouterr().out.strip() == expected.strip()
    assert cli(["generate", "--model", str(tmp_path / "nothing"), "--user", "x"]) == 2
    # the next phase starts from this output by default (sibling directory)
    from mypt_hf.phases.run import default_init_from_model

    assert default_init_from_model("phase3a1_beta", str(tmp_path / "phase3a1_beta")) == out.resolve()


def test_unknown_config_key_is_a_clear_error(tmp_path):
    from mypt_hf.phases.settings import parse_phase_args

    config = tmp_path / "bad.yaml"
    config.write_text("output_dir: x\nlearning_rate: 1.0e-3\nnot_a_real_key: 3\n")
    with pytest.raises(MyPTInputError, match="not_a_real_key"):
        parse_phase_args("phase3a1_alpha", ["--config", str(config)])
    for name in ("operator_format_replay_share", "copy_replay_share"):
        for share in ("1.0", "-0.1"):  # refused before any model is loaded
            with pytest.raises(MyPTInputError, match=name) as error:
                parse_phase_args("phase3a_operator", [f"--{name}", share])
            assert error.value.field == name
    with pytest.raises(MyPTInputError, match="config file not found"):
        parse_phase_args("phase3a1_alpha", ["--config", str(tmp_path / "missing.yaml")])


def test_cli_overrides_config_and_every_config_parses(tmp_path):
    from mypt_hf.phases.registry import PHASES, packaged_config_dir
    from mypt_hf.phases.settings import parse_phase_args

    config = parse_phase_args("phase3a1_alpha", ["--learning_rate", "0.0005", "--output_dir", str(tmp_path)])
    model_args, data_args, train_args = config.model, config.data, config.train
    assert train_args.learning_rate == 5e-4 and train_args.output_dir == str(tmp_path)
    assert model_args.tokenizer == "embedded" and data_args.enable_packing
    for phase in PHASES:
        for suffix in ("", "_750M") if phase != "tiny_base" else ("",):  # 750M starts from a converted base
            parsed = parse_phase_args(phase, ["--config", str(packaged_config_dir() / f"{phase}{suffix}.yaml"),
                                              "--output_dir", str(tmp_path / phase)])
            m, t = parsed.model, parsed.train
            assert Path(t.eval_prompts_file or packaged_config_dir()).exists()  # resolved beside the config
            if suffix:
                assert (m.hidden_size, m.num_attention_heads, m.num_hidden_layers) == (1280, 20, 32)
                assert m.require_init_from_model and t.per_device_train_batch_size == 16
    parsed = parse_phase_args("phase3a_operator", ["--config", "phase3a_operator_750M"])  # a packaged config by name
    d, t = parsed.data, parsed.train
    assert d.pack_block_size == 1024 and d.pack_by_field == "_meta.operator" and 2.0 <= t.coverage <= 3.5
    lrs = {p: parse_phase_args(p, ["--config", f"{p}_750M.yaml"]).train.learning_rate
           for p in PHASES if p != "tiny_base"}
    assert lrs == {"phase3a1_alpha": 7e-5, "phase3a1_beta": 5e-5, "phase3a1_gamma": 5e-5, "phase3a2": 3e-5,
                   "phase3a_operator": 7e-5}


def test_missing_starting_model_is_refused_before_data_and_training(tmp_path):
    from mypt_hf.phases.run import PhaseRun

    with pytest.raises(MyPTInputError, match="phase3a1_alpha first"):
        PhaseRun.from_argv("phase3a1_beta", ["--output_dir", str(tmp_path / "phase3a1_beta")])
    with pytest.raises(MyPTInputError, match="tiny_base first"):
        PhaseRun.from_argv("phase3a1_alpha", ["--output_dir", str(tmp_path / "phase3a1_alpha")])
    with pytest.raises(MyPTInputError, match="init_from_model"):
        PhaseRun.from_argv("phase3a1_beta", ["--output_dir", str(tmp_path / "b"),
                                             "--init_from_model", str(tmp_path / "nope")])
    with pytest.raises(MyPTInputError, match="converted MyPT base"):
        PhaseRun.from_argv("phase3a1_alpha", ["--config", "phase3a1_alpha_750M",
                                              "--output_dir", str(tmp_path / "a")])


def test_gate_under_fsdp_evaluates_the_saved_full_model(tmp_path):
    """Under FSDP the trainer's module is one rank's shard (its forward would wait for ranks that do not
    evaluate): rank 0's gate must use the full model saved to output_dir, not the trainer's module."""
    from types import SimpleNamespace

    from mypt_hf.training.modeling import ModelArguments, build_fresh_model
    from mypt_hf.phases.registry import PHASES
    from mypt_hf.phases.run import PhaseRun

    saved, tokenizer = build_fresh_model(ModelArguments(hidden_size=32, num_hidden_layers=1, num_attention_heads=2))
    saved.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    shard = torch.nn.Linear(2, 2)  # stands in for the sharded module
    run = PhaseRun.__new__(PhaseRun)
    run.phase, run.output_dir, run.model, run._saved_model = PHASES["phase3a1_alpha"], tmp_path, shard, None
    accelerator = SimpleNamespace(device=torch.device("cpu"), unwrap_model=lambda module, **_: module)
    run.trainer = SimpleNamespace(is_fsdp_enabled=False, model=shard, accelerator=accelerator)
    run.args = SimpleNamespace(world_size=2, bf16=False)
    assert run.evaluation_model() is shard  # DDP or one process: the trained module itself
    run.trainer.is_fsdp_enabled = True
    model = run.evaluation_model()
    assert model is not shard and not model.training and run.evaluation_model() is model  # loaded once
    for name, tensor in saved.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    run.args.world_size = 1  # FSDP in one process holds the whole model: no reload needed
    run._saved_model = None
    assert run.evaluation_model() is shard
