"""The Phase 3a chain (mypt-hf run-phases / recipes/run_all.py) on cut-down settings: the tiny base and five
phases, each from the previous phase's output, summary table, exit codes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
PHASE_NAMES = ["tiny_base", "phase3a1_alpha", "phase3a1_beta", "phase3a1_gamma", "phase3a2", "phase3a_operator"]
# a 1-layer 32-wide model, 2 steps per phase, small data (mirrors tests/test_recipes.py's cut-down α)
CUT_DOWN = ["hidden_size=32", "num_hidden_layers=1", "num_attention_heads=2", "max_steps=2", "eval_steps=2",
            "save_steps=2", "logging_steps=1", "eval_max_new_tokens=4", "per_device_train_batch_size=4",
            "disable_tqdm=true", "mix_target_size=64", "echo_max_examples=64", "operator_n_train=60",
            "operator_n_val=12", "eval_batch_size=64", "copy_train_rows=16", "copy_val_rows=4",
            "copy_probe_phrases=3"]


def _sets(pairs):
    return [arg for pair in pairs for arg in ("--set", pair)]


def _card_init(card: str):
    """The init_from_model row of a model card's hyperparameter table."""
    for line in card.splitlines():
        if line.startswith("| init_from_model |"):
            return line.split("|")[2].strip()
    return None


@pytest.mark.slow
def test_chain_runs_every_phase_each_from_the_previous_output(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    import mypt_hf  # noqa: F401  (registers the architecture)
    from mypt_hf.cli import main as cli
    from mypt_hf.phases.registry import PHASES

    root = tmp_path / "chain"
    code = cli(["run-phases", "--output_root", str(root), "--continue_on_fail", *_sets(CUT_DOWN)])
    out = capsys.readouterr().out
    assert code == 1  # two steps per phase do not pass the gates; with --continue_on_fail every phase still ran

    # one start and one end line per phase, in chain order
    for i, phase in enumerate(PHASE_NAMES, start=1):
        assert f"[chain {i}/6] {phase}: start from" in out
        # the tiny base fails its copy gate; two steps leave every chat phase noise: a red line, not a plain FAIL
        verdict = "FAIL" if phase == "tiny_base" else "RED LINE"
        assert f"[chain {i}/6] {phase}: {verdict} in " in out
    assert out.index("[chain 1/6] tiny_base: FAIL") < out.index("[chain 2/6] phase3a1_alpha: start")

    previous = None
    for phase in PHASE_NAMES:
        out_dir = root / phase
        model = AutoModelForCausalLM.from_pretrained(str(out_dir))
        assert (model.config.num_hidden_layers, model.config.hidden_size) == (1, 32), phase
        report = json.loads((out_dir / "gate_report.json").read_text())
        assert report["phase"] == phase
        gated = {name for name, bucket in report["buckets"].items() if bucket["gated"]}
        assert gated == set(report["gated_buckets"]) and len(gated) == len(PHASES[phase].gated)
        card = (out_dir / "README.md").read_text()
        assert "## Evaluation gate" in card and "gates.png" in card and (out_dir / "gates.png").is_file()
        # the guide's mandatory gate: tie weights and train/eval parity beside the suite, in the report and the card
        assert {name: check["verdict"] for name, check in report["checks"].items()} == {
            "tie_weights": "PASS", "train_eval_parity": "PASS"}, phase
        assert "- tie_weights: **PASS**" in card and "- train_eval_parity: **PASS**" in card
        # where the phase started from, as the phase itself recorded it (model card and the trainer's arguments)
        recorded = torch.load(out_dir / "training_args.bin", weights_only=False).init_from_model
        if previous is None:
            assert recorded is None and _card_init(card) == "None"
        else:
            assert Path(recorded) == previous and Path(_card_init(card)) == previous
            assert f"base_model: {previous.name}" in card
            assert f"[{phase}] starting from {previous}" in out  # the recipe loaded it (not a fresh model)
        previous = out_dir.resolve()

    summary = json.loads((root / "chain_summary.json").read_text())
    assert summary["passed"] is False and summary["exit_code"] == 1
    assert [row["phase"] for row in summary["phases"]] == PHASE_NAMES
    for row in summary["phases"]:
        assert row["verdict"] == ("FAIL" if row["phase"] == "tiny_base" else "RED LINE") and row["wall_s"] > 0
        if row["phase"] != "tiny_base":
            assert "garbage_output" in row["red_lines"], row["phase"]
        assert len(row["buckets"]) == (1 if row["phase"] == "tiny_base" else 5)  # every bucket, gated ones marked
        gated = {name for name, bucket in row["buckets"].items() if bucket["gated"]}
        assert gated == set(row["gated_buckets"]) and len(gated) == len(PHASES[row["phase"]].gated)
        for bucket in row["buckets"].values():
            assert 0.0 <= bucket["rate"] <= 1.0 and bucket["threshold"] is not None
    assert summary["phases"][1]["init_from_model"] == str((root / "tiny_base").resolve())
    assert summary["phases"][2]["init_from_model"] == str((root / "phase3a1_alpha").resolve())
    assert summary["total_wall_s"] >= sum(row["wall_s"] for row in summary["phases"]) - 1e-6
    md = (root / "chain_summary.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith(("| phase3a", "| tiny_base"))]
    assert [line.split("|")[1].strip() for line in rows] == PHASE_NAMES
    assert all(("FAIL" in line or "RED LINE" in line) and "*" in line and "| PASS / PASS |" in line for line in rows)
    assert "RED LINE (restart from the previous phase" in md
    assert "| phase3a_operator | A, E |" in md and "| phase3a2 | A, B, C, D |" in md
    assert "**total**" in md and "format_strict (A)" in md and "operators (E)" in md and "| tiny_base | copy |" in md
    assert md.splitlines()[0] in out  # the table is printed too
    assert summary["upstream_phases"] == [] and "earlier run" not in md
    first_run_alpha = summary["phases"][1]

    # a later start: β from the α output already under this root; β's failed gate stops the chain (the default)
    code = cli(["run-phases", "--output_root", str(root), "--phases", "gamma,beta",
                *_sets(CUT_DOWN)])
    assert code == 1
    summary = json.loads((root / "chain_summary.json").read_text())
    assert [(r["phase"], r["verdict"]) for r in summary["phases"]] == [("phase3a1_beta", "RED LINE"),
                                                                        ("phase3a1_gamma", "SKIPPED")]
    assert summary["phases"][0]["init_from_model"] == str((root / "phase3a1_alpha").resolve())
    assert "stopping after phase3a1_beta" in capsys.readouterr().out
    # the chain it continues stays on record: the first run's rows of the phases before β (not those after it)
    assert [r["phase"] for r in summary["upstream_phases"]] == ["tiny_base", "phase3a1_alpha"]
    assert summary["upstream_phases"][1]["wall_s"] == first_run_alpha["wall_s"]
    md = (root / "chain_summary.md").read_text()
    assert "| tiny_base (earlier run) |" in md and "| phase3a1_alpha (earlier run) |" in md
    assert "| phase3a1_beta |" in md and "phase3a2" not in md
    assert "**FAIL** (0/2 phases)" in md  # the verdict counts this run's phases only


def test_chain_exits_0_when_every_phase_passes(tmp_path, capsys, monkeypatch):
    from mypt_hf.cli import main as cli
    from mypt_hf.evaluation.sft_eval_suite import sft_eval_suite as metric

    # gate α on anti_echo (C) only, at threshold 0: an almost untrained model's noise no longer passes C (C scores
    # only well-formed replies made of words), so no real gate passes after 2 steps; the base's copy gate with
    # threshold 0 passes too
    monkeypatch.setitem(metric.DEFAULT_THRESHOLDS, metric.ANTI_ECHO, 0.0)
    root = tmp_path / "pass"
    assert cli(["run-phases", "--output_root", str(root), "--phases", "base,alpha",
                *_sets(CUT_DOWN + ["gate_buckets=C", "copy_probe_threshold=0", "check_red_lines=false"])]) == 0
    summary = json.loads((root / "chain_summary.json").read_text())
    assert summary["passed"] is True and summary["exit_code"] == 0
    assert [(r["phase"], r["verdict"], r["gated_buckets"]) for r in summary["phases"]] == [
        ("tiny_base", "PASS", ["copy"]), ("phase3a1_alpha", "PASS", ["anti_echo"])]
    md = (root / "chain_summary.md").read_text()
    assert "**PASS** (2/2 phases, kept skills PASS)" in md
    # the kept-skills gate asked the final model what the chain gated (here C only, as α's gate did)
    assert summary["kept_skills"]["gated_by_chain"] == ["C"] and "| kept skills (phase3a1_alpha) | C |" in md
    assert "[chain 2/2] phase3a1_alpha: PASS in" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--phases", "alpha,delta"], "unknown phase 'delta'"),
    (["--config_suffix", "_nope"], "no config for tiny_base"),
    (["--set", "max_steps"], "not key=value"),
    (["--set", "output_dir=elsewhere"], "--output_root"),
    (["--set", "not_a_real_key=3"], "not_a_real_key"),
    (["--phases", "beta"], "phase3a1_alpha first"),  # nothing under the root to start β from
    (["--config_suffix", "_750M", "--phases", "alpha"], "converted MyPT base"),
    (["--phases", "beta", "--init_from_model", "no/such/model"], "init_from_model"),
    (["--phases", "alpha"], "tiny_base first"),
    (["--config_suffix", "_750M"], "exists only for the tiny default"),
    (["--phases", "base,alpha", "--init_from_model", "."], "trains a fresh model"),
])
def test_bad_input_exits_2_before_anything_runs(tmp_path, capsys, args, message):
    from mypt_hf.cli import main as cli

    root = tmp_path / "chain"
    assert cli(["run-phases", "--output_root", str(root), *args]) == 2
    assert message in capsys.readouterr().err
    assert not root.exists()  # checked before any phase starts: nothing written


def test_run_all_script_and_phase_names(tmp_path, monkeypatch, capsys):
    from mypt_hf.errors import MyPTInputError
    from mypt_hf.phases.registry import resolve_phases

    assert resolve_phases("operator, alpha,phase3a2,3a-1_gamma") == ["phase3a1_alpha", "phase3a1_gamma", "phase3a2",
                                                                     "phase3a_operator"]
    assert resolve_phases(None) == PHASE_NAMES
    assert resolve_phases(None, init_from_model="converted/base") == PHASE_NAMES[1:]  # a real base: no tiny base
    from mypt_hf.commands.run_phases import PHASE_NAMES as HELP_NAMES  # the light CLI module's copy of the list

    assert list(HELP_NAMES) == PHASE_NAMES
    with pytest.raises(MyPTInputError):
        resolve_phases(",")
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "recipes" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: nothing runs on import
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--phases", "zeta", "--output_root", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as exit_info:
        module.exit_with_status(module.main)
    assert exit_info.value.code == 2 and "unknown phase 'zeta'" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_chain_syncs_ranks_between_phases(tmp_path):
    """recipes/run_all.py under torchrun (2 processes, gloo on CPU): base then α, α from the base rank 0 saved;
    both ranks exit 1 (failed gates), no rank crashes, one summary with rank 0's verdicts."""
    import os
    import re
    import socket
    import subprocess

    with socket.socket() as probe:  # a free port: a fixed one collides with other runs on a shared machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_addr", "127.0.0.1", "--master_port", str(port),
                             str(ROOT / "recipes" / "run_all.py"), "--phases", "base,alpha", "--output_root", str(root),
                             "--continue_on_fail",
                             *_sets(CUT_DOWN)], env=env, capture_output=True, text=True, timeout=240)
    log = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 1, log  # the gates fail (2 steps) ...
    # ... alike on both ranks, no crash (torchrun may SIGTERM the last rank once the other has exited 1)
    codes = re.findall(r"exitcode\s+:\s*(-?\d+) \(pid", result.stderr)
    assert "1" in codes and set(codes) <= {"1", "-15"}, log
    assert result.stderr.count("Traceback") == 1, log  # torchrun's own ChildFailedError, none from a rank
    summary = json.loads((root / "chain_summary.json").read_text())
    assert [(r["phase"], r["verdict"]) for r in summary["phases"]] == [("tiny_base", "FAIL"),
                                                                        ("phase3a1_alpha", "RED LINE")]
    assert result.stdout.count("[chain 2/2] phase3a1_alpha: start from") == 1  # progress lines from rank 0 only
    args = torch.load(root / "phase3a1_alpha" / "training_args.bin", weights_only=False)
    assert Path(args.init_from_model) == (root / "tiny_base").resolve() and args.world_size == 2
