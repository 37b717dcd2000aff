"""The package as a user installs it: a wheel built from the repository, installed into an empty target, runs the
chain, one phase by itself and the CLI from a directory that is not the checkout (configs and eval prompts come
from the package data, not from the repository)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# 1 layer, 32 wide, 2 steps per phase, small data (as tests/test_chain.py)
CUT_DOWN = ["hidden_size=32", "num_hidden_layers=1", "num_attention_heads=2", "max_steps=2", "eval_steps=2",
            "save_steps=2", "logging_steps=1", "eval_max_new_tokens=4", "per_device_train_batch_size=4",
            "disable_tqdm=true", "mix_target_size=64", "echo_max_examples=64", "operator_n_train=60",
            "operator_n_val=12", "eval_batch_size=64", "copy_train_rows=16", "copy_val_rows=4",
            "copy_probe_phrases=3"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(target dir with the wheel's files, environment that finds only them) for a wheel of this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    dist, target = work / "dist", work / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = dist.glob("mypt_hf-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1")
    return wheel, target, env


def run(args, env, cwd):
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_wheel_holds_the_configs_and_runs_the_chain_from_anywhere(installed, tmp_path):
    wheel, target, env = installed
    names = zipfile.ZipFile(wheel).namelist()
    for phase in ("tiny_base", "phase3a1_alpha", "phase3a1_beta", "phase3a1_gamma", "phase3a2", "phase3a_operator"):
        assert f"mypt_hf/phases/configs/{phase}.yaml" in names, phase
    assert "mypt_hf/phases/configs/phase3a_operator_750M.yaml" in names
    assert "mypt_hf/phases/configs/eval_prompts/phase3a1.json" in names
    assert "mypt_hf/evaluation/sft_eval_suite/sft_eval_suite.py" in names

    where = run([sys.executable, "-c", "import mypt_hf; print(mypt_hf.__file__)"], env, tmp_path)
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr  # not the checkout

    help_run = run([str(target / "bin" / "mypt-hf"), "--help"], env, tmp_path)
    assert help_run.returncode == 0 and "run-phases" in help_run.stdout, help_run.stderr

    root = tmp_path / "outputs"
    sets = [arg for pair in CUT_DOWN for arg in ("--set", pair)]
    chain = run([sys.executable, "-m", "mypt_hf.cli", "run-phases", "--output_root", str(root), "--continue_on_fail",
                 *sets], env, tmp_path)
    log = chain.stdout[-3000:] + chain.stderr[-3000:]
    assert chain.returncode == 1, log  # two steps per phase fail their gates; every phase ran
    summary = json.loads((root / "chain_summary.json").read_text())
    assert [row["verdict"] for row in summary["phases"]] == ["FAIL"] + ["RED LINE"] * 5, log
    assert summary["config_dir"].startswith(str(target))
    for row in summary["phases"]:
        assert (Path(row["output_dir"]) / "model.safetensors").is_file(), row["phase"]
    # the eval prompts file the packaged config names was found beside it, inside the installed package
    import torch

    prompts = torch.load(root / "phase3a1_alpha" / "training_args.bin", weights_only=False).eval_prompts_file
    assert Path(prompts).is_file() and Path(prompts).resolve().is_relative_to(target.resolve()), prompts

    # one phase on its own from the installed package, starting from the chain's α
    beta = tmp_path / "again" / "phase3a1_beta"
    single = run([sys.executable, "-m", "mypt_hf.phases", "beta", "--output_dir", str(beta),
                  "--init_from_model", str(root / "phase3a1_alpha"),
                  *[arg for pair in CUT_DOWN if pair.split("=")[0] not in ("operator_n_train", "operator_n_val",
                                                                           "copy_train_rows", "copy_val_rows",
                                                                           "copy_probe_phrases")
                    for arg in (f"--{pair.split('=')[0]}", pair.split("=", 1)[1])]], env, tmp_path)
    assert single.returncode == 1, single.stdout[-2000:] + single.stderr[-2000:]
    assert json.loads((beta / "gate_report.json").read_text())["phase"] == "phase3a1_beta"
