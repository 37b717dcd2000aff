"""The guide's mandatory gate beside the suite: a broken tie or non-deterministic eval fails a phase whose buckets pass."""

from __future__ import annotations

import torch

from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.data.prepare import PrepareConfig, prepare_dataset
from mypt_hf.data.schema import episodes_from_rows, make_episode
from mypt_hf.evaluation.gate_checks import add_gate_checks, format_gate_checks, run_gate_checks
from mypt_hf.modeling_mypt import MyPTForCausalLM
from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size


def _setup(**config):
    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    model = MyPTForCausalLM(MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, max_position_embeddings=128, **config))
    episodes = episodes_from_rows([make_episode(f"Say {w}.", f"{w}.") for w in ("OK", "Yes", "No", "Hi")])
    dataset, _ = prepare_dataset(episodes, tokenizer, PrepareConfig(val_split=0.0), verbose=False)
    return model, tokenizer, dataset["train"]


def test_healthy_model_passes_both_checks_and_keeps_the_suite_verdict():
    model, tokenizer, rows = _setup(dropout=0.1)
    checks = run_gate_checks(model, rows, pad_token_id=tokenizer.pad_token_id)
    assert {n: c["verdict"] for n, c in checks.items()} == {"tie_weights": "PASS", "train_eval_parity": "PASS"}
    assert "dropout 0.1" in checks["train_eval_parity"]["message"]
    assert add_gate_checks({"passed": True}, checks)["passed"] is True
    assert add_gate_checks({"passed": False}, checks)["passed"] is False
    assert format_gate_checks({"checks": checks}).splitlines()[0].startswith("[PASS] tie_weights:")


def test_untied_head_fails_the_gate_although_the_buckets_pass():
    model, tokenizer, rows = _setup()
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())  # config still says tied
    checks = run_gate_checks(model, rows, pad_token_id=tokenizer.pad_token_id)
    assert checks["tie_weights"]["verdict"] == "FAIL" and not checks["tie_weights"]["passed"]
    report = add_gate_checks({"passed": True, "buckets": {}}, checks)
    assert report["passed"] is False and report["checks"]["tie_weights"]["verdict"] == "FAIL"


def test_dropout_that_does_nothing_fails_parity():
    model, tokenizer, rows = _setup(dropout=0.1)
    for module in model.modules():  # dropout declared in the config but not wired into the forward
        for name in ("dropout", "attention_dropout", "resid_dropout"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 0.0)
    checks = run_gate_checks(model, rows, pad_token_id=tokenizer.pad_token_id)
    assert checks["train_eval_parity"]["verdict"] == "FAIL"
    assert "dropout_has_effect" in checks["train_eval_parity"]["message"]


def test_no_rows_skips_parity_without_failing():
    model, tokenizer, _ = _setup()
    checks = run_gate_checks(model, None, pad_token_id=tokenizer.pad_token_id)
    assert checks["train_eval_parity"]["verdict"] == "SKIPPED" and checks["train_eval_parity"]["passed"]
