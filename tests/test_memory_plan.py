"""benchmarks/memory_plan.py: the 750M figures it prints come from the real model class and configs, its activation
formula agrees with what autograd actually saves, and a gpu_check report fills the measured columns."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "memory_plan.py"


@pytest.fixture(scope="module")
def plan():
    spec = importlib.util.spec_from_file_location("memory_plan", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_750M_parameters_match_the_original(plan):
    counts = plan.count_parameters(plan.model_config())
    # the original's 750M: 634,388,480 decayed + 64,522,624 not (shared/reference/original-model-and-training.md 6.1)
    assert counts["decayed"] == 634_388_480 and counts["not_decayed"] == 64_522_624
    assert counts["total"] == counts["non_embedding"] + counts["embedding"] == 698_911_104
    assert counts["per_layer"] * 32 + 50304 + 1280 == counts["non_embedding"]
    assert plan.state_bytes(counts["total"], "bf16 autocast (Trainer bf16=True)")["bytes_per_param"] == 16


def test_activation_formula_matches_saved_tensors(plan):
    """Measured at a small width: the formula (no dropout) is one bf16 h-wide cast (2h bytes) above what autograd keeps,
    as at the 750M width (71,256 vs 73,816 B)."""
    hidden, heads = 128, 4
    measured = plan.measure_layer_activations(hidden, heads, tokens=96)["bytes_per_token_layer"]
    formula = plan.layer_activation_formula(hidden, plan.swiglu(hidden), heads, dropout=False).total
    assert abs(formula - 2 * hidden - measured) <= 0.02 * measured


def test_checkpointing_keeps_only_layer_inputs(plan):
    with_ckpt = plan.activation_bytes(1000.0, hidden=10, layers=4, tokens=8, checkpointing=True)
    without = plan.activation_bytes(1000.0, hidden=10, layers=4, tokens=8, checkpointing=False)
    assert with_ckpt["layers"] == 4 * 4 * 10 * 8 + 1000 * 8 and without["layers"] == 4 * 1000 * 8


def test_phase_steps_and_measured_columns(plan, tmp_path, capsys):
    counts = plan.count_parameters(plan.model_config())
    rows = {r["phase"]: r for r in plan.phase_plan(counts, 1280, operator_blocks=290)}
    assert rows["phase3a1_alpha"]["steps"] == 600 and rows["phase3a1_alpha"]["tokens"] == 600 * 16 * 512
    assert rows["phase3a_operator"]["steps"] == 42 and rows["phase3a_operator"]["packed"]  # ceil(2.3 * 290 / 16)
    report = tmp_path / "gpu_check.json"
    report.write_text(json.dumps({"sections": {
        "train/sdpa/unpacked": {"status": "ok", "tokens_per_s": 60000.0},
        "train/flash_attention_2/unpacked": {"status": "ok", "tokens_per_s": 80000.0},
        "train/sdpa/unpacked/no_ac": {"status": "ok", "tokens_per_s": 99999999.0},  # not the configs' setting
        "train/sdpa/packed": {"status": "error"}}}), encoding="utf-8")
    assert plan.measured_throughput(str(report)) == {"unpacked": 80000.0, "packed": None}
    plan.main(["--no_measure", "--gpu_check_report", str(report), "--json", str(tmp_path / "plan.json")])
    text = capsys.readouterr().out
    assert "COMPUTED, NOT MEASURED" in text and "80,000" in text and "____ (run gpu_check)" in text
    saved = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    alpha = next(r for r in saved["phases"] if r["phase"] == "phase3a1_alpha")
    assert alpha["measured_minutes_1gpu"] == pytest.approx(600 * 16 * 512 / 80000.0 / 60)
