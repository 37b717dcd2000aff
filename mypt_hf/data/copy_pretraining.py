"""Copy-pretraining data for the tiny base: in-context copying before any chat format is taught.

The 750M recipes start from a pretrained base that can already copy text from its context (induction heads). A
freshly initialised tiny model cannot, and fine-tuning it on a few hundred chat words teaches it those words'
spellings, not copying: unseen words come back corrupted ("Marmalade" -> "Maladead"). This module makes the data
that gives the tiny model that one skill first, and nothing of the chat format or of the eval prompts:

- **phrase segments** (``1 - random_token_share`` of the segments): 1-5 made-up words (:func:`made_up_word`,
  a third of the phrases with some words in capitals), a separator (``" ->"``, ``":"``, ``"\\n"``, ...) and the same
  phrase again. The loss is on the copy only (separator excluded), so every supervised token is predictable by
  copying and by nothing else. Made-up words split into the same kind of token pieces as real unseen words.
- **random-token segments**: 3-12 random ordinary token ids repeated once (the classic induction task; its
  first repeated token is not predictable, so it is not supervised).

Two variants bring the copying closer to what a chat reply needs (both off by default; the tiny base turns them
on for the rows after ``variants_start`` of the training rows, so plain copying is learned first -- a curriculum
when the trainer reads the rows in order, ``train_sampling_strategy: sequential``):

- **bare copies** (``bare_share`` of the phrase segments): the copy without its leading space, so its first word
  splits into other tokens than in the source (" Pineapple" -> "Pineapple"), as a reply's first word does.
- **framed segments** (``framed_share`` of the phrase segments): 1-3 made-up lead words, a marker (":", " -", ",")
  or quotes around the phrase, a turn break, then the phrase alone: the copy leaves the lead words and quotes out
  ("Blorf zint: fasmo kel" -> "fasmo kel"), as an echo reply leaves out its instruction.

Segments are concatenated into rows of exactly ``block_size`` tokens (one attention segment per row, like
pretraining text; a segment cut by the row's end keeps its labels). The result has the prepared-dataset layout
(``input_ids``, ``labels``, ``seq_lengths``; ``load_prepared`` metadata), so the ordinary trainer trains on it.
Deterministic: same arguments and tokenizer, same rows.

Why phrases and not only random tokens: on the tiny default a random-token-only variant needed ~1,500 steps to
copy and its copying did not carry over to chat prompts (held-out echo after α: 0/12), while phrase copying is
learned in ~500 steps and does (3/12 after α, and α's "Echo: Testing" -> "Testing"). Why the variants: with plain
copies only, α's replies to unseen words went wrong at the first token ("Say Pineapple." -> "Tineapple."); with
them, held-out echo after α rose from 5/24 to 11/24 and after β from 16/24 to 23/24 (see the README).

:func:`add_copy_replay` mixes such rows into a later phase's prepared data (recipe key ``copy_replay_share``), so
fine-tuning on a small set does not unlearn the copying (α: held-out echo 11/24 without; 20/24 with half of
its rows replayed and 300 instead of 200 steps).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..errors import MyPTInputError
from .made_up import made_up_word
from .metadata import SCHEMA, PreparedMetadata, TokenizerRecord
from .packing import IGNORE_INDEX

SEPARATORS = (" ->", ":", " =", "\n", " |", ".", ",", " and", " then")
MAX_PHRASE_WORDS = 5
# Framed segments: "<lead words><marker> <phrase><turn break><phrase>" -- the copy leaves out the lead words.
FRAME_MARKERS = (":", " -", ",", "")
FRAME_QUOTES = (("", ""), ("", ""), ('"', '"'), ("'", "'"), ("`", "`"), ("|", "|"))
TURN_BREAKS = ("\n", "\n\n", " ->", " =>", " >", " |")


def ordinary_token_ids(tokenizer: Any) -> List[int]:
    """Ids of the tokenizer's ordinary (non-added, non-special) tokens: what random-token segments draw from."""
    added = set(tokenizer.get_added_vocab().values()) | set(tokenizer.all_special_ids)
    return [i for i in range(len(tokenizer)) if i not in added]


class _SegmentSource:
    """Copy segments ``(input_ids, labels)`` from one seeded RNG."""

    def __init__(self, tokenizer: Any, seed: int, random_token_share: float, framed_share: float = 0.0,
                 bare_share: float = 0.0) -> None:
        self.tokenizer = tokenizer
        self.rng = random.Random(seed)
        self.random_token_share = random_token_share
        self.framed_share = framed_share
        self.bare_share = bare_share
        self.ordinary = ordinary_token_ids(tokenizer)
        self.separators = [self.encode(s) for s in SEPARATORS]

    def encode(self, text: str) -> List[int]:
        """Token ids of ``text`` alone (no special tokens)."""
        return self.tokenizer.encode(text, add_special_tokens=False)

    def phrase(self) -> str:
        words = [made_up_word(self.rng) for _ in range(self.rng.randint(1, MAX_PHRASE_WORDS))]
        if self.rng.random() < 0.3:
            words = [w.upper() if self.rng.random() < 0.3 else w for w in words]
        return " " + " ".join(words)

    def segment(self, variants: bool = True) -> Tuple[List[int], List[int]]:
        """One segment; ``variants=False``: no framed segment and no bare copy (plain copying only)."""
        framed_share, bare_share = (self.framed_share, self.bare_share) if variants else (0.0, 0.0)
        if self.rng.random() < self.random_token_share:
            seq = [self.rng.choice(self.ordinary) for _ in range(self.rng.randint(3, 12))]
            return seq + seq, [IGNORE_INDEX] * (len(seq) + 1) + seq[1:]
        if framed_share and self.rng.random() < framed_share:
            return self.framed_segment()
        text = self.phrase()
        phrase = self.encode(text)
        separator = self.rng.choice(self.separators)
        copy = phrase
        if bare_share and self.rng.random() < bare_share:
            # The copy without its leading space: its first word splits into other tokens than the source's
            # (" Pineapple" vs "Pineapple"), as a chat reply's first word does.
            copy = self.encode(text[1:])
        ids = phrase + separator + copy
        return ids, [IGNORE_INDEX] * (len(phrase) + len(separator)) + copy

    def framed_segment(self) -> Tuple[List[int], List[int]]:
        """Lead words, a marker or quotes around the phrase, a turn break, then the bare phrase.

        After a line break the copy starts without a space, so its first word is tokenized differently from the
        source -- as a chat reply's first word is ("Parrot: Pineapple" -> "Pineapple").
        """
        lead = " ".join(made_up_word(self.rng) for _ in range(self.rng.randint(1, 3)))
        opening, closing = self.rng.choice(FRAME_QUOTES)
        marker = self.rng.choice(FRAME_MARKERS if opening else FRAME_MARKERS[:-1])
        words = self.phrase().strip()
        source = self.encode("\n" + lead[0].upper() + lead[1:] + marker + " " + opening + words + closing)
        turn_break = self.rng.choice(TURN_BREAKS)
        copy = self.encode(words if turn_break.endswith("\n") else " " + words)
        context = source + self.encode(turn_break)
        return context + copy, [IGNORE_INDEX] * len(context) + copy

    def rows(self, n_rows: int, block_size: int, variants_from_row: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """``n_rows`` rows of ``block_size`` tokens; rows before ``variants_from_row`` have plain copies only."""
        ids = np.empty((n_rows, block_size), dtype=np.int32)
        labels = np.empty((n_rows, block_size), dtype=np.int32)
        for row in range(n_rows):
            row_ids: List[int] = []
            row_labels: List[int] = []
            while len(row_ids) < block_size:
                seg_ids, seg_labels = self.segment(variants=row >= variants_from_row)
                row_ids += seg_ids
                row_labels += seg_labels
            ids[row] = row_ids[:block_size]
            labels[row] = row_labels[:block_size]
        return ids, labels


def _split_dataset(ids: np.ndarray, labels: np.ndarray):
    """Rows of one attention segment each (``seq_lengths`` = [block_size])."""
    from .prepare import build_token_dataset

    n_rows, block_size = ids.shape
    offsets = np.arange(n_rows + 1, dtype=np.int64) * block_size
    seq_lengths = (np.full(n_rows, block_size, dtype=np.int32), np.arange(n_rows + 1, dtype=np.int64))
    return build_token_dataset({"input_ids": (ids.reshape(-1), offsets), "labels": (labels.reshape(-1), offsets),
                                "seq_lengths": seq_lengths})


def _stats(labels: np.ndarray) -> Dict[str, Any]:
    supervised = int((labels != IGNORE_INDEX).sum())
    return {"episodes": int(labels.shape[0]), "rows": int(labels.shape[0]), "tokens": int(labels.size),
            "supervised_tokens": supervised, "mask_ratio": supervised / max(1, labels.size), "dropped_overlong": 0}


def copy_pretraining_dataset(tokenizer: Any, n_train_rows: int, n_val_rows: int = 0, block_size: int = 128,
                             seed: int = 42, random_token_share: float = 0.25, bare_share: float = 0.0,
                             framed_share: float = 0.0, variants_start: float = 0.0):
    """Copy-pretraining rows as a prepared dataset: ``(DatasetDict(train, validation), metadata)``.

    ``n_train_rows`` / ``n_val_rows`` rows of ``block_size`` tokens; the validation rows come from their own
    RNG stream (``seed + 1``), so they are new phrases. ``random_token_share``: share of random-token segments;
    ``bare_share`` / ``framed_share``: shares of the phrase segments that are bare copies / framed segments, in
    the training rows from ``variants_start`` (a fraction) on and in every validation row.
    """
    import datasets

    from ..tokenization_mypt import model_vocab_size, tokenizer_fingerprint

    if n_train_rows < 1:
        raise MyPTInputError(f"need at least one training row, got {n_train_rows}", field="copy_train_rows")
    if n_val_rows < 0:
        raise MyPTInputError(f"validation rows must be >= 0, got {n_val_rows}", field="copy_val_rows")
    if block_size < 32:
        raise MyPTInputError(f"block size must be at least 32 tokens (a phrase and its copy), got {block_size}",
                             field="pack_block_size")
    for value, name in ((random_token_share, "copy_random_token_share"), (bare_share, "copy_bare_share"),
                        (framed_share, "copy_framed_share"), (variants_start, "copy_variants_start")):
        if not 0.0 <= value <= 1.0:
            raise MyPTInputError(f"{name} must be in [0, 1], got {value}", field=name)
    splits = {}
    stats = {}
    for name, n_rows, split_seed in (("train", n_train_rows, seed), ("validation", n_val_rows, seed + 1)):
        variants_from_row = int(round(variants_start * n_rows)) if name == "train" else 0
        ids, labels = _SegmentSource(tokenizer, split_seed, random_token_share, framed_share, bare_share).rows(
            n_rows, block_size, variants_from_row)
        splits[name] = _split_dataset(ids, labels)
        stats[name] = _stats(labels)
    metadata = PreparedMetadata(
        schema=SCHEMA, prepare_mode="copy_pretraining", splits=stats, packing_enabled=False,
        block_size=int(block_size), pad_token_id=tokenizer.pad_token_id,
        tokenizer=TokenizerRecord(name=getattr(tokenizer, "name_or_path", None) or None, vocab_size=len(tokenizer),
                                  model_vocab_size=model_vocab_size(tokenizer),
                                  fingerprint=tokenizer_fingerprint(tokenizer)),
        content_fingerprints={name: ds._fingerprint for name, ds in splits.items()},
        copy_pretraining={"n_train_rows": n_train_rows, "n_val_rows": n_val_rows, "block_size": block_size,
                          "seed": seed, "random_token_share": random_token_share, "bare_share": bare_share,
                          "framed_share": framed_share, "variants_start": variants_start},
    )
    return datasets.DatasetDict(splits), metadata


def add_copy_replay(dataset: Any, metadata: PreparedMetadata, tokenizer: Any, share: float, *, seed: int = 42,
                    random_token_share: float = 0.25, bare_share: float = 0.0, framed_share: float = 0.0):
    """Mix copy-pretraining rows into a prepared dataset's training split: ``share`` of its rows afterwards.

    Replaying the tiny base's kind of data while fine-tuning keeps the in-context copying the base learned: α's
    144 packed rows are read ~11 times in its 200 steps, and without replay the model unlearns copying words it
    has not seen (the tiny base copies "Tell me back: nutmeg waffle" in its own format; after α it answers
    "Mutmeg."). The copy rows have the prepared set's block size and one attention segment each (as the tiny
    base's rows); the merged training split is shuffled with ``seed``; the validation split is unchanged.
    Returns ``(dataset, metadata)``: the training split's stats updated and ``metadata.copy_replay`` saying
    what was added. ``share == 0`` returns the inputs unchanged.
    """
    import datasets

    from .prepare import build_token_dataset

    if not 0.0 <= share < 1.0:
        raise MyPTInputError(f"copy replay share must be in [0, 1), got {share}", field="copy_replay_share")
    if not share:
        return dataset, metadata
    train = dataset["train"]
    columns = ("input_ids", "labels", "seq_lengths")
    if sorted(train.column_names) != sorted(columns):
        raise MyPTInputError(f"copy replay needs prepared rows with columns {list(columns)}, got "
                             f"{train.column_names}", field="copy_replay_share")
    n_rows = int(round(share / (1.0 - share) * len(train)))
    if n_rows < 1:
        raise MyPTInputError(f"copy replay share {share} of {len(train)} training rows is no row; raise the share "
                             "or set it to 0", field="copy_replay_share")
    block_size = int(metadata.block_size)
    ids, labels = _SegmentSource(tokenizer, seed, random_token_share, framed_share, bare_share).rows(n_rows, block_size)
    rows = {name: [np.asarray(values, dtype=np.int32) for values in train[name]] for name in columns}
    rows["input_ids"] += list(ids)
    rows["labels"] += list(labels)
    rows["seq_lengths"] += [np.array([block_size], dtype=np.int32)] * n_rows
    order = np.random.default_rng(seed).permutation(len(rows["input_ids"]))
    merged = {}
    for name in columns:
        ordered = [rows[name][i] for i in order]
        offsets = np.concatenate([[0], np.cumsum([len(values) for values in ordered])]).astype(np.int64)
        merged[name] = (np.concatenate(ordered), offsets)
    train = build_token_dataset(merged)

    replay = _stats(labels)
    stats = dict(metadata.splits["train"])
    tokens = int(stats.get("tokens", 0)) + replay["tokens"]
    supervised = int(stats.get("supervised_tokens", 0)) + replay["supervised_tokens"]
    stats.update(rows=len(train), tokens=tokens, supervised_tokens=supervised, mask_ratio=supervised / max(1, tokens))
    metadata = dataclasses.replace(
        metadata, splits={**metadata.splits, "train": stats},
        content_fingerprints={**metadata.content_fingerprints, "train": train._fingerprint},
        copy_replay={"rows": n_rows, "share": share, "block_size": block_size,
                     "supervised_tokens": replay["supervised_tokens"],
                     "arguments": {"seed": seed, "random_token_share": random_token_share,
                                   "bare_share": bare_share, "framed_share": framed_share}})
    return datasets.DatasetDict({**dataset, "train": train}), metadata


__all__ = ["SEPARATORS", "add_copy_replay", "copy_pretraining_dataset", "ordinary_token_ids"]
