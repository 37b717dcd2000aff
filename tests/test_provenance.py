"""Tokenizer-consistent data: generators record the tokenizer their token-count filter used, mix carries it, and
prepare refuses episodes filtered with another tokenizer unless told (issue 17 item 7)."""

from __future__ import annotations

import json

import pytest

from mypt_hf.cli import main
from mypt_hf.data.schema import make_episode
from mypt_hf.io_utils import write_jsonl
from mypt_hf.tokenization_mypt import load_tokenizer, tokenizer_fingerprint

OTHER = "embedded:400"  # a different vocabulary from the default embedded one (512)


def _operators(tmp_path, tokenizer=None):
    out = tmp_path / ("ops_" + (tokenizer or "default").replace(":", "_"))
    args = ["generate-operators", "--output_dir", str(out), "--n_train", "24", "--n_val", "6"]
    assert main(args + (["--tokenizer", tokenizer] if tokenizer else [])) == 0
    return out


def test_generators_record_the_tokenizer_their_filter_measured_with(tmp_path):
    out = _operators(tmp_path, OTHER)
    meta = json.loads((out / "dataset_metadata.json").read_text())
    assert meta["tokenizer_filter"]["spec"] == OTHER
    assert meta["tokenizer_filter"]["fingerprint"] == tokenizer_fingerprint(load_tokenizer(OTHER))
    assert "--max_tokens" in meta["tokenizer_filter"]["what"]

    echo = tmp_path / "echo"
    assert main(["generate-echo", "--output_dir", str(echo), "--gibberish", "only", "--max_examples", "40",
                 "--gibberish_words_en", "30", "--gibberish_words_de", "10"]) == 0
    echo_meta = json.loads((echo / "mypt_echo_diverse.meta.json").read_text())
    assert echo_meta["tokenizer_filter"]["spec"] == "embedded"
    assert "--bpe_safe" in echo_meta["tokenizer_filter"]["what"]

    no_filter = tmp_path / "echo_unfiltered"
    assert main(["generate-echo", "--output_dir", str(no_filter), "--no_bpe_safe", "--max_examples", "20"]) == 0
    assert json.loads((no_filter / "mypt_echo_diverse.meta.json").read_text())["tokenizer_filter"] is None


def test_prepare_refuses_episodes_filtered_with_another_tokenizer(tmp_path, capsys):
    out = _operators(tmp_path, OTHER)
    train = out / "operator_train.jsonl"
    target = tmp_path / "prepared"
    capsys.readouterr()
    assert main(["prepare-chat-sft", "--input", str(train), "--output_dir", str(target), "-q"]) == 2
    message = capsys.readouterr().err
    assert str(train) in message and "field 'tokenizer'" in message
    assert OTHER in message and "prepared with tokenizer embedded" in message
    assert "--allow_tokenizer_mismatch" in message
    assert not target.exists()

    # the explicit override prepares it, records the mismatch and says so
    assert main(["prepare-chat-sft", "--input", str(train), "--output_dir", str(target),
                 "--allow_tokenizer_mismatch"]) == 0
    assert "warning:" in capsys.readouterr().out
    record = json.loads((target / "mypt_metadata.json").read_text())["inputs"]["tokenizer_filters"]
    assert record[0]["matches"] is False and record[0]["filters"][0]["spec"] == OTHER


def test_prepare_with_the_filtering_tokenizer_passes_and_records_the_match(tmp_path):
    out = _operators(tmp_path, OTHER)
    target = tmp_path / "prepared"
    assert main(["prepare-chat-sft", "--input", str(out / "operator_train.jsonl"), "--val_file",
                 str(out / "operator_val.jsonl"), "--tokenizer", OTHER, "--output_dir", str(target), "-q"]) == 0
    record = json.loads((target / "mypt_metadata.json").read_text())["inputs"]["tokenizer_filters"]
    assert [r["matches"] for r in record] == [True, True]


def test_mix_carries_its_inputs_filters_to_prepare(tmp_path, capsys):
    out = _operators(tmp_path, OTHER)
    lock = tmp_path / "lock"
    assert main(["generate-format-lock", "--output_dir", str(lock), "--mode", "minimal", "--math", "exclude"]) == 0
    mixed = tmp_path / "mixed.jsonl"
    assert main(["mix", "--inputs", str(out / "operator_train.jsonl"), str(lock / "mypt_format_lock_v1.jsonl"),
                 "--output", str(mixed)]) == 0
    filters = json.loads((tmp_path / "mixed.mix_meta.json").read_text())["tokenizer_filters"]
    assert [f["input"] for f in filters] == [str(out / "operator_train.jsonl")]  # format lock filters nothing
    capsys.readouterr()
    assert main(["prepare-chat-sft", "--input", str(mixed), "--output_dir", str(tmp_path / "p"), "-q"]) == 2
    assert str(mixed) in capsys.readouterr().err


def test_hand_written_episodes_are_prepared_with_a_note(tmp_path, capsys):
    episodes = tmp_path / "mine.jsonl"
    write_jsonl(episodes, [make_episode(f"Say {w}.", f"{w}.") for w in ("OK", "Yes", "No", "Blue")])
    assert main(["prepare-chat-sft", "--input", str(episodes), "--output_dir", str(tmp_path / "p"),
                 "--val_split", "0"]) == 0
    assert "not checked" in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b'{"tokenizer_filter": {"spec": 3}}'])
def test_damaged_generator_metadata_is_named(tmp_path, capsys, content):
    out = _operators(tmp_path)
    (out / "dataset_metadata.json").write_bytes(content)
    capsys.readouterr()
    assert main(["prepare-chat-sft", "--input", str(out / "operator_train.jsonl"), "--output_dir",
                 str(tmp_path / "p"), "-q"]) == 2
    assert str(out / "dataset_metadata.json") in capsys.readouterr().err
