"""Experiment tracking (report_to): TensorBoard and trackio, offline, with the training curves and the phase gate in
one run per phase; a missing tracker package or a remote trackio setting is a clear error (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mypt_hf.errors import MyPTInputError

ROOT = Path(__file__).resolve().parents[1]
CUT_DOWN = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "max_steps": 3, "eval_steps": 3,
            "save_steps": 3, "logging_steps": 1, "eval_max_new_tokens": 4, "per_device_train_batch_size": 4,
            "disable_tqdm": "true", "copy_train_rows": 16, "copy_val_rows": 4, "copy_probe_phrases": 3}

# Runs `mypt-hf <argv>` with every internet socket and DNS lookup refused and recorded, then reads trackio's local
# store back through trackio's own storage API (in this process, where TRACKIO_DIR was set before trackio loaded).
OFFLINE_RUN = r"""
import json, socket, sys
attempts = []
_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
def _refuse(what):
    attempts.append(repr(what))
    raise OSError("network refused by test_tracking")
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(address)
    return _connect(self, address)
def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(address)
    return _connect_ex(self, address)
def getaddrinfo(host, *args, **kwargs):
    if host not in (None, "localhost", "127.0.0.1", "::1"):
        _refuse(host)
    return _getaddrinfo(host, *args, **kwargs)
socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo

from mypt_hf.cli import main
code = main(sys.argv[2:])
from trackio.sqlite_storage import SQLiteStorage
from trackio.utils import TRACKIO_DIR
runs = SQLiteStorage.get_runs("mypt-hf")
logs = {run: SQLiteStorage.get_logs("mypt-hf", run) for run in runs}
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "attempts": attempts, "trackio_dir": str(TRACKIO_DIR), "runs": runs, "logs": logs}, f,
              default=str)
"""


def offline_env(tmp_path: Path) -> dict:
    """The environment of a run that keeps everything in ``tmp_path``: HOME, HF_HOME, TRACKIO_DIR, caches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKIO_", "TENSORBOARD_"))}
    env.update(HOME=str(tmp_path / "home"), HF_HOME=str(tmp_path / "hf_home"), TRACKIO_DIR=str(tmp_path / "trackio"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), MPLCONFIGDIR=str(tmp_path / "mpl"), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return env


def scalars(run_dir: Path) -> dict:
    """{tag: [(step, value)]} and {tag: [(step, text)]} of a TensorBoard run directory (all its event files)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    values = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]}
    texts = {tag: [(e.step, e.tensor_proto.string_val[0].decode()) for e in events.Tensors(tag)]
             for tag in tags["tensors"]}
    return {**values, **texts}


def test_phase_chain_logs_curves_and_gate_to_tensorboard_and_trackio_offline(tmp_path):
    """`mypt-hf run-phases --set report_to=tensorboard,trackio`: the phase's run holds the loss, the supervised
    tokens/s and the gate figures (per bucket and the verdict) in both trackers, offline, all under tmp_path."""
    out, result_file = tmp_path / "out", tmp_path / "result.json"
    sets = [arg for key, value in CUT_DOWN.items() for arg in ("--set", f"{key}={value}")]
    argv = ["run-phases", "--phases", "tiny_base", "--output_root", str(out), *sets,
            "--set", "report_to=tensorboard,trackio"]
    done = subprocess.run([sys.executable, "-c", OFFLINE_RUN, str(result_file), *argv], env=offline_env(tmp_path),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0 and result_file.is_file(), log
    result = json.loads(result_file.read_text())
    assert result["code"] == 1, log  # 3 steps do not teach copying: the gate fails (and says so in the trackers)
    assert result["attempts"] == [], log  # nothing tried the network (no Space, no Hub)
    report = json.loads((out / "tiny_base" / "gate_report.json").read_text())

    # TensorBoard: one run directory per phase, named after it, under the phase's output directory
    (run_dir,) = (out / "tiny_base" / "runs").iterdir()
    assert run_dir.name.startswith("tiny_base-")
    tb = scalars(run_dir)
    assert [step for step, _ in tb["train/loss"]] == [1, 2, 3]
    assert len(tb["train/supervised_tokens_per_second"]) == 3
    assert all(value > 0 for _, value in tb["train/supervised_tokens_per_second"])
    assert tb["eval/gate/copy/pass_rate"] == [(3, pytest.approx(report["buckets"]["copy"]["rate"]))]
    assert tb["eval/gate/copy/passed"] == [(3, report["buckets"]["copy"]["passed"])]
    assert tb["eval/gate/checks/tie_weights"] == [(3, 1.0)]
    assert tb["eval/gate/passed"] == [(3, 0.0)]
    assert tb["eval/gate/verdict/text_summary"] == [(3, "FAIL")]

    # trackio: the local store in TRACKIO_DIR, one run holding both the curves and the gate
    assert result["trackio_dir"] == str(tmp_path / "trackio")
    assert (tmp_path / "trackio" / "mypt-hf.db").is_file()
    assert result["runs"] == [run_dir.name]  # the same run name as TensorBoard's
    logs = result["logs"][run_dir.name]
    losses = [entry["train/loss"] for entry in logs if "train/loss" in entry]
    assert losses == [pytest.approx(value, rel=1e-5) for _, value in tb["train/loss"]]
    assert sum("train/supervised_tokens_per_second" in entry for entry in logs) == 3
    (gate,) = [entry for entry in logs if "eval/gate/verdict" in entry]
    assert gate["eval/gate/verdict"] == "FAIL" and gate["eval/gate/passed"] == 0.0
    assert gate["eval/gate/copy/pass_rate"] == pytest.approx(report["buckets"]["copy"]["rate"])
    assert gate["train/global_step"] == 3
    # nothing went to the home directory or the default trackio store under HF_HOME
    assert not (tmp_path / "hf_home" / "trackio").exists()
    home = tmp_path / "home"
    assert not home.exists() or not any(home.rglob("*")), sorted(map(str, home.rglob("*")))


def test_train_reports_to_tensorboard_under_the_output_dir(tmp_path, monkeypatch, bad_input_fixtures):
    """`mypt-hf train --report_to tensorboard`: events in <output_dir>/runs/<output dir name>-<time>, or
    <output_dir>/runs/<run_name>, with the loss and the supervised tokens/s of every logged step."""
    from mypt_hf.cli import main as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text("logging_steps: 1\nsave_strategy: 'no'\neval_strategy: 'no'\n")
    common = ["train", "--dataset_dir", str(bad_input_fixtures.dataset), "--init_from_model",
              str(bad_input_fixtures.model), "--config_file", str(config), "--max_steps", "2"]
    assert cli([*common, "--output_dir", str(tmp_path / "m"), "--report_to", "tensorboard"]) == 0
    (run_dir,) = (tmp_path / "m" / "runs").iterdir()
    assert run_dir.name.startswith("m-")
    tb = scalars(run_dir)
    assert [step for step, _ in tb["train/loss"]] == [1, 2]
    assert [step for step, _ in tb["train/supervised_tokens_per_second"]] == [1, 2]
    assert cli([*common, "--output_dir", str(tmp_path / "n"), "--report_to", "tensorboard",
                "--run_name", "my-run"]) == 0
    assert [p.name for p in (tmp_path / "n" / "runs").iterdir()] == ["my-run"]
    # without report_to nothing is written
    assert cli([*common, "--output_dir", str(tmp_path / "o")]) == 0
    assert not (tmp_path / "o" / "runs").exists()


@pytest.mark.parametrize("tracker", ["tensorboard", "trackio"])
def test_missing_tracker_package_names_the_extra(tmp_path, monkeypatch, capsys, bad_input_fixtures, tracker):
    """A tracker that is not installed: exit 2 with `pip install 'mypt_hf[tracking]'`, before anything is written."""
    from mypt_hf.cli import main as cli

    monkeypatch.setitem(sys.modules, tracker, None)  # importlib.util.find_spec now answers None: "not installed"
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    out = tmp_path / "m"
    assert cli(["train", "--dataset_dir", str(bad_input_fixtures.dataset), "--output_dir", str(out),
                "--max_steps", "1", "--report_to", tracker]) == 2
    err = capsys.readouterr().err
    assert f"report_to={tracker}" in err and "pip install 'mypt_hf[tracking]'" in err and "Traceback" not in err
    assert not out.exists()
    assert cli(["run-phases", "--phases", "tiny_base", "--output_root", str(tmp_path / "chain"),
                "--set", f"report_to={tracker}"]) == 2
    assert "pip install 'mypt_hf[tracking]'" in capsys.readouterr().err
    assert not (tmp_path / "chain").exists()


def test_trackio_is_local_only(tmp_path, monkeypatch):
    """A Space, a bucket or a self-hosted server for trackio is refused; the post-training static Space is off."""
    from mypt_hf.training.config import MyPTSFTConfig

    for name in ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    args = MyPTSFTConfig(output_dir=str(tmp_path), report_to="trackio")
    assert args.report_to == ["trackio"] and args.trackio_static_space_id is False and args.project == "mypt-hf"
    for key in ("trackio_space_id", "trackio_bucket_id"):
        with pytest.raises(MyPTInputError, match="local store only") as error:
            MyPTSFTConfig(output_dir=str(tmp_path), report_to="trackio", **{key: "me/runs"})
        assert error.value.field == key
    monkeypatch.setenv("TRACKIO_SPACE_ID", "me/runs")
    with pytest.raises(MyPTInputError, match="TRACKIO_SPACE_ID"):
        MyPTSFTConfig(output_dir=str(tmp_path), report_to="tensorboard,trackio")
    assert MyPTSFTConfig(output_dir=str(tmp_path), report_to="tensorboard").report_to == ["tensorboard"]


def test_gate_logs_only_on_the_world_main_process(tmp_path, monkeypatch):
    """The gate figures go through transformers' callbacks, which write only on the world's process zero."""
    import types

    from transformers import TrainerControl, TrainerState
    from transformers.integrations import TensorBoardCallback

    from mypt_hf.training.config import MyPTSFTConfig
    from mypt_hf.training.tracking import gate_logs, held_out_logs, log_gate

    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    report = {"buckets": {"format_strict": {"rate": 0.5, "passed": 5, "total": 10, "verdict": "FAIL"}},
              "checks": {"tie_weights": {"passed": True}}, "red_lines": {"red": ["copy_collapse"]}, "passed": False,
              "gated_buckets": ["format_strict"]}
    logs = gate_logs(report)
    assert logs["eval_gate/format_strict/pass_rate"] == 0.5 and logs["eval_gate/verdict"] == "RED LINE"
    assert logs["eval_gate/red_lines"] == 1.0 and logs["eval_gate/checks/tie_weights"] == 1.0
    assert held_out_logs("operators", {"exact_match": 0.25, "passed": 1, "total": 4, "items": []}) == {
        "eval_held_out/operators/exact_match": 0.25, "eval_held_out/operators/passed": 1.0,
        "eval_held_out/operators/total": 4.0}
    for zero, name in ((False, "rank1"), (True, "rank0")):
        args = MyPTSFTConfig(output_dir=str(tmp_path / name), report_to="tensorboard", run_name="gate")
        callback = TensorBoardCallback()
        callback.logging_dir = str(tmp_path / name / "runs" / "gate")
        state = TrainerState(is_world_process_zero=zero, global_step=7)
        trainer = types.SimpleNamespace(args=args, state=state, control=TrainerControl(), model=None,
                                        callback_handler=types.SimpleNamespace(callbacks=[callback]))
        log_gate(trainer, report)
        assert callback.tb_writer is None  # closed again
    assert not (tmp_path / "rank1").exists()
    tb = scalars(tmp_path / "rank0" / "runs" / "gate")
    assert tb["eval/gate/format_strict/pass_rate"] == [(7, 0.5)]
    assert tb["eval/gate/verdict/text_summary"] == [(7, "RED LINE")]


@pytest.mark.slow
def test_two_processes_log_once_from_the_main_process(tmp_path):
    """Under torchrun (2 processes, gloo on CPU) only the world's process zero writes: one TensorBoard run
    directory whose event files all come from one process, one trackio run, each step's loss once."""
    import re
    import socket

    with socket.socket() as probe:  # a free port: a fixed one collides with other runs on a shared machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "ddp"
    sets = [arg for key, value in CUT_DOWN.items() for arg in (f"--{key}", str(value))]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(port),
                           str(ROOT / "recipes" / "tiny_base.py"), "--output_dir", str(out / "tiny_base"), *sets,
                           "--report_to", "tensorboard,trackio"], env=offline_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert (out / "tiny_base" / "gate_report.json").is_file(), log
    (run_dir,) = (out / "tiny_base" / "runs").iterdir()
    pids = {re.match(r"events\.out\.tfevents\.\d+\.[^.]+\.(\d+)\.", p.name).group(1) for p in run_dir.iterdir()}
    assert len(pids) == 1, sorted(p.name for p in run_dir.iterdir())
    tb = scalars(run_dir)
    assert [step for step, _ in tb["train/loss"]] == [1, 2, 3] and tb["eval/gate/verdict/text_summary"] == [(3, "FAIL")]
    import sqlite3

    with sqlite3.connect(tmp_path / "trackio" / "mypt-hf.db") as db:  # trackio's local store, read as it lies
        rows = db.execute("SELECT run_name, metrics FROM metrics").fetchall()
    assert {name for name, _ in rows} == {run_dir.name}
    assert sum("train/loss" in json.loads(metrics) for _, metrics in rows) == 3
