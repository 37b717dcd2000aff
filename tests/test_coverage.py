"""Coverage as the guide counts it: steps x (processes x per-device batch x accumulation) / training rows."""

from __future__ import annotations

from types import SimpleNamespace

from mypt_hf.training.coverage import Coverage, run_coverage


def test_coverage_counts_every_process_and_accumulation():
    args = SimpleNamespace(max_steps=600, per_device_train_batch_size=16, gradient_accumulation_steps=1, world_size=1)
    one = run_coverage(args, train_rows=3000)
    assert one.global_batch == 16 and one.passes == 3.2
    assert "coverage 3.20x" in one.describe() and "WARNING" not in one.describe()
    eight = run_coverage(SimpleNamespace(**{**vars(args), "world_size": 8, "gradient_accumulation_steps": 2}), 3000)
    assert eight.global_batch == 256 and eight.passes == 51.2  # the same steps on 8 GPUs read the data 16x as often
    assert "WARNING: above the guide's 5x maximum" in eight.describe()
    assert "below the guide's 2x minimum" in Coverage(100, 4, 1, 1, 1000).describe()


def test_train_prints_coverage_at_start(tmp_path, monkeypatch, capsys, bad_input_fixtures):
    from mypt_hf.cli import main as cli

    monkeypatch.chdir(tmp_path)
    assert cli(["train", "--dataset_dir", str(bad_input_fixtures.dataset), "--output_dir", str(tmp_path / "m"),
                "--max_steps", "2", "--init_from_model", str(bad_input_fixtures.model)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("coverage "))
    assert "2 steps x global batch" in line and "training rows" in line
