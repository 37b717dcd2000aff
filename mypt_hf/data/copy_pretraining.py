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

Segments are concatenated into rows of exactly ``block_size`` tokens (one attention segment per row, like
pretraining text; a segment cut by the row's end keeps its labels). The result has the prepared-dataset layout
(``input_ids``, ``labels``, ``seq_lengths``; ``load_prepared`` metadata), so the ordinary trainer trains on it.
Deterministic: same arguments and tokenizer, same rows.

Why phrases and not only random tokens: on the tiny default a random-token-only variant needed ~1,500 steps to
copy and its copying did not carry over to chat prompts (held-out echo after α: 0/12), while phrase copying is
learned in ~500 steps and does (3/12 after α, and α's "Echo: Testing" -> "Testing").
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..errors import MyPTInputError
from .made_up import made_up_word
from .packing import IGNORE_INDEX

SEPARATORS = (" ->", ":", " =", "\n", " |", ".", ",", " and", " then")
MAX_PHRASE_WORDS = 5


def ordinary_token_ids(tokenizer: Any) -> List[int]:
    """Ids of the tokenizer's ordinary (non-added, non-special) tokens: what random-token segments draw from."""
    added = set(tokenizer.get_added_vocab().values()) | set(tokenizer.all_special_ids)
    return [i for i in range(len(tokenizer)) if i not in added]


class _SegmentSource:
    """Copy segments ``(input_ids, labels)`` from one seeded RNG."""

    def __init__(self, tokenizer: Any, seed: int, random_token_share: float) -> None:
        self.tokenizer = tokenizer
        self.rng = random.Random(seed)
        self.random_token_share = random_token_share
        self.ordinary = ordinary_token_ids(tokenizer)
        self.separators = [tokenizer.encode(s, add_special_tokens=False) for s in SEPARATORS]

    def phrase(self) -> str:
        words = [made_up_word(self.rng) for _ in range(self.rng.randint(1, MAX_PHRASE_WORDS))]
        if self.rng.random() < 0.3:
            words = [w.upper() if self.rng.random() < 0.3 else w for w in words]
        return " " + " ".join(words)

    def segment(self) -> Tuple[List[int], List[int]]:
        if self.rng.random() < self.random_token_share:
            seq = [self.rng.choice(self.ordinary) for _ in range(self.rng.randint(3, 12))]
            return seq + seq, [IGNORE_INDEX] * (len(seq) + 1) + seq[1:]
        phrase = self.tokenizer.encode(self.phrase(), add_special_tokens=False)
        separator = self.rng.choice(self.separators)
        ids = phrase + separator + phrase
        return ids, [IGNORE_INDEX] * (len(phrase) + len(separator)) + phrase

    def rows(self, n_rows: int, block_size: int) -> Tuple[np.ndarray, np.ndarray]:
        ids = np.empty((n_rows, block_size), dtype=np.int32)
        labels = np.empty((n_rows, block_size), dtype=np.int32)
        for row in range(n_rows):
            row_ids: List[int] = []
            row_labels: List[int] = []
            while len(row_ids) < block_size:
                seg_ids, seg_labels = self.segment()
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
                             seed: int = 42, random_token_share: float = 0.25):
    """Copy-pretraining rows as a prepared dataset: ``(DatasetDict(train, validation), metadata)``.

    ``n_train_rows`` / ``n_val_rows`` rows of ``block_size`` tokens; the validation rows come from their own
    RNG stream (``seed + 1``), so they are new phrases. ``random_token_share``: share of random-token segments.
    """
    import datasets

    from ..tokenization_mypt import model_vocab_size, tokenizer_fingerprint
    from .prepare import SCHEMA

    if n_train_rows < 1:
        raise MyPTInputError(f"need at least one training row, got {n_train_rows}", field="copy_train_rows")
    if n_val_rows < 0:
        raise MyPTInputError(f"validation rows must be >= 0, got {n_val_rows}", field="copy_val_rows")
    if block_size < 32:
        raise MyPTInputError(f"block size must be at least 32 tokens (a phrase and its copy), got {block_size}",
                             field="pack_block_size")
    if not 0.0 <= random_token_share <= 1.0:
        raise MyPTInputError(f"random_token_share must be in [0, 1], got {random_token_share}",
                             field="copy_random_token_share")
    splits = {}
    stats = {}
    for name, n_rows, split_seed in (("train", n_train_rows, seed), ("validation", n_val_rows, seed + 1)):
        ids, labels = _SegmentSource(tokenizer, split_seed, random_token_share).rows(n_rows, block_size)
        splits[name] = _split_dataset(ids, labels)
        stats[name] = _stats(labels)
    metadata = {
        "schema": SCHEMA,
        "prepare_mode": "copy_pretraining",
        "splits": stats,
        "packing_enabled": False,
        "block_size": int(block_size),
        "pad_token_id": tokenizer.pad_token_id,
        "tokenizer": {"name": getattr(tokenizer, "name_or_path", None) or None, "vocab_size": len(tokenizer),
                      "model_vocab_size": model_vocab_size(tokenizer),
                      "fingerprint": tokenizer_fingerprint(tokenizer)},
        "content_fingerprints": {name: ds._fingerprint for name, ds in splits.items()},
        "arguments": {"n_train_rows": n_train_rows, "n_val_rows": n_val_rows, "block_size": block_size,
                      "seed": seed, "random_token_share": random_token_share},
    }
    return datasets.DatasetDict(splits), metadata


__all__ = ["SEPARATORS", "copy_pretraining_dataset", "ordinary_token_ids"]
