"""`run-phases --resume` after a SIGKILL: finished phases kept, the interrupted one continued from its newest
complete checkpoint (a half-written one skipped), the rest run; the same gated results as an uninterrupted chain."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mypt_hf.training.checkpoints import checkpoint_problem, latest_complete_checkpoint

PHASES = "tiny_base,alpha,beta"
# test_chain's cut-down settings, with more steps and a checkpoint every 2 steps so that a kill lands mid-phase
CUT_DOWN = ["hidden_size=32", "num_hidden_layers=1", "num_attention_heads=2", "max_steps=12", "eval_steps=12",
            "save_steps=2", "save_total_limit=2", "logging_steps=1", "eval_max_new_tokens=4",
            "per_device_train_batch_size=4", "disable_tqdm=true", "mix_target_size=64", "echo_max_examples=64",
            "eval_batch_size=64", "copy_train_rows=16", "copy_val_rows=4", "copy_probe_phrases=3"]


def _command(root: Path, *extra: str):
    sets = [arg for pair in CUT_DOWN for arg in ("--set", pair)]
    return [sys.executable, "-m", "mypt_hf.cli", "run-phases", "--phases", PHASES, "--output_root", str(root),
            "--continue_on_fail", *sets, *extra]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _gated(summary_path: Path):
    summary = json.loads(summary_path.read_text())
    return [(row["phase"], row["verdict"], {name: (b["rate"], b["passed"], b["total"])
                                             for name, b in row["buckets"].items()}) for row in summary["phases"]]


def _damage_like_a_killed_save(checkpoint: Path, target: Path) -> None:
    """What a SIGKILL during the Trainer's save leaves: the weights half-written, no trainer_state.json."""
    target.mkdir()
    data = (checkpoint / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) // 2])
    shutil.copy(checkpoint / "config.json", target / "config.json")


def test_checkpoint_completeness(tmp_path):
    assert latest_complete_checkpoint(tmp_path / "none") == (None, [])
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{")
    assert "not readable JSON" in checkpoint_problem(tmp_path / "checkpoint-2")
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    assert checkpoint_problem(tmp_path / "checkpoint-2") == "no model weights"


@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_chain(tmp_path):
    whole = tmp_path / "whole"
    done = subprocess.run(_command(whole), env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stderr[-3000:]  # a few steps do not pass the gates; every phase ran

    root = tmp_path / "killed"
    watched = root / "phase3a1_alpha" / "checkpoint-2" / "trainer_state.json"
    process = subprocess.Popen(_command(root), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while not watched.is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    record = json.loads((root / "phase3a1_alpha" / "phase_run.json").read_text())
    assert record["status"] == "running", "the kill did not land inside α"
    base_weights = root / "tiny_base" / "model.safetensors"
    base_before = (base_weights.read_bytes(), base_weights.stat().st_mtime_ns)

    # the newest checkpoint as a SIGKILL during its save leaves it; resuming must skip it
    latest, _ = latest_complete_checkpoint(root / "phase3a1_alpha")
    step = int(latest.name.split("-")[1])
    half_written = root / "phase3a1_alpha" / f"checkpoint-{step + 2}"
    if half_written.exists():
        shutil.rmtree(half_written)
    _damage_like_a_killed_save(latest, half_written)

    resumed = subprocess.run(_command(root, "--resume"), env=_env(), capture_output=True, text=True, timeout=900)
    out = resumed.stdout
    assert resumed.returncode == 1, resumed.stderr[-3000:]
    assert "[chain 1/3] tiny_base: kept (finished in an earlier run)" in out
    assert f"checkpoint-{step + 2} is unusable (no trainer_state.json" in out
    assert f"(continued from checkpoint-{step})" in out
    assert "[chain 3/3] phase3a1_beta: start from" in out
    assert not half_written.exists()
    assert (base_weights.read_bytes(), base_weights.stat().st_mtime_ns) == base_before  # nothing finished is redone

    assert _gated(root / "chain_summary.json") == _gated(whole / "chain_summary.json")
    # a few steps leave every gate at 0 %, so the verdicts alone would agree anyway: the weights decide. The trainer's
    # resume restores optimizer, schedule, RNG and data position, so the continued α (and the β after it) are
    # byte-identical to the uninterrupted run's.
    for phase in ("tiny_base", "phase3a1_alpha", "phase3a1_beta"):
        assert (root / phase / "model.safetensors").read_bytes() == (whole / phase / "model.safetensors").read_bytes()
    rows = json.loads((root / "chain_summary.json").read_text())["phases"]
    assert [row.get("resumed") for row in rows] == ["kept", f"continued from checkpoint-{step}", None]

    # resuming a finished chain keeps everything and trains nothing
    again = subprocess.run(_command(root, "--resume"), env=_env(), capture_output=True, text=True, timeout=300)
    assert again.stdout.count("kept (finished in an earlier run)") == 3
    assert _gated(root / "chain_summary.json") == _gated(whole / "chain_summary.json")
