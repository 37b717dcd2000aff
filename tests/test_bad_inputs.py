"""Bad input on the command line: the exit-status contract of mypt_hf.exit_codes, case by case.

Each case runs one ``mypt-hf`` command in-process (tests/bad_inputs.py) and asserts its exit status, a single
error line naming the location, and that nothing was written or changed. The cases of the data commands and of
the model commands live in test_bad_inputs_data.py / test_bad_inputs_models.py; this file holds the contract's
own cases (argument parsing, internal errors, --debug) and a real-process check of the exit statuses.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bad_inputs import Case, run_case
from mypt_hf import cli
from mypt_hf.exit_codes import EXIT_BAD_INPUT, EXIT_INTERNAL_ERROR, pop_debug_flag

CASES = [
    Case("unknown-flag", ["mix", "--inputs", "{episodes}", "--output", "{ws}/out.jsonl", "--bogus", "1"],
         says=("--bogus",)),
    Case("not-an-int", ["generate-format-lock", "--output", "{ws}/fl.jsonl", "--n", "many"], says=("many",)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)


def _crash(args):
    raise RuntimeError("something inside broke\nsecond line")


def test_internal_error_is_exit_3_with_one_line_and_a_log(monkeypatch, capsys, tmp_path):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    module = cli._load("check_tie_weights")
    monkeypatch.setattr(module, "run", _crash)
    code = cli.main(["check-tie-weights", "--model", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL_ERROR
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "internal error" in lines[0] and "RuntimeError: something inside broke" in lines[0]
    logs = list(tmp_path.glob("mypt-hf-crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    log = logs[0].read_text()
    assert "Traceback" in log and "_crash" in log and "second line" in log


def test_debug_flag_prints_the_traceback_anywhere_on_the_line(monkeypatch, capsys, tmp_path):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    module = cli._load("check_tie_weights")
    monkeypatch.setattr(module, "run", _crash)
    for argv in (["--debug", "check-tie-weights", "--model", str(tmp_path)],
                 ["check-tie-weights", "--model", str(tmp_path), "--debug"]):
        assert cli.main(argv) == EXIT_INTERNAL_ERROR
        err = capsys.readouterr().err
        assert "Traceback" in err and "_crash" in err


def test_input_error_traceback_only_with_debug(monkeypatch, capsys):
    monkeypatch.delenv("MYPT_HF_DEBUG", raising=False)
    assert pop_debug_flag(["a", "--debug", "b"]) == (["a", "b"], True)
    assert pop_debug_flag(["a"]) == (["a"], False)
    monkeypatch.setenv("MYPT_HF_DEBUG", "1")
    assert pop_debug_flag(["a"]) == (["a"], True)
    monkeypatch.setenv("MYPT_HF_DEBUG", "0")
    assert pop_debug_flag(["a"]) == (["a"], False)


def test_os_error_with_a_path_is_bad_input(monkeypatch, capsys, tmp_path):
    module = cli._load("check_tie_weights")

    def refuse(args):
        raise PermissionError(13, "Permission denied", "/somewhere/out.json")

    monkeypatch.setattr(module, "run", refuse)
    assert cli.main(["check-tie-weights", "--model", str(tmp_path)]) == EXIT_BAD_INPUT
    line = capsys.readouterr().err.strip()
    assert line == "mypt-hf check-tie-weights: error: /somewhere/out.json: Permission denied"


@pytest.mark.parametrize("argv, code", [
    (["mix", "--inputs", "missing.jsonl", "--output", "out.jsonl"], EXIT_BAD_INPUT),
    (["mix", "--nonsense"], EXIT_BAD_INPUT),
    (["--help"], 0),
])
def test_real_process_exit_status(argv, code, tmp_path):
    done = subprocess.run([sys.executable, "-m", "mypt_hf.cli", *argv], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())
