"""benchmarks/gpu_check.py --smoke: the GPU check's code runs on CPU, its report has the promised structure, and
packed sdpa attention gives exactly the per-episode loss (so the script cannot rot before a GPU is there)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _load_module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu_check") / "report.json"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "correctness (packed == episodes)" in proc.stdout  # the printed summary
    return json.loads(out.read_text(encoding="utf-8"))


def gpu_check_names():
    return _load_module().SECTION_NAMES


@pytest.mark.slow
def test_smoke_report_structure(smoke_report):
    report = smoke_report
    assert report["schema"] == "mypt_hf.gpu_check/1" and report["mode"] == "smoke"
    assert "6*N*tokens" in report["mfu_formula"]
    assert report["environment"]["peak_bf16_tflops"] is None  # CPU: no peak, said so
    assert "MFU not computed" in report["environment"]["peak_source"]
    sections = report["sections"]
    expected = {"setup", "correctness", "train/sdpa/unpacked", "train/sdpa/packed",
                "train/flash_attention_2/unpacked", "train/flash_attention_2/packed", "generation/sdpa",
                "generation/flash_attention_2", "train/sdpa/unpacked/no_ac", "train/sdpa/packed/no_ac"}
    assert set(sections) == expected == set(gpu_check_names())
    for name in ("train/sdpa/unpacked", "train/sdpa/packed", "train/sdpa/packed/no_ac"):
        run = sections[name]
        assert run["status"] == "ok", run
        assert run["train_path"].startswith("MyPTSFTTrainer")
        assert run["timed_steps"] == report["shapes"]["steps"] and run["tokens_per_s"] > 0
        assert run["mfu"] is None and "model_tflops_per_s" in run
    assert sections["train/sdpa/unpacked"]["activation_checkpointing"] is True
    assert sections["train/sdpa/unpacked/no_ac"]["activation_checkpointing"] is False
    # packed rows attend within episodes: the mean attended length is far below the block
    assert sections["train/sdpa/packed"]["mean_attended_length"] < report["shapes"]["packed_block"] / 2
    for name in ("train/flash_attention_2/unpacked", "generation/flash_attention_2"):
        assert sections[name]["status"] == "skipped" and "no CUDA" in sections[name]["reason"]
    gen = sections["generation/sdpa"]
    assert gen["status"] == "ok" and set(gen["batches"]) == {"1", "32"}
    assert all(b["new_tokens_per_row"] == report["shapes"]["gen_new_tokens"] for b in gen["batches"].values())
    assert report["summary"] and report["elapsed_s"] < report["budget_s"]


@pytest.mark.slow
def test_smoke_packed_sdpa_loss_equals_per_episode_loss(smoke_report):
    check = smoke_report["sections"]["correctness"]
    assert check["status"] == "ok"
    sdpa = check["sdpa"]
    assert sdpa["status"] == "ok" and check["dtype"] == "fp32"
    assert check["episodes"] > 2 * check["packed_rows"]  # several episodes per block, so the mask matters
    assert abs(sdpa["packed_loss"] - sdpa["per_episode_loss"]) <= 1e-5 * abs(sdpa["per_episode_loss"])
    assert check["flash_attention_2"]["status"] == "skipped"


def test_packed_loss_check_catches_cross_episode_attention():
    """With the block-diagonal mask lost (eager attention on a plain causal mask), the check must fail."""
    import torch

    gpu_check = _load_module()
    shapes = gpu_check.smoke_shapes()
    model = gpu_check.build_model(shapes, torch.device("cpu"))
    result = gpu_check.packed_vs_episodes(model, shapes, torch.device("cpu"), [gpu_check.SDPA], "skipped: test")
    assert result["sdpa"]["status"] == "ok"
    original = gpu_check.collator_for

    def leaky_collator(packed, block):  # positions that never restart: one long causal sequence per row
        collate = original(packed, block)

        def call(features):
            batch = collate(features)
            restarts = batch["position_ids"] == 0
            batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"]).clone()
            batch["labels"][restarts] = -100
            return batch
        return call

    gpu_check.collator_for = leaky_collator
    try:
        leaky = gpu_check.packed_vs_episodes(model, shapes, torch.device("cpu"), [gpu_check.SDPA], "skipped: test")
    finally:
        gpu_check.collator_for = original
    assert leaky["sdpa"]["status"] == "failed" and leaky["status"] == "failed"


def test_peak_table_and_flops():
    gpu_check = _load_module()
    assert gpu_check.peak_bf16_tflops("NVIDIA H100 80GB HBM3")[0] == 989.0
    assert gpu_check.peak_bf16_tflops("NVIDIA H100 PCIe")[0] == 756.0
    assert gpu_check.peak_bf16_tflops("NVIDIA H200")[0] == 989.0
    assert gpu_check.peak_bf16_tflops("NVIDIA A100-SXM4-80GB")[0] == 312.0
    assert gpu_check.peak_bf16_tflops("NVIDIA L40S")[0] == 362.0
    assert gpu_check.peak_bf16_tflops("NVIDIA L4")[0] == 121.0 and gpu_check.peak_bf16_tflops("NVIDIA L40")[0] == 181.0
    peak, why = gpu_check.peak_bf16_tflops("Some Future GPU")
    assert peak is None and "unknown" in why
    # 6N per token plus 12*L*d*T per token (T^2 per sequence); recompute adds one forward
    assert gpu_check.step_model_flops(100, 2, 8, tokens=10, segments_sq=50) == 6 * 100 * 10 + 12 * 2 * 8 * 50
    assert gpu_check.step_model_flops(100, 2, 8, 10, 50, recompute=True) == 8 * 100 * 10 + 16 * 2 * 8 * 50


@pytest.mark.slow
def test_budget_skips_sections_and_still_writes_a_report(tmp_path):
    """A budget that runs out before the first section: every section is reported as skipped, the exit is clean."""
    out = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--budget_s", "0.01", "--out", str(out)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sections = json.loads(out.read_text(encoding="utf-8"))["sections"]
    assert set(sections) == set(gpu_check_names())
    assert all(s["status"] == "skipped" for s in sections.values())
    assert "time budget" in sections["setup"]["reason"]


def test_full_shapes_come_from_the_750M_configs():
    gpu_check = _load_module()
    shapes = gpu_check.full_shapes(steps=30, warmup_steps=5)
    assert (shapes.model["hidden_size"], shapes.model["num_attention_heads"], shapes.model["num_hidden_layers"]) == \
        (1280, 20, 32)
    assert (shapes.unpacked_batch, shapes.unpacked_len, shapes.packed_batch, shapes.packed_block) == (16, 512, 16, 1024)
    assert shapes.model["block_size"] == 1024 and shapes.vocab_size == 50304 and shapes.gen_batches == (1, 32)
