"""prepare writes the same bytes as before its streaming rewrite: golden hashes of whole prepared outputs.

The hashes were computed with the in-memory preparer (before issue 19 item 5; with --num_proc 1, as 2 processes
failed there on a too-long map fingerprint) on the episodes built here (seeded,
independent of the generators, so a generator change cannot move them). Each covers, per split, the saved arrow
files byte for byte, ``state.json`` (the fingerprint), ``dataset_info.json`` and the metadata's statistics,
separation report and content fingerprints; the configurations cover packed by operator / ungrouped / unpacked,
val file / val split, ``--overlong drop``, system-prompt modes, one and two processes, the embedded tokenizer
and GPT-2, JSONL and saved-dataset inputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mypt_hf.data.prepare import PrepareConfig, prepare
from mypt_hf.data.schema import episodes_from_rows, make_episode

WORDS = ("apple", "river", "stone", "blue", "seven", "paris", "cloud", "green", "tiger", "lamp", "Haus", "Baum",
         "schnell", "quiet", "north", "silver", "table", "orange", "window", "mountain")
OPERATORS = ("COPY", "WRAP", "EXTRACT")
TEMPLATES = {"train": ("Repeat exactly: \"{p}\"", "Copy this text: \"{p}\"", "Wrap \"{p}\" in brackets.",
                       "Extract the quoted part: \"{p}\" please"),
             "val": ("Say back \"{p}\" verbatim.", "Echo: \"{p}\"")}


def _rows(n: int, split: str, seed: int):
    """Seeded operator-like episodes; payloads carry the split name so train and val never share one."""
    rng = np.random.default_rng(seed)
    templates = TEMPLATES[split]
    rows = []
    for i in range(n):
        k = 1 + int(rng.integers(0, 6)) + (int(rng.integers(0, 40)) if i % 97 == 0 else 0)  # a few long ones
        payload = f"{split}{i} " + " ".join(WORDS[int(j)] for j in rng.integers(0, len(WORDS), k))
        op = OPERATORS[int(rng.integers(0, 3))]
        answer = f"[{payload}]" if op == "WRAP" else payload
        system = None if i % 5 == 0 else "You are MyPT."
        rows.append(make_episode(templates[i % len(templates)].format(p=payload), answer, system=system,
                                 operator=op, payload=payload, source="golden", episode_id=f"{split}-{i}"))
    return rows


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _output_digest(out: Path) -> str:
    digest = hashlib.sha256()
    for split in ("train", "validation"):
        folder = out / split
        for file in sorted(folder.iterdir()):
            digest.update(f"{split}/{file.name}".encode())
            digest.update(file.read_bytes())
    meta = json.loads((out / "mypt_metadata.json").read_text())
    for key in ("splits", "separation", "content_fingerprints", "payload_overlap_count", "template_overlap_count"):
        digest.update(json.dumps(meta[key], sort_keys=True).encode())
    return digest.hexdigest()[:32]


#: name -> (tokenizer, input kind, PrepareConfig kwargs, with a val file, golden digest)
CASES = {
    "packed_by_operator_val_file_tiny": ("embedded", "jsonl", dict(
        enable_packing=True, pack_block_size=512, pack_by_field="_meta.operator", num_proc=2), True,
        "34f780b255ac216e212a4e48a70aa91d"),
    "unpacked_val_split_tiny": ("embedded", "dir", dict(val_split=0.1), False,
                                "005bfaa9a25afa2807a7a6147b8eb89c"),
    "packed_drop_val_split_tiny": ("embedded", "jsonl", dict(
        enable_packing=True, pack_block_size=96, overlong="drop", val_split=0.15, num_proc=2), False,
        "c08c39281b43f486269dba3510d4efaf"),
    "packed_by_operator_override_gpt2": ("gpt2", "dir", dict(
        enable_packing=True, pack_block_size=1024, pack_by_field="_meta.operator", val_split=0.2,
        system_prompt="Be exact.", num_proc=2), False, "ad83034df975353924da05db4a7a02ff"),
    "unpacked_drop_no_system_val_file_gpt2": ("gpt2", "jsonl", dict(
        overlong="drop", pack_block_size=40, no_system_prompt=True), True,
        "023dc6b1dc22723a837c15add0f73ae7"),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden_inputs")
    train, val = _rows(5000, "train", 7), _rows(600, "val", 8)
    files = {"jsonl": (_write_jsonl(root / "train.jsonl", train), _write_jsonl(root / "val.jsonl", val))}
    episodes_from_rows(train).save_to_disk(str(root / "train_dir"))
    episodes_from_rows(val).save_to_disk(str(root / "val_dir"))
    files["dir"] = (root / "train_dir", root / "val_dir")
    return files


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_prepared_bytes_match_the_golden_hash(name, inputs, tmp_path, gpt2_tiktoken_path):
    tokenizer, kind, kwargs, with_val_file, golden = CASES[name]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    train, val = inputs[kind]
    out = tmp_path / "out"
    prepare(train, out, None if tokenizer == "embedded" else str(gpt2_tiktoken_path), config=PrepareConfig(**kwargs),
            val_file=val if with_val_file else None, verbose=False)
    assert _output_digest(out) == golden


@pytest.mark.slow
@pytest.mark.parametrize("name", ["packed_by_operator_val_file_tiny", "unpacked_val_split_tiny"])
def test_small_scan_and_write_batches_give_the_golden_bytes(name, inputs, tmp_path, monkeypatch):
    """The streaming preparer reads episodes and writes rows in bounded batches; batch sizes far below the split
    sizes (passes over 5000 episodes in 37-row pieces, blocks gathered 3 at a time, unpacked rows 41 at a time)
    must not move a byte: group codes, payload sets and row layout are the same as in one piece."""
    from mypt_hf.data import episode_arrays, token_files

    monkeypatch.setattr(episode_arrays, "SCAN_BATCH_ROWS", 37)
    monkeypatch.setattr(token_files, "WRITE_BATCH_BLOCKS", 3)
    monkeypatch.setattr(token_files, "WRITE_BATCH_EPISODES", 41)
    tokenizer, kind, kwargs, with_val_file, golden = CASES[name]
    train, val = inputs[kind]
    out = tmp_path / "out"
    prepare(train, out, None if tokenizer == "embedded" else tokenizer, config=PrepareConfig(**kwargs),
            val_file=val if with_val_file else None, verbose=False)
    assert _output_digest(out) == golden
