"""prepare: masks at the right token positions, the val-file separation gate, determinism, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mypt_hf.cli import main as cli_main
from mypt_hf.data.packing import IGNORE_INDEX
from mypt_hf.data.prepare import PrepareConfig, ChatTemplateEncoder, load_prepared, prepare, prepare_dataset
from mypt_hf.data.schema import episodes_from_rows, make_episode
from mypt_hf.errors import GateFailure, MyPTInputError
from mypt_hf.tokens import ASSISTANT_CLOSE, ASSISTANT_OPEN, EOT, GPT2_TAG_IDS, SYSTEM_OPEN, USER_OPEN


@pytest.fixture(scope="module")
def gpt2(gpt2_tiktoken_path):
    from mypt_hf.tokenization_mypt import load_tokenizer

    return load_tokenizer(str(gpt2_tiktoken_path))


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _expected_labels(ids):
    """The original's rule, from the token ids: supervised = inside an assistant turn after <myPT_assistant>,
    through </myPT_assistant>, plus <myPT_eot>."""
    open_id, close_id, eot_id = GPT2_TAG_IDS[ASSISTANT_OPEN], GPT2_TAG_IDS[ASSISTANT_CLOSE], GPT2_TAG_IDS[EOT]
    labels, inside = [], False
    for t in ids:
        if t == open_id:
            labels.append(IGNORE_INDEX)
            inside = True
        elif t == close_id:
            labels.append(t)
            inside = False
        elif t == eot_id or inside:
            labels.append(t)
        else:
            labels.append(IGNORE_INDEX)
    return labels


def test_masks_on_hand_written_episodes(gpt2, tmp_path):
    rows = [
        {"messages": [{"role": "system", "content": "You are MyPT."}, {"role": "user", "content": "Say OK."},
                      {"role": "assistant", "content": "OK."}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " two words "},
                      {"role": "user", "content": "Again: <myPT_eot>"}, {"role": "assistant", "content": "Grüße 😀\nok"}]},
    ]
    ds, meta = prepare_dataset(_write_jsonl(tmp_path / "a.jsonl", rows), gpt2, config=PrepareConfig(val_split=0.0), verbose=False)
    train = ds["train"]
    first = train[0]
    ids = first["input_ids"]
    enc = lambda s: gpt2.encode(s, add_special_tokens=False)  # noqa: E731
    expected_ids = ([GPT2_TAG_IDS[SYSTEM_OPEN]] + enc("You are MyPT.") + [GPT2_TAG_IDS["</myPT_system>"],
                    GPT2_TAG_IDS[USER_OPEN]] + enc("Say OK.") + [GPT2_TAG_IDS["</myPT_user>"],
                    GPT2_TAG_IDS[ASSISTANT_OPEN]] + enc("OK.") + [GPT2_TAG_IDS[ASSISTANT_CLOSE], GPT2_TAG_IDS[EOT]])
    assert ids == expected_ids
    n_answer = len(enc("OK."))
    supervised = [i for i, x in enumerate(first["labels"]) if x != IGNORE_INDEX]
    assert supervised == list(range(len(ids) - n_answer - 2, len(ids)))  # answer + close tag + eot
    assert first["seq_lengths"] == [len(ids)]
    second = train[1]
    assert second["labels"] == _expected_labels(second["input_ids"])
    # both assistant turns supervised, only one eot, tag text in content stays text
    assert second["input_ids"].count(GPT2_TAG_IDS[EOT]) == 1
    assert sum(1 for x in second["labels"] if x == GPT2_TAG_IDS[ASSISTANT_CLOSE]) == 2
    assert meta.splits["train"]["supervised_tokens"] == sum(
        sum(1 for x in r if x != IGNORE_INDEX) for r in train["labels"])


def test_system_prompt_override_and_drop(gpt2):
    ep = episodes_from_rows([make_episode("Say OK.", "OK.", system="Custom.")])
    keep, _ = prepare_dataset(ep, gpt2, config=PrepareConfig(val_split=0.0), verbose=False)
    over, _ = prepare_dataset(ep, gpt2, config=PrepareConfig(val_split=0.0, system_prompt="You are MyPT."), verbose=False)
    drop, _ = prepare_dataset(ep, gpt2, config=PrepareConfig(val_split=0.0, no_system_prompt=True), verbose=False)
    text = lambda d: gpt2.decode(d["train"][0]["input_ids"])  # noqa: E731
    assert text(keep).startswith("<myPT_system>Custom.</myPT_system><myPT_user>")
    assert text(over).startswith("<myPT_system>You are MyPT.</myPT_system><myPT_user>")
    assert text(drop).startswith("<myPT_user>Say OK.</myPT_user>")
    # a realistic system prompt (over 24 characters, with ":" and "/") once broke datasets' fingerprint check
    prompt = "Be brief: answer in one line, or say 'I don't know' / 'unsure'."
    real, _ = prepare_dataset(ep, gpt2, config=PrepareConfig(val_split=0.0, system_prompt=prompt), verbose=False)
    assert text(real).startswith(f"<myPT_system>{prompt}</myPT_system><myPT_user>")


def test_fast_encoder_equals_apply_chat_template(gpt2, parity_dir):
    rows = [json.loads(line) for line in (parity_dir / "prepare" / "input.jsonl").read_text().splitlines() if line]
    expected = [json.loads(line) for line in (parity_dir / "prepare" / "expected.jsonl").read_text().splitlines()
                if line]
    ds = episodes_from_rows(rows)
    convs = [list(m) for m in ds["messages"]]
    convs += [[{"role": "user", "content": "tag <myPT_user> inside"}, {"role": "assistant", "content": "x\ue000myPT_y"}]]
    encoder = ChatTemplateEncoder(gpt2)
    fast_ids, fast_labels = encoder(convs)
    slow_ids, slow_labels = encoder._slow(convs)
    assert fast_ids == slow_ids and fast_labels == slow_labels
    # and prepare reproduces the original preparer token for token
    prepared, _ = prepare_dataset(ds, gpt2, config=PrepareConfig(val_split=0.0), verbose=False)
    for row, exp in zip(prepared["train"], expected):
        assert row["input_ids"] == exp["input_ids"]
        assert row["labels"] == [t if m else IGNORE_INDEX for t, m in zip(exp["input_ids"], exp["mask"])]


def _operator_episodes(n_train=300, n_val=60):
    from mypt_hf.data.operators import operators

    return operators(n_train=n_train, n_val=n_val)


def test_val_file_separation(tmp_path):
    from mypt_hf.data.schema import save_episodes_jsonl

    splits = _operator_episodes()
    train = save_episodes_jsonl(splits["train"], tmp_path / "train.jsonl") and tmp_path / "train.jsonl"
    val = save_episodes_jsonl(splits["validation"], tmp_path / "val.jsonl") and tmp_path / "val.jsonl"
    out = tmp_path / "ok"
    prepare([train], out, None, val_file=val, verbose=False)
    _, meta = load_prepared(out)
    assert meta.payload_overlap_count == 0 and meta.template_overlap_count == 0

    # payload overlap: a val episode reusing a train payload under a val template
    t0 = splits["train"][0]
    v0 = splits["validation"][0]
    leak_payload = dict(v0, messages=[dict(m) for m in v0["messages"]], _meta=dict(v0["_meta"]))
    leak_payload["messages"][1]["content"] = v0["_meta"]["template"].replace("{payload}", t0["_meta"]["payload"])
    leak_payload["_meta"]["payload"] = t0["_meta"]["payload"]
    # template overlap: a fresh payload under a train template
    leak_template = dict(v0, messages=[dict(m) for m in v0["messages"]], _meta=dict(v0["_meta"]))
    leak_template["messages"][1]["content"] = t0["_meta"]["template"].replace("{payload}", v0["_meta"]["payload"])
    for name, leak in (("payload", leak_payload), ("template", leak_template)):
        bad_val = tmp_path / f"val_{name}.jsonl"
        save_episodes_jsonl(list(splits["validation"]) + [leak], bad_val)
        target = tmp_path / f"out_{name}"
        with pytest.raises(GateFailure, match=f"{name}"):
            prepare([train], target, None, val_file=bad_val, verbose=False)
        assert not target.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".out_{name}")]
        assert cli_main(["prepare-chat-sft", "--input", str(train), "--val_file", str(bad_val),
                         "--output_dir", str(target), "-q"]) == 1


def test_derived_payload_without_meta():
    from mypt_hf.data.prepare import derive_payload, template_signature

    assert derive_payload('Copy this: "a b"') == "a b"
    assert derive_payload("Repeat: hello   world ") == "hello   world"
    assert derive_payload("Say OK.") is None
    assert template_signature('Copy  this: "a b"', "a b") == 'Copy this: "{PAYLOAD}"'


def test_same_arguments_same_fingerprints(tmp_path):
    splits = _operator_episodes(200, 20)
    paths = []
    for name in ("a", "b"):
        out = tmp_path / name
        prepare(splits["train"], out, None, config=PrepareConfig(val_split=0.1, enable_packing=True, pack_block_size=256, pack_by_field="_meta.operator", seed=7), verbose=False)
        paths.append(out)
    (a, meta_a), (b, meta_b) = load_prepared(paths[0]), load_prepared(paths[1])
    for split in ("train", "validation"):
        assert a[split]._fingerprint == b[split]._fingerprint
        files_a = sorted(p.name for p in (paths[0] / split).glob("*.arrow"))
        for f in files_a:
            assert (paths[0] / split / f).read_bytes() == (paths[1] / split / f).read_bytes()
    assert meta_a.content_fingerprints == meta_b.content_fingerprints
    other, _ = prepare_dataset(splits["train"], None, config=PrepareConfig(val_split=0.1, enable_packing=True, pack_block_size=256, pack_by_field="_meta.operator", seed=8), verbose=False)
    assert other["train"]._fingerprint != meta_a.content_fingerprints["train"]


def test_packed_prepare_keeps_episodes_whole_and_grouped(gpt2):
    splits = _operator_episodes(600, 60)
    ds, meta = prepare_dataset(splits["train"], gpt2, config=PrepareConfig(enable_packing=True, pack_block_size=256, pack_by_field="_meta.operator"), val_file=splits["validation"], verbose=False)
    unpacked, _ = prepare_dataset(splits["train"], gpt2, val_file=splits["validation"], verbose=False)
    episodes = {tuple(r["input_ids"]): r["labels"] for r in unpacked["train"]}
    seen = []
    pad = gpt2.pad_token_id
    for row in ds["train"]:
        assert len(row["input_ids"]) == 256 and sum(row["seq_lengths"]) == 256
        pos = 0
        ops = set()
        for k, n in enumerate(row["seq_lengths"]):
            ids = tuple(row["input_ids"][pos:pos + n])
            labels = row["labels"][pos:pos + n]
            if ids in episodes:
                assert episodes[ids] == labels
                seen.append(ids)
                ops.add(gpt2.decode(list(ids)))
            else:  # the trailing pad run
                assert k == len(row["seq_lengths"]) - 1 and set(ids) == {pad} and set(labels) == {IGNORE_INDEX}
            pos += n
    assert sorted(seen) == sorted(episodes)  # every episode exactly once
    p = meta.splits["train"]["packing"]
    assert p["episodes"] == 600 and set(p["groups"]) == {"COPY", "WRAP", "EXTRACT"}


def test_operator_fill_at_block_1024(gpt2):
    splits = _operator_episodes(30000, 10)
    _, meta = prepare_dataset(splits["train"], gpt2, config=PrepareConfig(val_split=0.0, enable_packing=True, pack_block_size=1024, pack_by_field="_meta.operator", num_proc=1), verbose=False)
    assert meta.splits["train"]["packing"]["fill"] >= 0.995


def test_overlong_error_and_drop(tmp_path):
    rows = [make_episode("Say OK.", "OK."), make_episode("long " * 80, "ok", episode_id="long_one")]
    ds = episodes_from_rows(rows)
    with pytest.raises(MyPTInputError, match="long_one"):
        prepare_dataset(ds, None, config=PrepareConfig(val_split=0.0, pack_block_size=64, enable_packing=True), verbose=False)
    out, meta = prepare_dataset(ds, None, config=PrepareConfig(val_split=0.0, pack_block_size=64, enable_packing=True, overlong="drop"), verbose=False)
    assert meta.splits["train"]["dropped_overlong"] == 1 and meta.splits["train"]["episodes"] == 1


@pytest.mark.parametrize("content,message", [
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n{bad json\n',
     "line 2"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}\n', "unknown role"),
    ('{"messages": [{"content": "a"}, {"role": "assistant", "content": "b"}]}\n', "missing role"),
    ('{"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "b"}]}\n', "empty content"),
    ('{"messages": [{"role": "user", "content": "a"}]}\n', "no assistant turn"),
    ("\n", "no rows"),
])
def test_cli_bad_input_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "in.jsonl"
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    assert cli_main(["prepare-chat-sft", "--input", str(path), "--output_dir", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert not out.exists()


def test_cli_unknown_pack_field_and_existing_output(tmp_path, capsys):
    path = _write_jsonl(tmp_path / "in.jsonl", [make_episode("Say OK.", "OK.")])
    out = tmp_path / "out"
    assert cli_main(["prepare-chat-sft", "--input", str(path), "--output_dir", str(out), "--enable_packing",
                     "--pack_by_field", "_meta.nope", "-q"]) == 2
    assert "unknown pack field" in capsys.readouterr().err and not out.exists()
    for bad, message in ((["--pack_by_field", "_meta.operator"], "needs --enable_packing"),
                         (["--num_proc", "0"], "num_proc must be a positive integer")):
        assert cli_main(["prepare-chat-sft", "--input", str(path), "--output_dir", str(out), "-q", *bad]) == 2
        assert message in capsys.readouterr().err and not out.exists()
    assert cli_main(["prepare-chat-sft", "--input", str(path), "--output_dir", str(out), "--val_split", "0",
                     "-q"]) == 0
    stamp = (out / "mypt_metadata.json").read_bytes()
    assert cli_main(["prepare-chat-sft", "--input", str(path), "--output_dir", str(out), "-q"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "mypt_metadata.json").read_bytes() == stamp
    assert cli_main(["prepare-chat-sft", "--input", str(path), "--output_dir", str(out), "--overwrite",
                     "--val_split", "0", "-q"]) == 0


# --------------------------------------------------------------------------------------------------
# PrepareConfig, PreparedMetadata, the CLI's options
# --------------------------------------------------------------------------------------------------

def _small_episodes():
    return episodes_from_rows([make_episode(f"Say {w}.", f"{w}.") for w in ("OK", "Yes", "No", "Hello", "Bye")])


def test_metadata_round_trips_and_records_the_config_whole(tmp_path):
    import dataclasses

    from mypt_hf.data.metadata import METADATA_FILE, PreparedMetadata

    config = PrepareConfig(val_split=0.2, enable_packing=True, pack_block_size=128, pack_shuffle=False,
                           system_prompt="Be brief.", seed=5)
    out = tmp_path / "prepared"
    prepare(_small_episodes(), out, None, config, verbose=False)
    _, loaded = load_prepared(out)
    assert loaded.config == dataclasses.asdict(config)
    assert PrepareConfig(**loaded.config) == config
    assert loaded.inputs == {"val_file": None, "tokenizer": None, "tokenizer_filters": []}
    assert loaded.train_rows == loaded.splits["train"]["rows"] == 1
    # save -> load gives the same object; to_dict is what the file holds
    again = tmp_path / "again"
    again.mkdir()
    loaded.save(again)
    assert PreparedMetadata.load(again) == loaded
    assert json.loads((again / METADATA_FILE).read_text()) == loaded.to_dict()
    # the same object prepare_dataset returns in memory
    _, in_memory = prepare_dataset(_small_episodes(), None, config, verbose=False)
    assert in_memory == loaded


def test_metadata_with_a_missing_or_ill_typed_field_is_refused(tmp_path):
    from mypt_hf.data.metadata import METADATA_FILE, PreparedMetadata

    out = tmp_path / "prepared"
    prepare(_small_episodes(), out, None, PrepareConfig(val_split=0.0), verbose=False)
    path = out / METADATA_FILE
    good = json.loads(path.read_text())
    for broken, field in (({k: v for k, v in good.items() if k != "splits"}, "splits"),
                          ({**good, "block_size": "128"}, "block_size"),
                          ({**good, "tokenizer": {k: v for k, v in good["tokenizer"].items() if k != "fingerprint"}},
                           "tokenizer.fingerprint")):
        path.write_text(json.dumps(broken))
        with pytest.raises(MyPTInputError) as error:
            load_prepared(out)
        assert error.value.field == field and error.value.path == str(path)
        assert str(path) in str(error.value) and f"field '{field}'" in str(error.value)
    with pytest.raises(MyPTInputError, match="not a prepared dataset"):
        PreparedMetadata.load(tmp_path)


def test_config_validates_the_options_it_holds():
    for kwargs, field in (({"overlong": "skip"}, "overlong"), ({"pack_block_size": 1}, "pack_block_size"),
                          ({"system_prompt": "  "}, "system_prompt")):
        with pytest.raises(MyPTInputError) as error:
            PrepareConfig(**kwargs)
        assert error.value.field == field
    with pytest.raises(MyPTInputError, match="exclude each other"):
        PrepareConfig(system_prompt="x", no_system_prompt=True)
    # val_split is checked where it is used: only without a val file
    config = PrepareConfig(val_split=1.5)
    with pytest.raises(MyPTInputError, match="--val_split must be in"):
        prepare_dataset(_small_episodes(), None, config, verbose=False)


def test_cli_options_are_prepare_config_fields_with_its_defaults():
    import dataclasses

    from mypt_hf.commands.prepare_chat_sft import build_parser

    parser = build_parser("mypt-hf prepare-chat-sft")
    args = parser.parse_args(["--input", "a.jsonl", "--output_dir", "out"])
    for f in dataclasses.fields(PrepareConfig):
        assert getattr(args, f.name) == f.default, f.name  # one default per option
    assert PrepareConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PrepareConfig)}) == PrepareConfig()
    # the flags as the original script spells them
    args = parser.parse_args(["--input", "a.jsonl", "b.jsonl", "--output_dir", "out", "--enable_packing",
                              "--pack_block_size", "256", "--no_pack_shuffle", "--no_system_prompt",
                              "--overlong", "drop", "--seed", "7", "--val_split", "0.2", "-q", "--overwrite"])
    assert (args.input, args.enable_packing, args.pack_block_size, args.pack_shuffle, args.no_system_prompt,
            args.overlong, args.seed, args.val_split, args.quiet, args.overwrite) == (
        ["a.jsonl", "b.jsonl"], True, 256, False, True, "drop", 7, 0.2, True, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--input", "a.jsonl", "--output_dir", "out", "--overlong", "skip"])


def test_two_processes_tokenize_like_one():
    """num_proc 2 really forks workers above 2 x batch_size rows (datasets appends "_00000_of_00002" to the map's
    fingerprint, which once made it longer than datasets' 64-character limit) and gives the same ids and labels."""
    from mypt_hf.data.prepare import tokenize_episodes
    from mypt_hf.tokenization_mypt import load_tokenizer

    tokenizer = load_tokenizer()
    rows = [make_episode(f"Say item {i}.", f"Item {i}.") for i in range(4100)]
    ds = episodes_from_rows(rows)
    one = tokenize_episodes(ds, tokenizer, num_proc=1, batch_size=1000)
    two = tokenize_episodes(ds, tokenizer, num_proc=2, batch_size=1000)
    assert one["input_ids"] == two["input_ids"] and one["labels"] == two["labels"]


def test_an_error_after_the_train_split_is_streamed_leaves_nothing(tmp_path):
    """The tokenized cache and the train split's arrow file are written inside the atomic output before the
    validation split is checked: an overlong validation episode still leaves no output and no hidden leftover,
    and the error names the file and line."""
    train = _write_jsonl(tmp_path / "train.jsonl",
                         [make_episode(f"Say item {i}.", f"Item {i}.", payload=f"item {i}") for i in range(50)])
    val = _write_jsonl(tmp_path / "val.jsonl", [make_episode("Echo: short", "short", payload="short"),
                                               make_episode("Echo: " + "long " * 80, "long " * 80, payload="long")])
    out = tmp_path / "out"
    with pytest.raises(MyPTInputError, match=r"validation: 1 episode\(s\) longer than the block size 64; first: "
                                             r".*val\.jsonl, line 2"):
        prepare([train], out, None, PrepareConfig(enable_packing=True, pack_block_size=64), val_file=val,
                verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl", "val.jsonl"]
