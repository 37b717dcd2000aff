"""Bad input to the data commands (prepare-chat-sft, mix, generators, eval-episodes' reading) and the atomic writers:
one located error line, exit 2, nothing written, nothing changed (harness: tests/bad_inputs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bad_inputs import Case, run_case
from mypt_hf import io_utils
from mypt_hf.errors import MyPTInputError

GOOD = json.dumps({"messages": [{"role": "user", "content": "Say OK."}, {"role": "assistant", "content": "OK."}]})
U2028 = json.dumps({"messages": [{"role": "user", "content": "Say\u2028OK."}, {"role": "assistant", "content": "OK."}]},
                   ensure_ascii=False)
LONG = json.dumps({"messages": [{"role": "user", "content": "Say " + "word " * 300 + "."},
                                {"role": "assistant", "content": "OK."}]})
PREPARE = ["prepare-chat-sft", "--output_dir", "{ws}/prepared", "-q"]

CASES = [
    Case("prepare-not-utf8", [*PREPARE, "--input", "{ws}/in.jsonl"],
         files={"in.jsonl": (GOOD + "\n").encode() + b'{"messages": "caf\xe9"}\n'},
         says=("in.jsonl, line 2", "not UTF-8")),
    Case("mix-not-utf8", ["mix", "--inputs", "{episodes}", "{ws}/in.jsonl", "--output", "{ws}/out.jsonl"],
         files={"in.jsonl": b"\xff\xfe" + GOOD.encode() + b"\n"}, says=("in.jsonl, line 1", "not UTF-8")),
    Case("eval-episodes-not-utf8", ["eval-episodes", "--model", "{model}", "--episodes", "{ws}/in.jsonl"],
         files={"in.jsonl": b"\x80\x81\n"}, says=("in.jsonl, line 1",)),
    Case("prepare-u2028-keeps-line-numbers", [*PREPARE, "--input", "{ws}/in.jsonl"],
         files={"in.jsonl": (U2028 + "\n" + GOOD + "\n{broken\n").encode()}, says=("in.jsonl, line 3", "invalid JSON")),
    Case("prepare-directory-as-input", [*PREPARE, "--input", "{ws}/folder"], files={"folder/x.txt": "x"},
         says=("folder",)),
    Case("prepare-empty-file", [*PREPARE, "--input", "{ws}/in.jsonl"], files={"in.jsonl": ""},
         says=("in.jsonl", "no rows")),
    Case("prepare-binary-file", [*PREPARE, "--input", "{ws}/in.jsonl"], files={"in.jsonl": bytes(range(256)) * 4},
         says=("in.jsonl, line 1",)),
    Case("prepare-overlong-names-file-line", [*PREPARE, "--input", "{ws}/in.jsonl", "--pack_block_size", "64",
                                              "--val_split", "0"],
         files={"in.jsonl": ("\n".join([GOOD, GOOD, LONG, GOOD]) + "\n").encode()}, says=("in.jsonl, line 3", "block size 64")),
    Case("prepare-drop-drops-everything", [*PREPARE, "--input", "{ws}/in.jsonl", "--pack_block_size", "64",
                                           "--overlong", "drop", "--val_split", "0"],
         files={"in.jsonl": (LONG + "\n" + LONG + "\n").encode()}, says=("would drop all 2", "field 'overlong'")),
    Case("mix-weight-not-a-number", ["mix", "--inputs", "{episodes}:fast", "--output", "{ws}/out.jsonl"],
         says=("weight 'fast'", "not a number")),
    Case("mix-output-exists", ["mix", "--inputs", "{episodes}", "--output", "{ws}/out.jsonl"],
         files={"out.jsonl": "old\n"}, says=("out.jsonl", "--overwrite")),
    Case("format-lock-output-exists", ["generate-format-lock", "--output_dir", "{ws}/fl"],
         files={"fl/mypt_format_lock_v1.jsonl": "old\n"}, says=("mypt_format_lock_v1.jsonl", "--overwrite")),
    Case("echo-output-exists", ["generate-echo", "--output_dir", "{ws}/e", "--no_bpe_safe"],
         files={"e/mypt_echo_diverse.meta.json": b"{}"}, says=("mypt_echo_diverse.meta.json", "--overwrite")),
    Case("operators-output-exists", ["generate-operators", "--output_dir", "{ws}/op", "--n_train", "30",
                                     "--n_val", "6"],
         files={"op/dataset_metadata.json": b"{}"}, says=("dataset_metadata.json", "--overwrite")),
    Case("prepare-output-under-a-file", ["prepare-chat-sft", "--input", "{episodes}", "--output_dir",
                                         "{ws}/afile/prepared", "-q"],
         files={"afile": "x"}, says=("afile/prepared", "not a directory", "field 'output_dir'")),
    Case("mix-output-under-a-file", ["mix", "--inputs", "{episodes}", "--output", "{ws}/afile/out.jsonl"],
         files={"afile": "x"}, says=("not a directory",)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)


def test_long_line_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"a": "' + b"x" * 5_000_000 + b'"}\n')
    with pytest.raises(MyPTInputError, match=r"big.jsonl, line 1: line longer than 1,000,000 bytes"):
        io_utils.read_jsonl(path, max_line_bytes=1_000_000)


def test_prepare_refuses_a_line_beyond_any_block_before_parsing_it(tmp_path, capsys):
    """The issue's 5 MB line: refused while reading (--overlong error), so memory stays bounded (measured: peak RSS
    442 MB, as for a tiny input; it was 1.95 GB)."""
    from mypt_hf.cli import main

    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Say " + "word " * 1_000_000},
                                             {"role": "assistant", "content": "OK."}]}) + "\n")
    assert main(["prepare-chat-sft", "--input", str(path), "--output_dir", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "in.jsonl, line 1: line longer than" in err and "longer than any episode of 1024 tokens" in err
    assert not (tmp_path / "out").exists()


def test_overwrite_replaces_all_generator_files_together(tmp_path, capsys):
    from mypt_hf.cli import main

    out = tmp_path / "op"
    argv = ["generate-operators", "--output_dir", str(out), "--n_train", "30", "--n_val", "6"]
    assert main(argv) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(first) == ["dataset_metadata.json", "operator_train.jsonl", "operator_val.jsonl"]
    assert main(argv + ["--overwrite"]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # same seed: the same bytes, no stray files


def test_atomic_files_leave_nothing_when_a_writer_fails(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.json"
    a.write_text("old a")
    with pytest.raises(RuntimeError):
        with io_utils.atomic_files([a, b]) as temp:
            temp[a].write_text("new a")
            raise RuntimeError("the second writer failed")
    assert a.read_text() == "old a" and not b.exists() and sorted(os.listdir(tmp_path)) == ["a.jsonl"]


@pytest.mark.parametrize("exchange", [True, False])
def test_atomic_output_dir_overwrite_leaves_no_hidden_leftovers(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(io_utils, "_rename_exchange", lambda a, b: False)
    out = tmp_path / "out"
    for content in ("one", "two"):
        with io_utils.atomic_output_dir(out, overwrite=True) as tmp:
            (tmp / "f.txt").write_text(content)
    assert (out / "f.txt").read_text() == "two" and os.listdir(tmp_path) == ["out"]


def test_interrupted_two_rename_swap_is_recovered(tmp_path, monkeypatch):
    """Without RENAME_EXCHANGE, a kill between the two renames leaves the old output only at .out.old-*: the next
    write puts it back before checking the output (and a failed write leaves it in place)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "f.txt").write_text("old")
    os.replace(out, tmp_path / ".out.old-123456")  # the state after the first rename
    with pytest.raises(MyPTInputError, match="already exists"):
        with io_utils.atomic_output_dir(out, overwrite=False):
            pass
    assert (out / "f.txt").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["out"]


TOKENIZER_CASES = [
    Case(f"prepare-tokenizer-{name}", [*PREPARE, "--input", "{episodes}", "--tokenizer", spec],
         says=("field 'tokenizer'", expected))
    for name, spec, expected in [("embedded-too-small", "embedded:100", "at least 257"),
                                 ("embedded-too-large", "embedded:99999", "at most"),
                                 ("embedded-not-a-number", "embedded:big", "integer N"),
                                 ("hub-id-offline", "no-such-org/no-such-tokenizer", "valid specs")]
]


@pytest.mark.parametrize("case", TOKENIZER_CASES, ids=str)
def test_bad_tokenizer_spec(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)


def _garbage_metadata(copy: Path) -> None:
    (copy / "mypt_metadata.json").write_bytes(b"\x00\xffnot json")


from bad_inputs import copy_fixture  # noqa: E402

INSPECT = ["inspect-sft-dataset", "--dataset_dir"]
INSPECT_CASES = [
    Case("inspect-missing-dir", [*INSPECT, "{ws}/none"], says=("none",)),
    Case("inspect-not-prepared", [*INSPECT, "{ws}/folder"], files={"folder/x.txt": "x"}, says=("folder",)),
    Case("inspect-batch-size-0", [*INSPECT, "{dataset}", "--batch_size", "0"], says=("batch",)),
    Case("inspect-negative-samples", [*INSPECT, "{dataset}", "--show_samples", "-1"], says=("show_samples",)),
    Case("inspect-config-missing", [*INSPECT, "{dataset}", "--config", "{ws}/none.yaml"], says=("none.yaml",)),
    Case("inspect-metadata-garbage", [*INSPECT, "{ws}/ds"], files={"ds": copy_fixture("dataset", _garbage_metadata)},
         says=("mypt_metadata.json",)),
]


@pytest.mark.parametrize("case", INSPECT_CASES, ids=str)
def test_bad_inspect_input(case, bad_input_fixtures, tmp_path, capsys, monkeypatch):
    run_case(case, bad_input_fixtures, tmp_path / "ws", capsys, monkeypatch)
