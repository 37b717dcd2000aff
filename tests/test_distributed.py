"""Launch guard, gradient sync across ranks with different data, bf16 on CPU, FSDP (issue 18 items 2 and 3).

The multi-process tests start 2 CPU processes on gloo (tests/distributed_worker.py, tests/fsdp2_worker.py); they are
slow (~30 s each on a free 2-core machine).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mypt_hf.errors import MyPTInputError

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))


def _free_port() -> int:
    with socket.socket() as probe:  # a fixed port collides with other runs on a shared machine
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))


def _launch(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """``accelerate launch`` (the module, so the venv's own) on this machine's CPU."""
    return subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--main_process_port",
                           str(_free_port()), *args], env=_env(), capture_output=True, text=True, timeout=timeout,
                          cwd=str(ROOT))


def _launcher_env(monkeypatch, **values: str) -> None:
    for key in ("WORLD_SIZE", "LOCAL_RANK", "RANK", "ACCELERATE_USE_FSDP", "ACCELERATE_MIXED_PRECISION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)


# ---- the guard -----------------------------------------------------------------------------------------------


def test_more_processes_launched_than_the_state_has_is_refused(tmp_path, monkeypatch):
    """WORLD_SIZE=2 from a launcher while the trainer's state has one process: refused, naming the CPU launch line."""
    from mypt_hf.training import MyPTSFTConfig
    from mypt_hf.training.distributed import check_launch

    _launcher_env(monkeypatch)
    args = MyPTSFTConfig(output_dir=str(tmp_path / "out"))  # a one-process state (no launcher env yet)
    assert args.world_size == 1
    check_launch(args)  # a plain run passes
    _launcher_env(monkeypatch, WORLD_SIZE="2", LOCAL_RANK="0", RANK="0")
    with pytest.raises(MyPTInputError) as error:
        check_launch(args)
    message = str(error.value)
    assert "started 2 processes" in message and "has 1" in message and "WORLD_SIZE" in message
    assert "recipes/accelerate/cpu_ddp.yaml" in message and "torchrun --nproc_per_node 2" in message


def test_unsynchronised_launch_exits_2_before_any_data(tmp_path, monkeypatch, capsys):
    """`mypt-hf train` and `run-phases` refuse it from the arguments alone (exit 2): no dataset read, no output dir.
    Simulated: accelerate's backend choice is made to see no distributed setup (as a bare PartialState() on a CPU
    machine does), while the launcher's variables say 2 processes. A real CPU launch gives a gloo group now."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    from mypt_hf.cli import main as cli

    _launcher_env(monkeypatch, WORLD_SIZE="2", LOCAL_RANK="1", RANK="1")
    monkeypatch.setattr(PartialState, "_prepare_backend", lambda self, *a, **k: (None, DistributedType.NO))
    out = tmp_path / "out"
    code = cli(["train", "--dataset_dir", str(tmp_path / "no-such-dataset"), "--output_dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "started 2 processes" in err and "LOCAL_RANK=1" in err and "cpu_ddp.yaml" in err, err
    assert "no-such-dataset" not in err and not out.exists()  # refused before the dataset was looked at
    code = cli(["run-phases", "--phases", "alpha", "--output_root", str(tmp_path / "chain")])
    err = capsys.readouterr().err
    assert code == 2 and "started 2 processes" in err and not (tmp_path / "chain").exists(), err


def test_fsdp_config_where_accelerate_runs_ddp_is_refused(tmp_path, monkeypatch):
    from mypt_hf.training import MyPTSFTConfig
    from mypt_hf.training.distributed import check_launch

    _launcher_env(monkeypatch)
    args = MyPTSFTConfig(output_dir=str(tmp_path / "out"))
    _launcher_env(monkeypatch, ACCELERATE_USE_FSDP="true")
    with pytest.raises(MyPTInputError, match=r"FSDP config .* run as NO.*silently be DDP.*cpu_ddp.yaml"):
        check_launch(args)


def test_launcher_precision_never_overrides_the_config(tmp_path, monkeypatch, caplog):
    """ACCELERATE_MIXED_PRECISION=bf16 (the GPU yamls) on a config that trains in fp32: fp32, with a warning; the
    Trainer's Accelerator and the model card say the precision that ran."""
    from transformers import AutoModelForCausalLM  # noqa: F401  (registers nothing; keeps import order as in use)

    import distributed_worker as worker
    from mypt_hf.tokenization_mypt import load_tokenizer
    from mypt_hf.training import MyPTSFTConfig, MyPTSFTTrainer
    from mypt_hf.training.model_card import write_model_card
    from mypt_hf.training.modeling import ModelArguments, build_fresh_model

    _launcher_env(monkeypatch, ACCELERATE_MIXED_PRECISION="bf16")
    with caplog.at_level(logging.WARNING, logger="mypt_hf.training.distributed"):
        args = MyPTSFTConfig(output_dir=str(tmp_path / "out"), bf16=False, max_steps=1, report_to="none")
    assert args.mixed_precision == "no"
    assert "mixed_precision=bf16" in caplog.text and "training with mixed_precision=no" in caplog.text
    tokenizer = load_tokenizer()
    model, _ = build_fresh_model(ModelArguments(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                block_size=128), tokenizer=tokenizer, seed=0)
    trainer = MyPTSFTTrainer(model=model, args=args, train_dataset=worker.rows_for(tokenizer, worker.EPISODES),
                             processing_class=tokenizer)
    assert trainer.accelerator.mixed_precision == "no" and not trainer.accelerator.native_amp
    card = write_model_card(tmp_path / "card", model_name="m", args=args, model_config=model.config).read_text()
    assert "| mixed_precision | no |" in card and "| bf16 | False |" in card
    _launcher_env(monkeypatch, ACCELERATE_MIXED_PRECISION="no")
    assert MyPTSFTConfig(output_dir=str(tmp_path / "out"), bf16=True).mixed_precision == "bf16"


@pytest.mark.slow
def test_shipped_fsdp_yaml_on_cpu_is_refused_on_every_rank(tmp_path):
    """recipes/accelerate/fsdp.yaml with 2 CPU processes: accelerate would run them as MULTI_CPU DDP (it makes FSDP
    out of multi-GPU-type states only), so both ranks refuse with exit 2 before any data; nothing is written."""
    out = tmp_path / "alpha"
    result = _launch("--config_file", str(ROOT / "recipes" / "accelerate" / "fsdp.yaml"), "--num_processes", "2",
                     str(ROOT / "recipes" / "phase3a1_alpha.py"), "--output_dir", str(out))
    log = result.stdout[-3000:] + result.stderr[-4000:]
    assert result.returncode != 0, log
    assert result.stderr.count("run as MULTI_CPU, for which accelerate does not set up FSDP") == 2, log
    assert set(re.findall(r"exitcode\s+:\s*(-?\d+) \(pid", result.stderr)) <= {"2", "-15"}, log
    assert "exitcode  : 2" in result.stderr and not out.exists(), log


# ---- gradient sync ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_cpu_processes_with_different_data_synchronise(tmp_path):
    """accelerate launch with recipes/accelerate/cpu_ddp.yaml: rank 0 trains only on episode A, rank 1 only on
    episode B. The ranks end with the same weights, those of one process training on A and B together at twice the
    batch (synchronised gradients), and not those of one process on rank 0's data alone."""
    import distributed_worker as worker

    result = _launch("--config_file", str(ROOT / "recipes" / "accelerate" / "cpu_ddp.yaml"),
                     str(TESTS / "distributed_worker.py"), str(tmp_path))
    log = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, log
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for rank in ranks:
        assert (rank["world_size"], rank["type"], rank["steps"], rank["mixed_precision"]) == \
            (2, "DistributedType.MULTI_CPU", worker.STEPS, "no"), log
    state0, state1 = ranks[0]["state"], ranks[1]["state"]
    assert all(torch.equal(state0[name], state1[name]) for name in state0)
    _, alone = worker.train(tmp_path / "alone", [worker.EPISODES[0]] * worker.BATCH, worker.BATCH)
    _, together = worker.train(tmp_path / "together", [worker.EPISODES[0]] * worker.BATCH
                               + [worker.EPISODES[1]] * worker.BATCH, 2 * worker.BATCH)
    gap = max((state0[name] - alone[name]).abs().max().item() for name in state0)
    assert gap > 1e-3, gap  # rank 1's data moved rank 0's weights (measured: ~1e-2)
    for name in state0:  # measured: equal to ~3e-7 (float summation order)
        torch.testing.assert_close(state0[name], together[name], rtol=1e-4, atol=1e-5)


# ---- bf16 on CPU (item 3) ----------------------------------------------------------------------------------------

CUT_DOWN = ["--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2", "--max_steps", "3",
            "--eval_steps", "3", "--save_steps", "3", "--logging_steps", "1", "--eval_max_new_tokens", "4",
            "--per_device_train_batch_size", "4", "--disable_tqdm", "true", "--copy_train_rows", "16",
            "--copy_val_rows", "4", "--copy_probe_phrases", "3"]


@pytest.mark.slow
def test_bf16_true_recipe_runs_cpu_autocast_saves_fp32_and_reloads_exactly(tmp_path):
    """The tiny-base recipe with bf16: true on CPU: the decoder computes in bf16 while training (autocast), the
    loss is finite, the saved weights are fp32 (bf16 autocast keeps fp32 weights, as the README says), the card says
    bf16, and the reloaded model gives the in-memory model's logits exactly."""
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from mypt_hf.phases.recipes import PHASE_STEPS
    from mypt_hf.phases.run import PhaseRun

    out = tmp_path / "tiny_base"
    run = PhaseRun.from_argv("tiny_base", ["--output_dir", str(out), "--bf16", "true", *CUT_DOWN])
    assert run.args.bf16 is True and run.args.use_cpu and run.args.mixed_precision == "bf16"
    seen = []
    hook = run.model.model.layers[0].mlp.register_forward_hook(
        lambda module, inputs, output: seen.append(output.dtype) if torch.is_grad_enabled() else None)
    PHASE_STEPS["tiny_base"](run)
    assert run.save() in (0, 1)  # 3 steps do not pass the copy gate; the model is saved either way
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}  # the training forwards (with grad) ran under bf16 autocast
    assert run.trainer.accelerator.mixed_precision == "bf16"
    losses = [entry["loss"] for entry in run.trainer.state.log_history if "loss" in entry]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses), losses
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        dtypes = {weights.get_slice(name).get_dtype() for name in weights.keys()}
    assert dtypes == {"F32"}
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    card = (out / "README.md").read_text()
    assert "| bf16 | True |" in card and "| mixed_precision | bf16 |" in card and "| dtype | float32 |" in card
    reloaded = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    ids = torch.tensor([run.tokenizer.encode(" quarmel dotrin ->")])
    with torch.no_grad():
        # The model the gate scores computes as the reloaded one does (fp32, no autocast): exactly its logits ...
        gated = run.evaluation_model().eval()
        assert torch.equal(gated(ids).logits, reloaded(ids).logits)
        # ... not a bf16 variant of it (accelerate's autocast wrapper, left on the trainer's model, is removed)
        assert not torch.equal(gated(ids).logits, _bf16_logits(reloaded, ids))


def _bf16_logits(model, ids):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return model(ids).logits.float()


# ---- FSDP2 on gloo (item 2) ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fsdp2_fully_shard_on_gloo_saves_a_complete_model_gates_on_rank0_and_reloads(tmp_path):
    """torchrun + FSDP2 fully_shard (per MyPTDecoderLayer, as fsdp.yaml) on 2 CPU processes with different data:
    both ranks finish; rank 0 saves the full state dict (accelerate's FSDP2 options) as a complete model, gates it
    while rank 1 waits; both ranks then start the next phase from it with the same weights."""
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                             str(TESTS / "fsdp2_worker.py"), str(tmp_path)],
                            env=_env(), capture_output=True, text=True, timeout=240)
    log = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, log
    ranks = [json.loads((tmp_path / f"fsdp_rank{r}.json").read_text()) for r in (0, 1)]
    assert all(rank["world"] == 2 and rank["sharded"] == "DTensor" for rank in ranks), ranks
    assert ranks[0]["losses"] != ranks[1]["losses"]  # the ranks trained on different data
    gate = ranks[0]["gate"]
    assert gate["missing"] == [] and gate["unexpected"] == [] and gate["total"] == 3  # complete; the gate ran
    assert ranks[1]["gate"] is None  # rank 1 only waited
    assert ranks[0]["loaded_digest"] == ranks[1]["loaded_digest"] == gate["full_digest"] != ranks[0]["start"]
