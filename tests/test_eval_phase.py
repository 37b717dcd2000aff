"""`mypt-hf eval --phase`: the phase's buckets gate (every bucket still runs and is reported); without --phase the
phase a recipe recorded in the model dir decides; with nothing recorded, every bucket gates."""

from __future__ import annotations

import json
import shutil

import pytest

from mypt_hf.cli import main as cli


@pytest.fixture
def model_dir(tmp_path, bad_input_fixtures):
    target = tmp_path / "checkpoints" / "phase3a1_alpha"
    shutil.copytree(bad_input_fixtures.model, target)
    return target


def _gated(path):
    report = json.loads(path.read_text())
    return sorted(name for name, bucket in report["buckets"].items() if bucket["gated"]), report["gated_because"]


ARGS = ["--max_new_tokens", "2", "--batch_size", "64", "--no_progress"]


def test_phase_flag_gates_that_phase_by_model_name(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the model by name: ./checkpoints/phase3a1_alpha
    monkeypatch.delenv("MYPT_CHECKPOINTS_DIR", raising=False)
    code = cli(["eval", "--model", "phase3a1_alpha", "--phase", "alpha", "--output", str(tmp_path / "r.json"), *ARGS])
    assert code == 1  # an untrained model fails the format gate
    gated, why = _gated(tmp_path / "r.json")
    assert gated == ["echo_basic", "format_strict"] and "--phase alpha" in why
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["buckets"]) == 5  # every bucket reported
    assert "gated: format_strict, echo_basic - phase3a1_alpha's gate" in capsys.readouterr().out


def test_recorded_phase_decides_without_the_flag(model_dir, tmp_path):
    (model_dir / "gate_report.json").write_text(json.dumps({"phase": "phase3a1_beta"}))
    cli(["eval", "--model", str(model_dir), "--output", str(tmp_path / "r.json"), *ARGS])
    gated, why = _gated(tmp_path / "r.json")
    assert gated == ["anti_echo", "echo_basic", "format_strict"] and "recorded in" in why


def test_nothing_recorded_gates_every_bucket(model_dir, tmp_path):
    cli(["eval", "--model", str(model_dir), "--output", str(tmp_path / "r.json"), *ARGS])
    gated, why = _gated(tmp_path / "r.json")
    assert len(gated) == 5 and "every bucket" in why
