"""LoRA through TRL's route (mypt_hf.training.lora): TRL's ModelConfig flags, trl.get_peft_config, the peft_config
passed to MyPTSFTTrainer; only the adapter trains; the saved layout (merged model + adapter/) loads everywhere a
phase's output is loaded; the refused combinations. Tiny model, CPU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from mypt_hf.errors import MyPTInputError
from test_training import REPLIES, USERS, make_args, metadata_for, packed_dataset, tiny_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    from mypt_hf.tokenization_mypt import load_tokenizer

    return load_tokenizer()


@pytest.fixture(scope="module")
def base_dir(tokenizer, tmp_path_factory):
    """A saved tiny MyPT (2 layers x 64, tied embeddings) to start LoRA runs from."""
    path = tmp_path_factory.mktemp("peft") / "base"
    model = tiny_model(tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _lora(**overrides):
    from mypt_hf.training.lora import LoraArguments

    values = dict(use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0)
    values.update(overrides)
    return LoraArguments(**values)


def _load(path):
    from mypt_hf.model_files import load_causal_lm

    return load_causal_lm(path, dtype=torch.float32).eval()


def test_flags_have_trl_model_config_names_and_defaults():
    from trl import ModelConfig

    from mypt_hf.training.lora import LoraArguments

    trl_defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    for f in dataclasses.fields(LoraArguments):
        assert f.name in trl_defaults, f.name
        assert f.default == trl_defaults[f.name], f.name
    # no clash with the other groups a phase or `mypt-hf train` parses
    from mypt_hf.training.config import MyPTSFTConfig
    from mypt_hf.training.modeling import ModelArguments

    others = {f.name for cls in (MyPTSFTConfig, ModelArguments) for f in dataclasses.fields(cls)}
    assert not others & {f.name for f in dataclasses.fields(LoraArguments)}


def test_peft_config_comes_from_trl_with_the_blocks_linears_by_default(tokenizer):
    from peft import LoraConfig

    from mypt_hf.training.lora import build_peft_config

    model = tiny_model(tokenizer)
    config = build_peft_config(_lora(), model)
    assert isinstance(config, LoraConfig) and config.task_type == "CAUSAL_LM"
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                          "down_proj"}
    assert (config.r, config.lora_alpha, config.bias) == (4, 8, "none")
    # one module name stays a name matched by suffix (TRL's ModelConfig would make it a full-name regex)
    single = build_peft_config(_lora(lora_target_modules=["v_proj"]), model)
    assert set(single.target_modules) == {"v_proj"}
    assert build_peft_config(_lora(lora_target_modules=["all-linear"]), model).target_modules == "all-linear"


def _train_lora(tmp_path, tokenizer, base_dir, steps=3, **args):
    from mypt_hf.training import MyPTSFTTrainer
    from mypt_hf.training.lora import build_peft_config

    model = _load(base_dir)
    dataset = packed_dataset(tokenizer)
    trainer = MyPTSFTTrainer(model=model, args=make_args(tmp_path, max_steps=steps, init_from_model=str(base_dir),
                                                         learning_rate=3e-2, **args),
                             train_dataset=dataset, processing_class=tokenizer,
                             dataset_metadata=metadata_for(tokenizer, len(dataset)),
                             peft_config=build_peft_config(_lora(), model))
    trainer.train()
    return trainer


def test_only_the_adapter_trains(tmp_path, tokenizer, base_dir):
    before = {name: p.detach().clone() for name, p in _load(base_dir).named_parameters()}
    trainer = _train_lora(tmp_path, tokenizer, base_dir)
    lora_changed = 0
    seen = set()
    for name, param in trainer.model.named_parameters():
        if "lora_" in name:
            assert param.requires_grad
            lora_changed += "lora_B" in name and bool(param.abs().sum() > 0)  # lora_B starts at zero
            continue
        assert not param.requires_grad, name
        original = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
        assert torch.equal(param.detach(), before[original]), f"base weight {original} changed"
        seen.add(original)
    assert seen == set(before)  # every base parameter was compared (the tied head is the embedding)
    assert lora_changed == 2 * 7  # 2 blocks x q, k, v, o, gate, up, down


@pytest.fixture(scope="module")
def lora_run(tokenizer, base_dir, tmp_path_factory):
    """train_and_save with use_peft: the trainer and its output_dir."""
    from mypt_hf.training.fit import train_and_save

    tmp = tmp_path_factory.mktemp("lora_run")
    dataset = packed_dataset(tokenizer)
    from datasets import DatasetDict

    args = make_args(tmp, max_steps=4, init_from_model=str(base_dir), learning_rate=3e-2, save_strategy="steps",
                     save_steps=2)
    trainer = train_and_save(_load(base_dir), tokenizer, args, DatasetDict(train=dataset),
                             metadata_for(tokenizer, len(dataset)), lora=_lora())
    return trainer, Path(args.output_dir)


def _logits(model, tokenizer):
    ids = torch.tensor([tokenizer("Say Hello. Hello.")["input_ids"]])
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_saved_layout_adapter_loads_and_merged_model_matches(lora_run, tokenizer, base_dir):
    from peft import PeftModel

    trainer, out = lora_run
    adapter = out / "adapter"
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert (out / "training_args.bin").is_file() and (out / "tokenizer.json").is_file()
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert not (out / "adapter_config.json").exists()  # from_pretrained(output_dir) must see a full model
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]) == base_dir

    trained = trainer.model.eval()
    reloaded = PeftModel.from_pretrained(_load(base_dir), str(adapter)).eval()
    assert torch.allclose(_logits(reloaded, tokenizer), _logits(trained, tokenizer), atol=1e-6)
    merged = _load(out)  # the output_dir, as the next phase / eval / generate load it
    assert not torch.allclose(_logits(merged, tokenizer), _logits(_load(base_dir), tokenizer), atol=1e-3)
    assert torch.allclose(_logits(merged, tokenizer), _logits(trained, tokenizer), atol=1e-4)
    assert torch.allclose(_logits(reloaded.merge_and_unload(), tokenizer), _logits(trained, tokenizer), atol=1e-4)
    # the head is still the embedding, and the saved generation config has MyPT's stop tags
    assert merged.lm_head.weight is merged.model.embed_tokens.weight
    from mypt_hf.tokenization_mypt import stop_token_ids

    assert list(merged.generation_config.eos_token_id) == stop_token_ids(tokenizer)


def test_gate_and_generation_work_on_the_adapter_model(lora_run, tokenizer):
    from mypt_hf.evaluation.gate_checks import run_gate_checks
    from mypt_hf.evaluation.suite import run_eval_suite
    from mypt_hf.generation import build_chat_messages, generate_replies

    trainer, out = lora_run
    adapter_model, merged = trainer.model.eval(), _load(out)
    report = run_eval_suite(adapter_model, tokenizer, buckets=["A"], batch_size=64, max_new_tokens=4,
                            progress=False)
    assert report["buckets"] and report["buckets"][next(iter(report["buckets"]))]["total"] > 0
    merged_report = run_eval_suite(merged, tokenizer, buckets=["A"], batch_size=64, max_new_tokens=4,
                                   progress=False)
    assert [b["rate"] for b in report["buckets"].values()] == [b["rate"] for b in merged_report["buckets"].values()]
    checks = run_gate_checks(adapter_model, packed_dataset(tokenizer, n_rows=2), pad_token_id=tokenizer.pad_token_id)
    assert checks["tie_weights"]["verdict"] == "PASS"
    conversations = [build_chat_messages(user) for user in USERS[:3]]
    assert generate_replies(adapter_model, tokenizer, conversations, max_new_tokens=6) == \
        generate_replies(merged, tokenizer, conversations, max_new_tokens=6)
    ids = tokenizer.apply_chat_template(conversations[0], add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    assert adapter_model.generate(**ids, max_new_tokens=4, do_sample=False).shape[1] > ids["input_ids"].shape[1]


def test_adapter_checkpoint_resumes_and_a_full_one_is_refused(lora_run, tokenizer, base_dir, tmp_path):
    from mypt_hf.training.checkpoints import checkpoint_problem
    from mypt_hf.training.lora import check_lora_arguments

    _, out = lora_run
    checkpoint = out / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").is_file() and checkpoint_problem(checkpoint) is None
    args = make_args(tmp_path, output_dir=str(out), resume_from_checkpoint=str(checkpoint))
    check_lora_arguments(_lora(), args)  # the same kind: accepted
    with pytest.raises(MyPTInputError, match="adapter checkpoint.*use_peft true"):
        check_lora_arguments(_lora(use_peft=False), args)
    with pytest.raises(MyPTInputError, match="adapter checkpoint"):
        check_lora_arguments(None, args)
    full = tmp_path / "full"
    trainer = _train_full(full, tokenizer)
    with pytest.raises(MyPTInputError, match="full-model checkpoint.*use_peft false"):
        check_lora_arguments(_lora(), make_args(tmp_path, output_dir=trainer.args.output_dir,
                                                resume_from_checkpoint="true"))
    # resuming the adapter run continues its adapter, the base still untouched
    from mypt_hf.training import MyPTSFTTrainer
    from mypt_hf.training.lora import build_peft_config

    model = _load(base_dir)
    dataset = packed_dataset(tokenizer)
    resumed = MyPTSFTTrainer(model=model, args=make_args(tmp_path, output_dir=str(out), max_steps=4,
                                                         learning_rate=3e-2, init_from_model=str(base_dir)),
                             train_dataset=dataset, processing_class=tokenizer,
                             dataset_metadata=metadata_for(tokenizer, len(dataset)),
                             peft_config=build_peft_config(_lora(), model))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 4
    assert torch.allclose(_logits(resumed.model.eval(), tokenizer), _logits(lora_run[0].model.eval(), tokenizer),
                          atol=1e-4)


def _train_full(tmp_path, tokenizer):
    from mypt_hf.training import MyPTSFTTrainer

    dataset = packed_dataset(tokenizer, n_rows=4)
    trainer = MyPTSFTTrainer(model=tiny_model(tokenizer, layers=1, width=32),
                             args=make_args(tmp_path, max_steps=1, save_strategy="steps", save_steps=1),
                             train_dataset=dataset, processing_class=tokenizer,
                             dataset_metadata=metadata_for(tokenizer, len(dataset)))
    trainer.train()
    return trainer


@pytest.mark.parametrize("overrides, field, message", [
    ({"lora_target_modules": ["lm_head"]}, "lora_target_modules", "output head"),
    ({"lora_target_modules": ["embed_tokens"]}, "lora_target_modules", "ties"),
    ({"lora_modules_to_save": ["lm_head"]}, "lora_modules_to_save", "ties"),
    ({"lora_modules_to_save": ["embed_tokens"]}, "lora_modules_to_save", "ties"),
    ({"lora_target_modules": ["c_attn"]}, "lora_target_modules", "no module 'c_attn'"),
])
def test_model_dependent_combinations_refused(tokenizer, overrides, field, message):
    from mypt_hf.training.lora import build_peft_config

    with pytest.raises(MyPTInputError, match=message) as error:
        build_peft_config(_lora(**overrides), tiny_model(tokenizer, layers=1, width=32))
    assert error.value.field == field


def test_settings_combinations_refused(tmp_path):
    from mypt_hf.training.lora import check_lora_arguments

    with pytest.raises(MyPTInputError, match="fresh model") as error:
        check_lora_arguments(_lora(), make_args(tmp_path), fresh_model=True)
    assert error.value.field == "use_peft"
    for name, value in (("freeze_layers", 1), ("freeze_embeddings", True)):
        with pytest.raises(MyPTInputError, match="already freezes") as error:
            check_lora_arguments(_lora(), make_args(tmp_path, **{name: value}))
        assert error.value.field == name
    check_lora_arguments(_lora(use_peft=False), make_args(tmp_path, freeze_layers=1), fresh_model=True)
    for kwargs, field in (({"lora_task_type": "SEQ_CLS"}, "lora_task_type"), ({"lora_r": 0}, "lora_r"),
                          ({"lora_dropout": 1.0}, "lora_dropout"), ({"lora_alpha": 0}, "lora_alpha"),
                          ({"lora_target_parameters": ["experts.weight"]}, "lora_target_parameters")):
        with pytest.raises(MyPTInputError) as error:
            _lora(**kwargs)
        assert error.value.field == field


def test_phase_settings_accept_the_flags_from_yaml_and_the_command_line(tmp_path):
    from mypt_hf.phases.settings import parse_phase_args, phase_keys

    config = tmp_path / "alpha.yaml"
    config.write_text("use_peft: true\nlora_r: 8\nlora_target_modules: [q_proj, v_proj]\nlearning_rate: 3.0e-3\n")
    parsed = parse_phase_args("phase3a1_alpha", ["--config", str(config)])
    assert (parsed.lora.use_peft, parsed.lora.lora_r, parsed.lora.lora_target_modules) == (True, 8,
                                                                                          ["q_proj", "v_proj"])
    parsed = parse_phase_args("phase3a1_alpha", ["--use_peft", "true", "--lora_r", "8", "--lora_alpha", "16",
                                                 "--lora_target_modules", "q_proj,v_proj", "--use_rslora", "true"])
    assert (parsed.lora.use_peft, parsed.lora.lora_r, parsed.lora.lora_alpha, parsed.lora.use_rslora) == (
        True, 8, 16, True)
    assert parsed.lora.lora_target_modules == ["q_proj", "v_proj"]
    assert parse_phase_args("phase3a1_beta", []).lora.use_peft is False
    # the tiny base trains a fresh model: no LoRA keys, so `run-phases --set use_peft=true` leaves it full
    assert "use_peft" not in phase_keys("tiny_base") and "use_peft" in phase_keys("phase3a_operator")
    with pytest.raises(MyPTInputError, match="lora_r"):
        parse_phase_args("phase3a1_alpha", ["--lora_r", "0"])


def test_train_command_with_lora(tmp_path, tokenizer, base_dir):
    from mypt_hf.cli import main
    from mypt_hf.data.prepare import PrepareConfig, prepare
    from mypt_hf.data.schema import make_episode
    from datasets import Dataset

    episodes = Dataset.from_list([make_episode(u, r) for u, r in zip(USERS * 4, REPLIES * 4)])
    data = tmp_path / "prepared"
    prepare(episodes, data, tokenizer, config=PrepareConfig(val_split=0.2, enable_packing=True, pack_block_size=96),
            verbose=False)
    config = tmp_path / "cfg.yaml"
    config.write_text("max_steps: 2\nper_device_train_batch_size: 2\nlogging_steps: 1\nsave_strategy: 'no'\n"
                      "eval_strategy: 'no'\ndisable_tqdm: true\nlora_alpha: 16\n")
    out = tmp_path / "lora"
    assert main(["train", "--dataset_dir", str(data), "--config_file", str(config), "--init_from_model",
                 str(base_dir), "--output_dir", str(out), "--learning_rate", "0.003", "--use_peft", "true",
                 "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj"]) == 0
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], sorted(adapter["target_modules"])) == (4, 16, ["q_proj", "v_proj"])
    card = (out / "README.md").read_text()
    assert "## LoRA" in card and "| r | 4 |" in card and "trainable parameters" in card and "- lora" in card
    assert (out / "model.safetensors").is_file()
    # refused before anything is written: a fresh model, freezing
    assert main(["train", "--dataset_dir", str(data), "--config_file", str(config), "--output_dir",
                 str(tmp_path / "fresh"), "--use_peft", "true"]) == 2
    assert not (tmp_path / "fresh").exists()
    config.write_text("max_steps: 2\nfreeze_layers: 1\n")
    assert main(["train", "--dataset_dir", str(data), "--config_file", str(config), "--init_from_model",
                 str(base_dir), "--output_dir", str(tmp_path / "frozen"), "--use_peft", "true"]) == 2
    assert not (tmp_path / "frozen").exists()


# a 2-step α and β on small data (tests/test_chain.py's cut-down settings), from a tiny saved model
CUT_DOWN = ["max_steps=2", "eval_steps=2", "save_steps=2", "logging_steps=1", "eval_max_new_tokens=4",
            "per_device_train_batch_size=4", "disable_tqdm=true", "mix_target_size=64", "echo_max_examples=64",
            "eval_batch_size=64", "check_red_lines=false", "fail_on_gate=false", "copy_replay_share=0",
            "pack_block_size=128"]


@pytest.mark.slow
def test_run_phases_with_lora_chains_alpha_into_beta(tmp_path, base_dir):
    from mypt_hf.cli import main

    root = tmp_path / "chain"
    sets = [arg for pair in CUT_DOWN + ["use_peft=true", "lora_r=4", "learning_rate=3e-3"]
            for arg in ("--set", pair)]
    # two steps pass no gate (exit 1); --continue_on_fail runs β from α's output all the same
    assert main(["run-phases", "--phases", "alpha,beta", "--init_from_model", str(base_dir), "--output_root",
                 str(root), "--continue_on_fail", *sets]) == 1
    alpha, beta = root / "phase3a1_alpha", root / "phase3a1_beta"
    for out, start in ((alpha, base_dir), (beta, alpha)):
        assert (out / "model.safetensors").is_file() and (out / "gate_report.json").is_file()
        adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
        assert Path(adapter["base_model_name_or_path"]).resolve() == Path(start).resolve()
        assert adapter["r"] == 4
        assert "## LoRA" in (out / "README.md").read_text()
    # β started from α's merged model: its base weights (untouched by LoRA) are α's merged weights
    from safetensors.torch import load_file

    alpha_weights, base_weights = load_file(alpha / "model.safetensors"), load_file(Path(base_dir) / "model.safetensors")
    assert not torch.equal(alpha_weights["model.layers.0.self_attn.q_proj.weight"],
                           base_weights["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(alpha_weights["model.embed_tokens.weight"], base_weights["model.embed_tokens.weight"])
