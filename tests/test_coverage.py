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


def test_describe_warns_when_warmup_outlasts_the_run():
    assert "never reaches its peak" in Coverage(2, 2, 1, 1, 1000, warmup_steps=50).describe()
    assert "never reaches its peak" not in Coverage(600, 16, 1, 1, 3000, warmup_steps=50).describe()
    ratio = SimpleNamespace(max_steps=42, per_device_train_batch_size=16, gradient_accumulation_steps=1, world_size=1,
                            warmup_steps=0.1)
    assert run_coverage(ratio, 290).warmup_steps == 5  # below 1: a ratio of the steps, as the Trainer reads it


def test_a_fixed_warmup_not_below_the_coverage_steps_is_refused(tmp_path):
    """The 750M operator phase: coverage 2.3 over ~290 packed 1024-token blocks at batch 16 gives 42 steps (about
    6 on 8 GPUs); the original's fixed warmup of 120 would keep the learning rate rising for the whole run."""
    import pytest

    from mypt_hf.errors import MyPTInputError
    from mypt_hf.phases.settings import parse_phase_args
    from mypt_hf.training.config import resolve_max_steps

    def operator_args(*extra):
        argv = ["--config", "phase3a_operator_750M", "--output_dir", str(tmp_path), *extra]
        return parse_phase_args("phase3a_operator", argv).train

    fixed = operator_args("--warmup_steps", "120")
    with pytest.raises(MyPTInputError) as error:
        resolve_max_steps(fixed, None, num_train_rows=290)
    assert error.value.field == "warmup_steps" and "42 optimizer steps" in str(error.value)
    assert fixed.max_steps == -1  # refused before anything changed
    shipped = operator_args()
    assert resolve_max_steps(shipped, None, num_train_rows=290) == 42
    assert 1 <= shipped.get_warmup_steps(42) == 5 < 42
    assert shipped.get_warmup_steps(shipped.steps_for_coverage(290, world_size=8)) == 1  # 8 GPUs: 6 steps, 1 warmup
    given = operator_args("--warmup_steps", "120", "--max_steps", "2")  # steps by hand: the user's choice
    assert resolve_max_steps(given, None, num_train_rows=290) == 2


def test_every_shipped_config_warms_up_for_less_than_its_run(tmp_path):
    """Each packaged config (tiny and 750M) with a fixed step count warms up for fewer steps than it runs; one
    whose steps come from coverage gives its warmup as a ratio or well below the steps (checked at 1 and 8
    processes where the rows are known)."""
    from mypt_hf.phases.registry import PHASES, packaged_config_dir
    from mypt_hf.phases.settings import parse_phase_args
    from mypt_hf.training.coverage import resolved_warmup_steps

    for phase in PHASES:
        for suffix in ("", "_750M") if phase != "tiny_base" else ("",):
            path = packaged_config_dir() / f"{phase}{suffix}.yaml"
            t = parse_phase_args(phase, ["--config", str(path), "--output_dir", str(tmp_path / phase)]).train
            if t.max_steps > 0:
                assert resolved_warmup_steps(t, t.max_steps) < t.max_steps, path.name
            else:
                assert t.coverage is not None, path.name
    operator = parse_phase_args("phase3a_operator", ["--config", "phase3a_operator_750M"]).train
    for world in (1, 8):
        steps = operator.steps_for_coverage(290, world_size=world)
        assert resolved_warmup_steps(operator, steps) < steps
