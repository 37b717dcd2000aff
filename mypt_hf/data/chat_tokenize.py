"""Episodes -> ``input_ids`` and ``labels`` through the tokenizer's chat template, as a batched ``Dataset.map``.

The template's ``{% generation %}`` block decides what is supervised (assistant content, ``</myPT_assistant>`` and
the final ``<myPT_eot>``), so the mask has one source of truth; :class:`ChatTemplateEncoder` gives
``apply_chat_template``'s exact result faster.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..io_utils import PathLike
from .packing import IGNORE_INDEX


class ChatTemplateEncoder:
    """``apply_chat_template(..., tokenize=True, return_assistant_tokens_mask=True)``, made fast and exact.

    ``apply_chat_template`` renders Jinja once per conversation (~50 µs), which alone caps preparation near
    20k episodes/s per core. The template's output only depends on the sequence of roles and on the
    contents, so this encoder renders the template itself once per role sequence with sentinel contents
    (a *skeleton*: literal pieces + content slots + the template's ``{% generation %}`` spans), then
    encodes all contents of a batch with one ``encode_batch_fast`` call and splices them in.

    It is only used where that is provably the same thing: every literal piece must tokenize to added
    (special) tokens only, so the text between them is encoded independently either way; contents that
    the template might transform (holding ``myPT_`` or U+E000, which the MyPT template escapes) go
    through ``apply_chat_template``; and the first rows of every role sequence are checked against
    ``apply_chat_template`` (any difference switches that role sequence to the slow path for good).
    """

    VERIFY_ROWS = 16

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.backend = tokenizer.backend_tokenizer
        self._skeletons: Dict[Tuple[str, ...], Any] = {}
        self._verified: Dict[Tuple[str, ...], int] = {}
        added = tokenizer.get_added_vocab()
        self._added_ids = set(added.values())

    def _build_skeleton(self, roles: Tuple[str, ...]):
        from transformers.utils.chat_template_utils import render_jinja_template

        sentinels = [f"\ue001{i}\ue002" for i in range(len(roles))]
        probe = [{"role": r, "content": c} for r, c in zip(roles, sentinels)]
        try:
            rendered, generation = render_jinja_template(
                [probe], chat_template=self.tokenizer.chat_template, return_assistant_tokens_mask=True,
                **self.tokenizer.special_tokens_map)
        except Exception:  # the slow path will raise the template's own, clearer error
            return None
        text, spans = rendered[0], generation[0]

        def in_generation(pos: int) -> bool:
            return any(a <= pos < b for a, b in spans)

        pieces, slots, cursor = [], [], 0
        for sentinel in sentinels:
            at = text.find(sentinel, cursor)
            if at < 0 or text.count(sentinel) != 1:
                return None
            pieces.append((cursor, at))
            end = at + len(sentinel)
            if in_generation(at) != in_generation(end - 1):
                return None
            slots.append(in_generation(at))
            cursor = end
        pieces.append((cursor, len(text)))
        literal_ids, literal_labels = [], []
        for a, b in pieces:
            enc = self.backend.encode(text[a:b], add_special_tokens=False)
            if any(t not in self._added_ids for t in enc.ids):
                return None
            literal_ids.append(list(enc.ids))
            literal_labels.append([t if in_generation(a + off[0]) else IGNORE_INDEX
                                   for t, off in zip(enc.ids, enc.offsets)])
        return literal_ids, literal_labels, slots

    def _skeleton(self, roles: Tuple[str, ...]):
        if roles not in self._skeletons:
            self._skeletons[roles] = self._build_skeleton(roles)
        return self._skeletons[roles]

    def _slow(self, conversations: List[List[Dict[str, str]]]) -> Tuple[List[List[int]], List[List[int]]]:
        enc = self.tokenizer.apply_chat_template(conversations, tokenize=True, return_dict=True,
                                                 return_assistant_tokens_mask=True)
        labels = [[t if m else IGNORE_INDEX for t, m in zip(ids, mask)]
                  for ids, mask in zip(enc["input_ids"], enc["assistant_masks"])]
        return [list(x) for x in enc["input_ids"]], labels

    def __call__(self, conversations: List[List[Dict[str, str]]]) -> Tuple[List[List[int]], List[List[int]]]:
        """Encode conversations: ``(input_ids, labels)`` per conversation, labels -100 where not supervised."""
        roles = [m["role"] for c in conversations for m in c]
        contents = [m["content"] for c in conversations for m in c]
        offsets = np.cumsum([0] + [len(c) for c in conversations]).tolist()
        return self.encode_flat(roles, contents, offsets)

    def encode_flat(self, roles: List[str], contents: List[str],
                    offsets: Sequence[int]) -> Tuple[List[List[int]], List[List[int]]]:
        """Like ``__call__`` for conversations given flat: conversation i is messages ``offsets[i]:offsets[i+1]``."""
        n = len(offsets) - 1

        def conversation(i: int) -> List[Dict[str, str]]:
            return [{"role": roles[j], "content": contents[j]} for j in range(offsets[i], offsets[i + 1])]

        out_ids: List[Any] = [None] * n
        out_labels: List[Any] = [None] * n
        # system prompts and many templates repeat: check and encode each distinct string once
        unique = list(dict.fromkeys(contents))
        # content holding a tag-like "myPT_" or the escape sentinel must go through the real template
        needs_template = {c for c in unique if "myPT_" in c or "\ue000" in c}
        slow, fast = [], []
        for i in range(n):
            a, b = offsets[i], offsets[i + 1]
            key = tuple(roles[a:b])
            skeleton = self._skeleton(key)
            if skeleton is None or (needs_template and not needs_template.isdisjoint(contents[a:b])):
                slow.append(i)
            else:
                fast.append((i, key, skeleton))
        unique_ids = [e.ids for e in self.backend.encode_batch_fast(unique, add_special_tokens=False)] if unique else []
        lookup = dict(zip(unique, unique_ids))
        check = []
        for i, key, (literal_ids, literal_labels, slots) in fast:
            first = offsets[i]
            ids = list(literal_ids[0])
            labels = list(literal_labels[0])
            for k, supervised in enumerate(slots):
                content_ids = lookup[contents[first + k]]
                ids.extend(content_ids)
                labels.extend(content_ids if supervised else [IGNORE_INDEX] * len(content_ids))
                ids.extend(literal_ids[k + 1])
                labels.extend(literal_labels[k + 1])
            out_ids[i], out_labels[i] = ids, labels
            if self._verified.get(key, 0) < self.VERIFY_ROWS:
                self._verified[key] = self._verified.get(key, 0) + 1
                check.append((i, key))
        if check:
            ref_ids, ref_labels = self._slow([conversation(i) for i, _ in check])
            for (i, key), ids, labels in zip(check, ref_ids, ref_labels):
                if ids != out_ids[i] or labels != out_labels[i]:
                    self._skeletons[key] = None  # never again for this role sequence
                    out_ids[i], out_labels[i] = ids, labels
        if slow:
            ids, labels = self._slow([conversation(i) for i in slow])
            for i, x, y in zip(slow, ids, labels):
                out_ids[i], out_labels[i] = x, y
        return out_ids, out_labels


# one encoder per process (map workers build their own); a single slot keeps no old tokenizer alive
_ENCODER: List[Optional[ChatTemplateEncoder]] = [None]


def _tokenize_batch(batch, tokenizer, system_mode: str, system_prompt: Optional[str]):
    """One arrow batch of episodes -> arrow ``input_ids``/``labels`` (no per-row Python dicts either way)."""
    import pyarrow as pa

    col = batch.column("messages").combine_chunks()
    raw_offsets = col.offsets.to_numpy()
    offsets = (raw_offsets - raw_offsets[0]).tolist()
    values = col.flatten()
    roles = values.field("role").to_pylist()
    contents = values.field("content").to_pylist()
    if system_mode != "keep":
        new_roles, new_contents, new_offsets = [], [], [0]
        for i in range(len(offsets) - 1):
            if system_mode == "override":
                new_roles.append("system")
                new_contents.append(system_prompt)
            for j in range(offsets[i], offsets[i + 1]):
                if roles[j] != "system":
                    new_roles.append(roles[j])
                    new_contents.append(contents[j])
            new_offsets.append(len(new_roles))
        roles, contents, offsets = new_roles, new_contents, new_offsets
    encoder = _ENCODER[0]
    if encoder is None or encoder.tokenizer is not tokenizer:
        encoder = _ENCODER[0] = ChatTemplateEncoder(tokenizer)
    input_ids, labels = encoder.encode_flat(roles, contents, offsets)
    lengths = np.fromiter((len(x) for x in input_ids), dtype=np.int64, count=len(input_ids))
    row_offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    total = int(lengths.sum())
    flat_ids = pa.array(np.fromiter(itertools.chain.from_iterable(input_ids), dtype=np.int32, count=total))
    flat_labels = pa.array(np.fromiter(itertools.chain.from_iterable(labels), dtype=np.int32, count=total))
    return pa.table({"input_ids": pa.ListArray.from_arrays(row_offsets, flat_ids),
                     "labels": pa.ListArray.from_arrays(row_offsets, flat_labels)})


#: rows per record batch of the tokenized cache file. Larger than datasets' 1000 because opening a memory-mapped
#: arrow file reads every batch's header, and each read maps the pages around it (64 KiB): with 1000-row batches,
#: opening a million-episode cache alone made ~115 MB of it resident.
CACHE_BATCH_ROWS = 20_000


def tokenize_episodes(ds, tokenizer, *, system_mode: str = "keep", system_prompt: Optional[str] = None,
                      num_proc: int = 1, batch_size: int = 2000, desc: str = "tokenize",
                      cache_file_name: Optional[PathLike] = None):
    """Batched ``Dataset.map`` through the chat template; returns a Dataset with ``input_ids``/``labels``.

    Rows must already be valid episodes (``load_episode_inputs`` checks them). With ``cache_file_name`` the
    workers write their rows there (one file per process, memory-mapped back; the caller removes them), else the
    result is kept in memory. No cache is looked up and the transform is not hashed (hashing a tokenizer is slow);
    determinism comes from the content itself.
    """
    import datasets

    num_proc = max(1, int(num_proc or 1))
    if len(ds) < 2 * batch_size:
        num_proc = 1
    # the rust tokenizer's own thread pool must not be live when map forks workers
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    features = datasets.Features({"input_ids": datasets.List(datasets.Value("int32")),
                                  "labels": datasets.List(datasets.Value("int32"))})
    # datasets accepts fingerprints of at most 64 characters, without ":" or "/", and with num_proc it appends
    # "_00000_of_00002" per worker: the whole key goes in as a 40-character hash (52 + 15 characters failed)
    key = f"mypt-tokenize-{ds._fingerprint}-{system_mode}-{system_prompt}"
    fingerprint = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    in_memory = cache_file_name is None
    return ds.with_format("arrow").map(
        _tokenize_batch, batched=True, batch_size=batch_size, num_proc=num_proc if num_proc > 1 else None,
        fn_kwargs={"tokenizer": tokenizer, "system_mode": system_mode, "system_prompt": system_prompt},
        remove_columns=ds.column_names, features=features, keep_in_memory=in_memory,
        cache_file_name=None if in_memory else os.fspath(cache_file_name), load_from_cache_file=False,
        writer_batch_size=CACHE_BATCH_ROWS,
        new_fingerprint=fingerprint, desc=desc,
    ).with_format(None)


__all__ = ["ChatTemplateEncoder", "tokenize_episodes"]
