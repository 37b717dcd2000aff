"""inspect: statistics, the step formula on a small known dataset, marked samples, the CLI."""

from __future__ import annotations

import pytest

from mypt_hf.cli import main as cli_main
from mypt_hf.data.inspect import SPAN_CLOSE, SPAN_OPEN, batch_size_from_config, inspect, recommended_steps
from mypt_hf.data.prepare import PrepareConfig, prepare
from mypt_hf.data.schema import episodes_from_rows, make_episode
from mypt_hf.errors import MyPTInputError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    episodes = episodes_from_rows([make_episode(f"Say {w}.", f"{w}.") for w in ("OK", "Yes", "No", "Hello")])
    plain, packed = root / "plain", root / "packed"
    prepare(episodes, plain, None, config=PrepareConfig(val_split=0.0), verbose=False)
    prepare(episodes, packed, None, config=PrepareConfig(val_split=0.0, enable_packing=True, pack_block_size=128), verbose=False)
    return plain, packed


def test_step_formula():
    # 1000 supervised tokens in 10 rows (100 per row), batch 4: k * 1000 / (4 * 100) = 2.5k steps, rounded up
    assert recommended_steps(1000, 10, 4) == {"2.0": 5, "3.0": 8, "3.5": 9}
    assert recommended_steps(0, 0, 4) == {"2.0": 0, "3.0": 0, "3.5": 0}


def test_inspect_known_dataset(prepared):
    plain, packed = prepared
    report = inspect(plain, batch_size=2, show_samples=1)
    train = report["splits"]["train"]
    assert train["rows"] == 4 and train["episodes"] == 4
    # supervised per episode: answer "<w>." + </myPT_assistant> + <myPT_eot>
    assert train["supervised_tokens"] > 0 and train["mask_ratio"] == train["supervised_tokens"] / train["tokens"]
    # 4 rows at batch 2 -> 2 steps per pass
    assert report["recommended_max_steps"] == {"2.0": 4, "3.0": 6, "3.5": 7}
    sample = report["samples"][0]["text"]
    assert SPAN_OPEN + "OK.</myPT_assistant><myPT_eot>" + SPAN_CLOSE in sample
    assert sample.startswith("<myPT_system>You are MyPT.</myPT_system><myPT_user>Say OK.</myPT_user><myPT_assistant>")

    prep = inspect(packed, batch_size=2)
    ptrain = prep["splits"]["train"]
    assert ptrain["rows"] == 1 and ptrain["episodes"] == 4 and ptrain["episodes_per_block"] == 4.0
    assert ptrain["supervised_tokens"] == train["supervised_tokens"]
    assert ptrain["fill"] == pytest.approx(train["tokens"] / 128)
    # one block holds every supervised token: k passes over 1 row at batch 2 -> ceil(k / 2)
    assert prep["recommended_max_steps"] == {"2.0": 1, "3.0": 2, "3.5": 2}


def test_batch_size_from_config(tmp_path):
    yaml_cfg = tmp_path / "c.yaml"
    yaml_cfg.write_text("per_device_train_batch_size: 8\ngradient_accumulation_steps: 2\n")
    assert batch_size_from_config(yaml_cfg) == 16
    json_cfg = tmp_path / "c.json"
    json_cfg.write_text('{"training": {"batch_size": 12}}')
    assert batch_size_from_config(json_cfg) == 12


def test_recommended_steps_use_the_global_batch(prepared, tmp_path, monkeypatch):
    """Processes x per-device batch x accumulation: on 2 processes with accumulation 2 a pass takes 4x fewer
    steps than on one process without accumulation (the guide's coverage counts the global batch)."""
    plain, _ = prepared
    one = inspect(plain, batch_size=1)
    assert one["batch"] == {"per_device": 1, "accumulation": 1, "processes": 1, "global": 1}
    four = inspect(plain, batch_size=1, gradient_accumulation_steps=2, num_processes=2)
    assert four["batch_size"] == 4
    assert four["recommended_max_steps"] == {k: -(-v // 4) for k, v in one["recommended_max_steps"].items()}
    monkeypatch.setenv("WORLD_SIZE", "2")  # under a launcher, the process count is the world size
    assert inspect(plain, batch_size=1)["batch"]["processes"] == 2
    monkeypatch.delenv("WORLD_SIZE")
    original = tmp_path / "original.json"  # the original train.py's key names
    original.write_text('{"batch_size": 3, "grad_accum_steps": 2}')
    assert inspect(plain, config=original, num_processes=2)["batch"] == {
        "per_device": 3, "accumulation": 2, "processes": 2, "global": 12}
    assert inspect(plain, config=original, batch_size=1)["batch"]["global"] == 2  # a flag beats the config
    with pytest.raises(MyPTInputError, match="num_processes"):
        inspect(plain, num_processes=0)


def test_cli(prepared, capsys, tmp_path):
    plain, _ = prepared
    assert cli_main(["inspect-sft-dataset", "--dataset_dir", str(plain), "--show_samples", "2", "--split", "train",
                     "--batch_size", "2"]) == 0
    out = capsys.readouterr().out
    assert "3.5x passes -> 7 (recommended)" in out and SPAN_OPEN in out
    assert cli_main(["inspect-sft-dataset", "--dataset_dir", str(tmp_path)]) == 2
