"""Episodes -> trainer-ready token datasets: chat template + loss masks, splits, overlap gate, packing.

``prepare(...)`` writes a ``DatasetDict`` (``train``, ``validation``) with ``save_to_disk`` plus
``mypt_metadata.json`` beside it; ``load_prepared(dir)`` reads both back. Columns (int32 lists):
``input_ids``, ``labels`` (-100 = not supervised; aligned with ``input_ids``, the model shifts) and
``seq_lengths`` (the episodes in the row; packed rows end with the trailing pad run as its own segment,
see :mod:`mypt_hf.data.packing`).

Tokenization goes through the tokenizer's chat template with ``return_assistant_tokens_mask``: the
template's ``{% generation %}`` block decides what is supervised (assistant content, ``</myPT_assistant>``
and the final ``<myPT_eot>``), so the mask has one source of truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import GateFailure, MyPTInputError
from ..io_utils import PathLike, atomic_output_dir, check_outputs_writable, sha256_file
from .metadata import METADATA_FILE, SCHEMA, PreparedMetadata, TokenizerRecord
from .packing import IGNORE_INDEX, build_blocks, pack_lengths, packing_stats
from .provenance import check_tokenizer_filters

SPLITS = ("train", "validation")
PAYLOAD_PLACEHOLDER = "{PAYLOAD}"
OVERLONG_MODES = ("error", "drop")

InputSpec = Union[PathLike, "datasets.Dataset"]  # noqa: F821


@dataclass
class PrepareOptions:
    """The preparation options that a phase recipe sets too (a recipe's seed is its ``episode_seed``).

    One name and one default per option everywhere: ``mypt-hf prepare-chat-sft`` builds its flags from these
    fields (HfArgumentParser), the phases' settings inherit them, and the metadata records them as they are.
    """

    val_split: float = field(default=0.1, metadata={"help": "Seeded random validation share (ignored with a "
                                                            "validation file)."})
    enable_packing: bool = field(default=False, metadata={"help": "Pack whole episodes into fixed blocks."})
    pack_block_size: int = field(default=1024, metadata={"help": "Block size (also the longest allowed episode, "
                                                                 "packed or not)."})
    pack_by_field: Optional[str] = field(default=None, metadata={"help": "Group episodes by this _meta dot path "
                                                                         "when packing, e.g. _meta.operator."})
    pack_shuffle: bool = field(default=True, metadata={"help": "Shuffle episodes within groups and the block order "
                                                               "(seeded; --no_pack_shuffle turns it off)."})
    system_prompt: Optional[str] = field(default=None, metadata={"help": "System prompt for every episode "
                                                                         "(overrides theirs)."})
    no_system_prompt: bool = field(default=False, metadata={"help": "Drop every system message."})
    overlong: Literal["error", "drop"] = field(
        default="error", metadata={"help": "Episodes longer than the block: fail naming the first (default) or "
                                           "drop and count."})
    num_proc: int = field(default=1, metadata={"help": "Worker processes for tokenization."})

    def __post_init__(self) -> None:
        if self.overlong not in OVERLONG_MODES:
            raise MyPTInputError(f"--overlong must be one of {OVERLONG_MODES}, got {self.overlong!r}",
                                 field="overlong")
        if self.pack_block_size < 2:
            raise MyPTInputError("block size must be at least 2", field="pack_block_size")
        if self.system_prompt is not None and self.no_system_prompt:
            raise MyPTInputError("--system_prompt and --no_system_prompt exclude each other", field="system_prompt")
        if self.system_prompt is not None and not self.system_prompt.strip():
            raise MyPTInputError("--system_prompt is empty", field="system_prompt")
        if self.pack_by_field and not self.enable_packing:  # it only groups episodes into blocks
            raise MyPTInputError("--pack_by_field needs --enable_packing", field="pack_by_field")
        if not isinstance(self.num_proc, int) or self.num_proc < 1:
            raise MyPTInputError(f"--num_proc must be a positive integer, got {self.num_proc!r}", field="num_proc")

    @property
    def system_mode(self) -> str:
        """What happens to system messages: ``keep`` them, ``drop`` them, or ``override`` with system_prompt."""
        return "drop" if self.no_system_prompt else ("override" if self.system_prompt is not None else "keep")


@dataclass
class PrepareConfig(PrepareOptions):
    """Every option of one preparation: :class:`PrepareOptions` and the seed of the split and the packing shuffle."""

    seed: int = field(default=42, metadata={"help": "Seed of the validation split and the packing shuffle."})


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------

def _sha256_dir(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def _arrow_column(ds, column: str):
    """A column as one pyarrow array (respecting any select()/indices mapping)."""
    import pyarrow as pa

    col = ds.with_format("arrow")[column]
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col


def _meta_field(ds, name: str) -> List[Optional[str]]:
    if "_meta" not in ds.column_names:
        return [None] * len(ds)
    col = _arrow_column(ds, "_meta")
    if name not in [f.name for f in col.type]:
        return [None] * len(ds)
    return col.field(name).to_pylist()


def _message_arrays(ds) -> Tuple[np.ndarray, np.ndarray, Any]:
    """(row offsets, role codes (0 system, 1 user, 2 assistant, -1 other/None), contents arrow array)."""
    import pyarrow.compute as pc

    col = _arrow_column(ds, "messages")
    offsets = col.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    values = col.flatten()
    roles = values.field("role")
    codes = np.full(len(roles), -1, dtype=np.int8)
    for code, role in enumerate(("system", "user", "assistant")):
        codes[pc.fill_null(pc.equal(roles, role), False).to_numpy(zero_copy_only=False)] = code
    return offsets, codes, values.field("content")


#: rows per arrow batch when a pass reads every episode (validation, groups, payloads): bounded memory per pass
SCAN_BATCH_ROWS = 100_000


def mapped_anew(ds):
    """``ds`` with its memory-mapped arrow files mapped once more, for one pass over the rows (a ``Dataset``
    unchanged when any of its data is in memory).

    Why: every page of a memory-mapped file that a pass reads counts in the process's resident memory for as long
    as that mapping lives, and the caller's Dataset lives through the whole preparation; a pass over a fresh
    mapping gives its pages back when it is dropped. Pickling a memory-mapped ``datasets`` table stores only its
    path and transforms (that is how ``map`` hands it to workers), so the round trip costs no data copy.
    """
    import pickle

    from datasets.table import ConcatenationTable, MemoryMappedTable

    table = ds.data
    blocks = [block for row in table.blocks for block in row] if isinstance(table, ConcatenationTable) else [table]
    if not all(isinstance(block, MemoryMappedTable) for block in blocks):
        return ds
    return pickle.loads(pickle.dumps(ds))


def release_arrow_memory() -> None:
    """Give arrow's freed allocations back to the system (its allocator keeps them for reuse otherwise), so one
    pass's working memory does not stay on top of the next pass's."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _scan_batches(ds, columns: Sequence[str]):
    """``(first row, batch Dataset)`` over ``ds`` in :data:`SCAN_BATCH_ROWS` pieces, so no pass holds a whole column
    (a slice of a memory-mapped dataset reads only its own rows; select()/indices mappings are respected); each
    batch reads a mapping of its own (:func:`mapped_anew`), so the pages read are given back batch by batch."""
    ds = ds.select_columns(list(columns))
    for start in range(0, len(ds), SCAN_BATCH_ROWS):
        yield start, mapped_anew(ds.select(range(start, min(start + SCAN_BATCH_ROWS, len(ds)))))
    release_arrow_memory()


def _validate_dataset_rows(ds, where: str) -> None:
    """Vectorised schema check of an episode Dataset (in batches); the first bad row gets validate_episode's exact
    error."""
    missing = {"messages"} - set(ds.column_names)
    if missing:
        raise MyPTInputError(f"dataset has no {sorted(missing)} column (columns: {ds.column_names})", path=where)
    for start, batch in _scan_batches(ds, ["messages"]):
        _validate_batch(batch, where, start)


def _validate_batch(ds, where: str, first_row: int) -> None:
    import pyarrow.compute as pc

    from .schema import validate_episode

    if len(ds) == 0:
        return
    offsets, codes, contents = _message_arrays(ds)
    counts = np.diff(offsets)
    n_messages = len(codes)
    row_of = np.repeat(np.arange(len(counts)), counts)
    position = np.arange(n_messages) - offsets[:-1][row_of]
    stripped = pc.utf8_length(pc.utf8_trim_whitespace(contents))
    empty = pc.fill_null(pc.equal(stripped, 0), True).to_numpy(zero_copy_only=False)
    bad_message = (codes < 0) | ((codes == 0) & (position > 0)) | empty
    bad_rows = np.zeros(len(counts), dtype=bool)
    bad_rows[row_of[bad_message]] = True
    bad_rows |= counts == 0
    assistants = np.bincount(row_of[codes == 2], minlength=len(counts))
    bad_rows |= assistants == 0
    for row in np.flatnonzero(bad_rows)[:1]:
        messages = ds.with_format("arrow")[int(row):int(row) + 1]["messages"].to_pylist()[0]
        validate_episode({"messages": messages}, where=where, row_number=first_row + int(row))
        raise MyPTInputError("invalid episode", path=where, line=first_row + int(row), field="messages")


def load_episode_input(spec: InputSpec, line_limit: Optional[Tuple[int, str]] = None
                       ) -> Tuple["datasets.Dataset", Dict[str, Any]]:  # noqa: F821
    """One input -> (episode Dataset, source record); ``line_limit`` = (bytes, why): a longer JSONL line is refused
    before it is parsed.

    A JSONL file (original or mypt_hf format; errors name file and line), a directory written by
    ``Dataset.save_to_disk``, or an in-memory ``datasets.Dataset`` (recipes pass generator output directly).
    """
    import datasets

    from .schema import load_episodes_jsonl_numbered

    if isinstance(spec, datasets.Dataset):
        _validate_dataset_rows(spec, "<dataset>")
        return spec, {"kind": "dataset", "path": None, "fingerprint": spec._fingerprint, "rows": len(spec)}
    path = Path(spec)
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = sorted(p.name for p in path.iterdir() if p.is_dir())
            raise MyPTInputError(f"this is a DatasetDict; pass one split directory ({', '.join(splits)})",
                                 path=str(path))
        if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
            raise MyPTInputError("directory is not a saved datasets.Dataset", path=str(path))
        ds = datasets.load_from_disk(str(path))
        _validate_dataset_rows(ds, str(path))
        return ds, {"kind": "dataset_dir", "path": str(path), "sha256": _sha256_dir(path), "rows": len(ds)}
    if not path.exists():
        raise MyPTInputError("input not found", path=str(path))
    ds, lines = load_episodes_jsonl_numbered(path, *(line_limit or (None, None)))
    # "_lines" (each episode's file line, for errors) is taken out again by load_episode_inputs
    return ds, {"kind": "jsonl", "path": str(path), "sha256": sha256_file(path), "rows": len(ds), "_lines": lines}


def load_episode_inputs(specs: Sequence[InputSpec]) -> Tuple["datasets.Dataset", List[Dict[str, Any]]]:  # noqa: F821
    """Load and concatenate several inputs (in the given order): ``(episodes, source records)``."""
    episodes, records, _ = load_episode_inputs_located(specs)
    return episodes, records


def load_episode_inputs_located(specs: Sequence[InputSpec], line_limit: Optional[Tuple[int, str]] = None
                                ) -> Tuple[Any, List[Dict[str, Any]], "Origins"]:
    """:func:`load_episode_inputs` plus, per episode, where it came from (``"file.jsonl, line 7"``, or the row of
    an in-memory or saved dataset) for error messages."""
    import datasets

    if isinstance(specs, (str, os.PathLike)) or isinstance(specs, datasets.Dataset):
        specs = [specs]
    if not specs:
        raise MyPTInputError("no input given")
    loaded = [load_episode_input(spec, line_limit) for spec in specs]
    from .schema import EPISODE_FEATURES

    parts = []
    for (ds, record), spec in zip(loaded, specs):
        ds = ds.select_columns([c for c in ("messages", "_meta") if c in ds.column_names])
        if "_meta" not in ds.column_names:  # plain chat datasets: an all-null _meta
            ds = ds.add_column("_meta", [None] * len(ds))
        if ds.features != EPISODE_FEATURES:
            try:
                ds = ds.cast(EPISODE_FEATURES)
            except Exception as error:  # noqa: BLE001 - arrow raises several types here
                raise MyPTInputError(f"episodes do not match the episode schema ({error})",
                                     path=record.get("path") or "<dataset>") from None
        parts.append(ds)
    ds = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    if len(ds) == 0:
        raise MyPTInputError("input holds no episodes")
    origins = Origins([(record.get("path") or "<dataset>", record.pop("_lines", None), len(part))
                       for part, (_, record) in zip(parts, loaded)])
    return ds, [record for _, record in loaded], origins


class Origins:
    """Where each episode came from (``"file.jsonl, line 7"``, ``"<dataset>, row 3"``), named on demand.

    Error messages need the origin of one episode; holding a string per episode cost ~100 bytes each (100 MB per
    million), so only the parts (source, its file lines as an int array or None for rows, row count) are kept.
    """

    def __init__(self, parts: Sequence[Tuple[str, Optional[Sequence[int]], int]],
                 index: Optional[np.ndarray] = None) -> None:
        self._parts = [(where, None if lines is None else np.asarray(lines, dtype=np.int64), count)
                       for where, lines, count in parts]
        self._starts = np.cumsum([0] + [count for _, _, count in self._parts])
        self._index = index

    def __len__(self) -> int:
        return int(self._starts[-1]) if self._index is None else len(self._index)

    def __getitem__(self, i: int) -> str:
        i = int(i if self._index is None else self._index[i])
        part = int(np.searchsorted(self._starts, i, side="right")) - 1
        where, lines, _ = self._parts[part]
        row = i - int(self._starts[part])
        return f"{where}, line {int(lines[row])}" if lines is not None else f"{where}, row {row}"

    def take(self, indices: np.ndarray) -> "Origins":
        """The origins of ``indices`` (as ``Dataset.select(indices)`` would order the episodes)."""
        indices = np.asarray(indices, dtype=np.int64)
        view = Origins([], None)
        view._parts, view._starts = self._parts, self._starts
        view._index = indices if self._index is None else self._index[indices]
        return view


# --------------------------------------------------------------------------------------------------
# payloads, templates, overlap gate
# --------------------------------------------------------------------------------------------------

_QUOTED = re.compile(r'"([^"]+)"')
_WS = re.compile(r"\s+")


def _first_user(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in messages:
        if message["role"] == "user":
            return message["content"]
    return ""


def derive_payload(user: str, meta: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """The payload of an episode: ``_meta.payload`` if set; else, from the first user message, the first
    double-quoted substring; else the text after the first ":" of a single-line message; else None."""
    if meta and meta.get("payload"):
        return meta["payload"]
    match = _QUOTED.search(user)
    if match:
        return match.group(1)
    if "\n" not in user and ":" in user:
        rest = user.split(":", 1)[1].strip()
        return rest or None
    return None


def template_signature(user: str, payload: Optional[str]) -> str:
    """The user message with its payload replaced by ``{PAYLOAD}`` and whitespace collapsed."""
    text = user
    if payload:
        text = text.replace(f'"{payload}"', f'"{PAYLOAD_PLACEHOLDER}"').replace(payload, PAYLOAD_PLACEHOLDER)
    return _WS.sub(" ", text).strip()


def _payloads_and_templates(ds) -> Tuple[Any, Any]:
    """Every episode's payload (null where none) and template signature, as compact arrow string arrays.

    Worked out batch by batch; a Python string per episode would cost ~100 bytes each, the arrow arrays hold the
    text and an offset."""
    import pyarrow as pa

    payload_chunks, template_chunks = [], []
    columns = ["messages"] + (["_meta"] if "_meta" in ds.column_names else [])
    for _, batch in _scan_batches(ds, columns):
        offsets, codes, contents = _message_arrays(batch)
        user_pos = np.flatnonzero(codes == 1)
        k = np.searchsorted(user_pos, offsets[:-1])
        has_user = (k < len(user_pos)) & (user_pos[np.minimum(k, max(len(user_pos) - 1, 0))] < offsets[1:]) \
            if len(user_pos) else np.zeros(len(offsets) - 1, dtype=bool)
        first_user = contents.take(user_pos[np.minimum(k, len(user_pos) - 1)]).to_pylist() if len(user_pos) else []
        meta_payloads = _meta_field(batch, "payload")
        payloads, templates = [], []
        for row in range(len(offsets) - 1):
            user = first_user[row] if has_user[row] else ""
            payload = derive_payload(user, {"payload": meta_payloads[row]})
            payloads.append(payload or None)  # an empty payload counts as none (as it always did)
            templates.append(template_signature(user, payload))
        payload_chunks.append(pa.array(payloads, type=pa.large_string()))
        template_chunks.append(pa.array(templates, type=pa.large_string()))
    return (pa.chunked_array(payload_chunks, type=pa.large_string()),
            pa.chunked_array(template_chunks, type=pa.large_string()))


def _overlap(train, val) -> List[str]:
    """The distinct non-null strings of ``train`` that ``val`` holds too, sorted."""
    import pyarrow.compute as pc

    val_set = pc.drop_null(pc.unique(val.combine_chunks() if val.num_chunks else val))
    shared = pc.filter(train, pc.is_in(train, value_set=val_set))
    return sorted(pc.unique(shared).to_pylist()) if len(shared) else []


def check_separation(train, val, *, max_examples: int = 5, out=None) -> Dict[str, Any]:
    """Strict train/val separation: no shared payload and no shared template signature.

    Returns the counts (for the metadata); prints up to ``max_examples`` examples of each overlap and
    raises GateFailure when either overlap is non-empty.
    """
    import pyarrow.compute as pc

    out = out or sys.stdout
    train_p, train_t = _payloads_and_templates(train)
    val_p, val_t = _payloads_and_templates(val)
    payload_overlap = _overlap(train_p, val_p)
    template_overlap = _overlap(train_t, val_t)

    def distinct(values) -> int:
        return int(pc.count_distinct(values, mode="only_valid").as_py()) if len(values) else 0

    report = {
        "train_payloads": distinct(train_p),
        "val_payloads": distinct(val_p),
        "train_templates": distinct(train_t),
        "val_templates": distinct(val_t),
        "payload_overlap_count": len(payload_overlap),
        "template_overlap_count": len(template_overlap),
    }
    print(f"separation check: payloads train {report['train_payloads']} / val {report['val_payloads']}, "
          f"overlap {len(payload_overlap)}; templates train {report['train_templates']} / val "
          f"{report['val_templates']}, overlap {len(template_overlap)}", file=out)
    problems = []
    if payload_overlap:
        problems.append(f"{len(payload_overlap)} payload(s) occur in both train and val")
        for p in payload_overlap[:max_examples]:
            print(f"  payload in both: {p!r}", file=out)
    if template_overlap:
        problems.append(f"{len(template_overlap)} template(s) occur in both train and val")
        for t in template_overlap[:max_examples]:
            print(f"  template in both: {t!r}", file=out)
    if problems:
        raise GateFailure("train/val separation failed: " + "; ".join(problems))
    return report


# --------------------------------------------------------------------------------------------------
# tokenization
# --------------------------------------------------------------------------------------------------

def _system_messages(messages: List[Dict[str, str]], mode: str, prompt: Optional[str]) -> List[Dict[str, str]]:
    if mode == "keep":
        return messages
    rest = [m for m in messages if m["role"] != "system"]
    if mode == "drop":
        return rest
    return [{"role": "system", "content": prompt}] + rest


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
        new_fingerprint=fingerprint, desc=desc,
    ).with_format(None)


def _flat(ds, column: str) -> Tuple[np.ndarray, np.ndarray]:
    """(values, offsets) of a list<int32> column, straight from arrow."""
    import pyarrow as pa

    col = ds.data.column(column).combine_chunks()
    if isinstance(col, pa.ChunkedArray):  # empty tables
        col = pa.concat_arrays(col.chunks) if col.num_chunks else pa.array([], type=pa.list_(pa.int32()))
    offsets = col.offsets.to_numpy().astype(np.int64)
    values = col.values.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return values[offsets[0]:offsets[-1]], offsets - offsets[0]


def _list_array(values: np.ndarray, offsets: np.ndarray):
    import pyarrow as pa

    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values.astype(np.int32)))


def build_token_dataset(columns: Dict[str, Tuple[np.ndarray, np.ndarray]]):
    """A Dataset from (values, offsets) columns, with a content-derived fingerprint (same data -> same id)."""
    import datasets
    import pyarrow as pa

    digest = hashlib.sha256(SCHEMA.encode())
    arrays = {}
    for name, (values, offsets) in columns.items():
        arrays[name] = _list_array(values, offsets)
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(offsets, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(values, dtype=np.int32).tobytes())
    table = pa.table(arrays)
    features = datasets.Features({name: datasets.List(datasets.Value("int32")) for name in columns})
    table = table.cast(features.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features), fingerprint=digest.hexdigest()[:32])


# --------------------------------------------------------------------------------------------------
# grouping
# --------------------------------------------------------------------------------------------------

def group_values(ds, field_path: str) -> List[Optional[str]]:
    """Values of a dot path (``_meta.operator``) for every row; an unknown path is an input error."""
    from .schema import META_FIELDS

    parts = field_path.split(".")
    if parts[0] == "_meta":
        if len(parts) != 2 or parts[1] not in META_FIELDS:
            raise MyPTInputError(f"unknown pack field {field_path!r}; known: "
                                 f"{', '.join('_meta.' + f for f in META_FIELDS)}", field="pack_by_field")
        return _meta_field(ds, parts[1])
    raise MyPTInputError(f"unknown pack field {field_path!r}: expected a dot path into _meta, "
                         f"e.g. _meta.operator", field="pack_by_field")


# --------------------------------------------------------------------------------------------------
# one split
# --------------------------------------------------------------------------------------------------

def _episode_name(ds, index: int, origins: Optional[Sequence[str]] = None) -> str:
    meta = ds[index].get("_meta") if "_meta" in ds.column_names else None  # one row: plain access is fine
    bits = [origins[index] if origins is not None else f"row {index}"]
    if meta:
        for key in ("source", "episode_id"):
            if meta.get(key):
                bits.append(f"{key}={meta[key]}")
    return ", ".join(bits)


def _group_codes(ds, field_path: str) -> Tuple[np.ndarray, List[str]]:
    """Each episode's group as an int code (codes in order of first appearance) and the group names per code.

    Missing values group as ``_ungrouped``. Read in batches and dictionary-encoded by arrow: one int64 per
    episode in memory, not a string."""
    import pyarrow as pa
    import pyarrow.compute as pc

    group_values(ds.select(range(0)), field_path)  # an unknown path is an input error
    name = field_path.split(".")[1]
    keys: Dict[str, int] = {}
    codes = np.empty(len(ds), dtype=np.int64)
    if "_meta" not in ds.column_names:
        codes[:] = 0
        return codes, ["_ungrouped"] if len(ds) else []
    for start, batch in _scan_batches(ds, ["_meta"]):
        meta = _arrow_column(batch, "_meta")
        values = meta.field(name) if name in [f.name for f in meta.type] else pa.nulls(len(meta), pa.string())
        encoded = pc.fill_null(values.cast(pa.string()), "_ungrouped").dictionary_encode()
        mapping = np.array([keys.setdefault(key, len(keys)) for key in encoded.dictionary.to_pylist()],
                           dtype=np.int64)
        codes[start:start + len(batch)] = mapping[encoded.indices.to_numpy(zero_copy_only=False)] \
            if len(mapping) else 0
    return codes, list(keys)


#: episodes / blocks per arrow batch when a split is laid out and written (bounds the memory of that step)
WRITE_BATCH_EPISODES = 50_000
WRITE_BATCH_BLOCKS = 250

_TOKEN_FEATURES_NAMES = ("input_ids", "labels", "seq_lengths")


def _token_features():
    import datasets

    return datasets.Features({name: datasets.List(datasets.Value("int32")) for name in _TOKEN_FEATURES_NAMES})


def _length_and_supervised(tokenized) -> Tuple[np.ndarray, np.ndarray]:
    """Per episode: token count and supervised-token count, read batch by batch from the tokenized arrow data."""
    lengths, supervised = [], []
    for record_batch in mapped_anew(tokenized).data.table.to_batches():
        ids, labels = record_batch.column("input_ids"), record_batch.column("labels")
        offsets = ids.offsets.to_numpy().astype(np.int64)
        label_offsets = labels.offsets.to_numpy().astype(np.int64)
        flags = labels.values.to_numpy(zero_copy_only=False)[label_offsets[0]:label_offsets[-1]] != IGNORE_INDEX
        cumulative = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
        local = label_offsets - label_offsets[0]
        lengths.append(np.diff(offsets))
        supervised.append(cumulative[local[1:]] - cumulative[local[:-1]])
    if not lengths:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(lengths), np.concatenate(supervised)


def _take_tokens(table, indices: np.ndarray):
    """``(ids, labels, offsets)`` of the episodes ``indices`` (in that order) as flat numpy arrays."""
    import pyarrow as pa

    take = pa.array(indices, type=pa.int64())
    ids = table.column("input_ids").take(take).combine_chunks()
    labels = table.column("labels").take(take).combine_chunks()
    offsets = ids.offsets.to_numpy().astype(np.int64)
    flat_ids = ids.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]
    flat_labels = labels.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]
    return flat_ids, flat_labels, offsets - offsets[0]


class _SplitWriter:
    """Writes token rows to an arrow file in exactly the record batches ``save_to_disk`` will copy, so the saved
    bytes are those of the in-memory build.

    Why: arrow's IPC writer pads a buffer to 8 bytes with whatever follows it in memory. The in-memory build was
    one contiguous array per column, so every saved batch but the last carried the next batch's first value in its
    padding. Here each batch is given that value past its end (the list's child is one longer than its offsets
    use), and the batches are cut where ``save_to_disk`` (shards x ``writer_batch_size``) cuts them.
    """

    def __init__(self, path: Path, n_rows: int, n_values: Dict[str, int]) -> None:
        from datasets import config as ds_config
        from datasets.arrow_writer import ArrowWriter, get_writer_batch_size_from_data_size

        nbytes = sum(4 * (n_rows + 1) + 4 * n_values[name] for name in _TOKEN_FEATURES_NAMES)
        self.num_shards = _shards_for(n_rows, nbytes)
        batch = min(ds_config.DEFAULT_MAX_BATCH_SIZE, get_writer_batch_size_from_data_size(n_rows, nbytes))
        div, mod = divmod(n_rows, self.num_shards)
        cuts = set()
        for shard in range(self.num_shards):  # Dataset.shard(contiguous=True)'s ranges
            start, end = div * shard + min(shard, mod), div * (shard + 1) + min(shard + 1, mod)
            cuts.update(range(start + batch, end, batch))
            cuts.add(end)
        self._cuts = sorted(c for c in cuts if c > 0)
        self._writer = ArrowWriter(features=_token_features(), path=str(path), writer_batch_size=batch)
        self._rows_done = 0
        self._pending: List[Dict[str, Tuple[np.ndarray, np.ndarray]]] = []  # numpy rows not yet cut into a batch
        self._pending_rows = 0
        self._held: Optional[Dict[str, Tuple[np.ndarray, np.ndarray]]] = None  # a cut batch awaiting its successor

    def add(self, columns: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> None:
        """Append rows: per column ``(values, offsets)`` (offsets from 0, one more than the rows)."""
        self._pending.append(columns)
        self._pending_rows += len(columns["input_ids"][1]) - 1
        while self._cuts and self._rows_done + self._pending_rows >= self._cuts[0]:
            self._cut(self._cuts.pop(0) - self._rows_done)

    def _cut(self, n: int) -> None:
        """Take the first ``n`` pending rows as one batch."""
        taken: Dict[str, List[Tuple[np.ndarray, np.ndarray]]] = {name: [] for name in _TOKEN_FEATURES_NAMES}
        need = n
        while need:
            part = self._pending[0]
            rows = len(part["input_ids"][1]) - 1
            k = min(rows, need)
            rest = {}
            for name, (values, offsets) in part.items():
                taken[name].append((values[:offsets[k]], offsets[:k + 1]))
                rest[name] = (values[offsets[k]:], offsets[k:] - offsets[k])
            if k == rows:
                self._pending.pop(0)
            else:
                self._pending[0] = rest
            need -= k
        self._pending_rows -= n
        self._rows_done += n
        batch = {}
        for name, pieces in taken.items():
            values = np.concatenate([v for v, _ in pieces]) if len(pieces) > 1 else pieces[0][0]
            offsets, base = [pieces[0][1]], int(pieces[0][1][-1])
            for _, more in pieces[1:]:
                offsets.append(more[1:] + base)
                base += int(more[-1])
            batch[name] = (values, np.concatenate(offsets))
        self._emit(batch)

    def _emit(self, batch: Optional[Dict[str, Tuple[np.ndarray, np.ndarray]]]) -> None:
        import pyarrow as pa

        held, self._held = self._held, batch
        if held is None:
            return
        arrays = {}
        for name, (values, offsets) in held.items():
            if batch is not None and len(values) % 2:  # the padding the contiguous array would have had
                values = np.append(values, batch[name][0][:1])
            arrays[name] = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                                    pa.array(values.astype(np.int32, copy=False)))
        self._writer.write_table(pa.table(arrays))

    def close(self) -> None:
        """Write the last batch and finish the file."""
        if self._pending_rows:
            raise AssertionError("rows left after the last cut")  # the caller's row count was wrong
        self._emit(None)
        self._writer.finalize()
        self._writer.close()


def _shards_for(n_rows: int, nbytes: int) -> int:
    """The shard count ``save_to_disk`` picks for an in-memory table of ``nbytes``."""
    from datasets import config as ds_config
    from datasets.utils.py_utils import convert_file_size_to_int

    shards = int(nbytes / convert_file_size_to_int(ds_config.MAX_SHARD_SIZE)) + 1
    return max(1, min(n_rows, shards))


def _write_unpacked(path: Path, tokenized, keep: np.ndarray, lengths: np.ndarray) -> None:
    """One row per kept episode (in order): its tokens, labels and ``seq_lengths = [length]``; each batch reads
    ``tokenized`` through a mapping of its own (:func:`mapped_anew`)."""
    total = int(lengths.sum())
    writer = _SplitWriter(path, len(keep), {"input_ids": total, "labels": total, "seq_lengths": len(keep)})
    for start in range(0, len(keep), WRITE_BATCH_EPISODES):
        rows = keep[start:start + WRITE_BATCH_EPISODES]
        ids, labels, offsets = _take_tokens(mapped_anew(tokenized).data.table, rows)
        seq = (lengths[start:start + len(rows)].astype(np.int32), np.arange(len(rows) + 1, dtype=np.int64))
        writer.add({"input_ids": (ids, offsets), "labels": (labels, offsets), "seq_lengths": seq})
    writer.close()


def _write_packed(path: Path, tokenized, keep: Optional[np.ndarray], blocks: List[np.ndarray], lengths: np.ndarray,
                  block_size: int, pad_token_id: int) -> None:
    """The blocks in order, :data:`WRITE_BATCH_BLOCKS` at a time: their episodes are read from the tokenized arrow
    data (through a mapping of its own per batch, :func:`mapped_anew`: the episodes of a batch are spread over the
    whole file) and laid out by :func:`build_blocks`, so only one batch of blocks is ever in memory."""
    used = np.fromiter((int(lengths[block].sum()) for block in blocks), dtype=np.int64, count=len(blocks))
    segments = len(lengths) + int((used < block_size).sum())
    writer = _SplitWriter(path, len(blocks), {"input_ids": len(blocks) * block_size,
                                              "labels": len(blocks) * block_size, "seq_lengths": segments})
    for start in range(0, len(blocks), WRITE_BATCH_BLOCKS):
        batch = blocks[start:start + WRITE_BATCH_BLOCKS]
        order = np.concatenate(batch)
        ids, labels, offsets = _take_tokens(mapped_anew(tokenized).data.table, order if keep is None else keep[order])
        bounds = np.cumsum([0] + [len(block) for block in batch])
        local = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(batch))]
        packed = build_blocks(ids, labels, offsets, local, block_size, pad_token_id)
        row_offsets = np.arange(len(batch) + 1, dtype=np.int64) * block_size
        seg_values = np.concatenate(packed.seq_lengths).astype(np.int32)
        seg_offsets = np.concatenate([[0], np.cumsum([len(s) for s in packed.seq_lengths])]).astype(np.int64)
        writer.add({"input_ids": (packed.input_ids.ravel(), row_offsets),
                    "labels": (packed.labels.ravel(), row_offsets), "seq_lengths": (seg_values, seg_offsets)})
    writer.close()


def _content_fingerprint(path: Path) -> str:
    """:func:`build_token_dataset`'s fingerprint of the token columns in an arrow file, read back in batches.

    The same bytes in the same order (per column: name, int64 offsets, int32 values), so a split written in batches
    gets the id the in-memory build gave it. The file is read through plain reads, one record batch at a time."""
    import pyarrow as pa

    digest = hashlib.sha256(SCHEMA.encode())
    for name in _TOKEN_FEATURES_NAMES:
        digest.update(name.encode())
        for part in ("offsets", "values"):
            base = 0
            with pa.OSFile(str(path)) as source:
                reader = pa.ipc.open_stream(source)
                first = True
                for record_batch in reader:
                    column = record_batch.column(name)
                    offsets = column.offsets.to_numpy().astype(np.int64)
                    if part == "offsets":
                        global_offsets = offsets - offsets[0] + base
                        digest.update(np.ascontiguousarray(global_offsets if first else global_offsets[1:]).tobytes())
                        base = int(global_offsets[-1])
                        first = False
                    else:
                        values = column.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]
                        digest.update(np.ascontiguousarray(values, dtype=np.int32).tobytes())
            if part == "offsets" and first:  # no rows: the offsets are [0]
                digest.update(np.zeros(1, np.int64).tobytes())
    return digest.hexdigest()[:32]


def _file_dataset(path: Path, in_memory: bool):
    """The split written at ``path`` as a Dataset with its content fingerprint (memory-mapped, or read in)."""
    import datasets
    from datasets.table import InMemoryTable, MemoryMappedTable

    table = InMemoryTable.from_file(str(path)) if in_memory else MemoryMappedTable.from_file(str(path))
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=_token_features()),
                            fingerprint=_content_fingerprint(path))


def _prepare_split(name: str, episodes, tokenizer, config: PrepareConfig, *, shuffle: bool, pad_token_id: int,
                   log, work_dir: Path, in_memory: bool, origins: Optional[Sequence[str]] = None
                   ) -> Tuple[Any, Dict[str, Any]]:
    """Tokenize, mask and (optionally) pack one split; ``origins[i]`` says where episode ``i`` came from.

    Streams through arrow files in ``work_dir``: the tokenize workers write their rows to a cache file, only the
    per-episode lengths, supervised counts and group codes are held in memory, the packer plans blocks from those,
    and the rows are then read back and written in batches to ``work_dir/<name>.arrow`` (the returned Dataset's
    file unless ``in_memory``). The tokenized cache is removed before returning.
    """
    block_size, packing, pack_by_field = config.pack_block_size, config.enable_packing, config.pack_by_field
    codes, group_names = _group_codes(episodes, pack_by_field) if packing and pack_by_field else (None, None)
    cache = work_dir / f"{name}-tokenized.arrow"
    tokenized = tokenize_episodes(mapped_anew(episodes), tokenizer, system_mode=config.system_mode,
                                  system_prompt=config.system_prompt, num_proc=config.num_proc,
                                  desc=f"tokenize {name}", cache_file_name=cache)
    try:
        lengths, sup_per_episode = _length_and_supervised(tokenized)
        no_target = np.flatnonzero(sup_per_episode == 0)
        if len(no_target):
            raise MyPTInputError(f"{name}: episode has no supervised token "
                                 f"({_episode_name(episodes, int(no_target[0]), origins)})")

        too_long = np.flatnonzero(lengths > block_size)
        dropped = 0
        keep = None
        if len(too_long):
            if config.overlong == "error":
                first = int(too_long[0])
                raise MyPTInputError(
                    f"{name}: {len(too_long)} episode(s) longer than the block size {block_size}; first: "
                    f"{_episode_name(episodes, first, origins)} with {int(lengths[first])} tokens "
                    f"(use --overlong drop to drop them)")
            keep = np.flatnonzero(lengths <= block_size)
            dropped = len(too_long)
            if len(keep) == 0:
                raise MyPTInputError(f"{name}: --overlong drop would drop all {dropped} episode(s): every one is "
                                     f"longer than the block size {block_size} (shortest {int(lengths.min())} "
                                     f"tokens); raise --pack_block_size or shorten the episodes", field="overlong")
            log(f"{name}: dropped {dropped} episode(s) longer than {block_size} tokens")
            if codes is not None:
                codes = codes[keep]
            lengths, sup_per_episode = lengths[keep], sup_per_episode[keep]

        n_episodes = int(len(lengths))
        stats: Dict[str, Any] = {
            "episodes": n_episodes,
            "dropped_overlong": int(dropped),
            "tokens": int(lengths.sum()),
            "supervised_tokens": int(sup_per_episode.sum()),
            "mask_ratio": float(sup_per_episode.sum() / lengths.sum()) if n_episodes else 0.0,
            "avg_episode_tokens": float(lengths.mean()) if n_episodes else 0.0,
            "max_episode_tokens": int(lengths.max()) if n_episodes else 0,
        }
        out = work_dir / f"{name}.arrow"
        if not packing:
            _write_unpacked(out, tokenized, np.arange(n_episodes) if keep is None else keep, lengths)
            stats["rows"] = n_episodes
        else:
            blocks = pack_lengths(lengths, block_size, groups=codes, shuffle=shuffle, seed=config.seed)
            _write_packed(out, tokenized, keep, blocks, lengths, block_size, pad_token_id)
            pstats = packing_stats(lengths, sup_per_episode, blocks, block_size)
            if codes is not None:
                per_group: Dict[str, Dict[str, int]] = {}
                for block in blocks:
                    entry = per_group.setdefault(group_names[codes[block[0]]], {"episodes": 0, "blocks": 0})
                    entry["episodes"] += len(block)
                    entry["blocks"] += 1
                pstats["groups"] = dict(sorted(per_group.items()))
                for key, entry in pstats["groups"].items():
                    log(f"  {name} group {key}: {entry['episodes']} episodes -> {entry['blocks']} blocks")
            stats["rows"] = len(blocks)
            stats["packing"] = pstats
    finally:
        cache_files = [f["filename"] for f in tokenized.cache_files]
        del tokenized  # unmap the cache before removing it
        for file in cache_files:
            Path(file).unlink(missing_ok=True)
    return _file_dataset(out, in_memory), stats


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------

#: JSON escapes (``\uXXXX`` for a byte of a non-ASCII or control character) can spell one byte of text in up to 6.
_JSON_BYTES_PER_TEXT_BYTE = 8


def _line_limit(tokenizer, config: PrepareConfig) -> Optional[Tuple[int, str]]:
    """With ``--overlong error``: the longest JSONL line an episode that fits the block can be (every token spelled
    with the tokenizer's longest token, JSON-escaped, plus 64 KiB of structure), so a runaway line is refused while
    reading it, in bounded memory, instead of after tokenizing it. ``None`` (the 16 MiB cap only) with ``drop``."""
    if config.overlong != "error":
        return None
    longest = max((len(token.encode("utf-8")) for token in tokenizer.get_vocab()), default=16)
    limit = (64 << 10) + config.pack_block_size * longest * _JSON_BYTES_PER_TEXT_BYTE
    return limit, (f"longer than any episode of {config.pack_block_size} tokens can be (--pack_block_size; "
                   f"--overlong drop to drop such episodes instead)")


def prepare_dataset(inputs: Union[InputSpec, Sequence[InputSpec]], tokenizer=None,
                    config: Optional[PrepareConfig] = None, *, val_file: Optional[InputSpec] = None,
                    allow_tokenizer_mismatch: bool = False, verbose: bool = True,
                    work_dir: Optional[PathLike] = None) -> Tuple[Any, PreparedMetadata]:
    """Everything :func:`prepare` does except writing: returns ``(DatasetDict, PreparedMetadata)``.

    The splits stream through arrow files in ``work_dir`` (an existing directory): given one, the returned splits
    are memory-mapped from ``work_dir/train.arrow`` and ``validation.arrow``, which the caller keeps while it uses
    them (:func:`prepare` gives a folder inside its atomic output); without one, a temporary directory is used and
    the splits are read into memory before it is removed.

    ``tokenizer``: a tokenizer object, or a spec for ``load_tokenizer`` (None = embedded default).
    ``config``: the preparation options (default ``PrepareConfig()``). ``val_file``: explicit validation episodes
    (strict payload/template separation; ``config.val_split`` is then not used).
    A JSONL input whose generator filtered it by token counts with another tokenizer (its metadata says which)
    is refused unless ``allow_tokenizer_mismatch`` (:mod:`mypt_hf.data.provenance`).
    Raises MyPTInputError for bad input and GateFailure when the val-file separation check fails.
    """
    import datasets

    from ..tokenization_mypt import load_tokenizer, model_vocab_size, tokenizer_fingerprint

    config = PrepareConfig() if config is None else config

    def log(message: str) -> None:
        if verbose:
            print(message, flush=True)

    started = time.perf_counter()
    if val_file is None and not 0.0 <= config.val_split < 1.0:
        raise MyPTInputError(f"--val_split must be in [0, 1), got {config.val_split}", field="val_split")
    tokenizer_spec = None
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        tokenizer_spec = None if tokenizer is None else os.fspath(tokenizer)
        tokenizer = load_tokenizer(tokenizer_spec)
    pad_token_id = tokenizer.pad_token_id
    if pad_token_id is None:
        raise MyPTInputError("tokenizer has no pad token")

    tokenizer_name = tokenizer_spec or getattr(tokenizer, "name_or_path", None) or "embedded"
    fingerprint = tokenizer_fingerprint(tokenizer)
    specs = ([inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)) + [val_file]
    files = [Path(s) for s in specs if isinstance(s, (str, os.PathLike)) and Path(s).is_file()]
    token_filters = check_tokenizer_filters(files, tokenizer_name, fingerprint,
                                            allow_mismatch=allow_tokenizer_mismatch, log=log)
    line_limit = _line_limit(tokenizer, config)
    episodes, sources, origins = load_episode_inputs_located(inputs, line_limit)
    if config.enable_packing and config.pack_by_field:
        group_values(episodes.select(range(0)), config.pack_by_field)  # fail fast on an unknown path
    separation: Optional[Dict[str, Any]] = None
    if val_file is not None:
        val_episodes, val_sources, val_origins = load_episode_inputs_located([val_file], line_limit)
        train_episodes, train_origins = episodes, origins
        separation = check_separation(train_episodes, val_episodes, out=sys.stdout if verbose else io.StringIO())
        release_arrow_memory()  # the payload and template strings are gone; tokenization comes next
        mode = "explicit_val_file"
    else:
        n = len(episodes)
        n_val = int(n * config.val_split)
        perm = np.random.default_rng(config.seed).permutation(n)
        val_idx = np.sort(perm[:n_val])
        train_idx = np.sort(perm[n_val:])
        train_episodes = episodes.select(train_idx)
        val_episodes = episodes.select(val_idx)
        train_origins, val_origins = origins.take(train_idx), origins.take(val_idx)
        val_sources = []
        mode = "val_split"
    if len(train_episodes) == 0:
        raise MyPTInputError("the train split is empty")

    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work, in_memory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mypt_prepare_"))), True
        else:
            work, in_memory = Path(work_dir), False
        split_kwargs = dict(pad_token_id=pad_token_id, log=log, work_dir=work, in_memory=in_memory)
        train_ds, train_stats = _prepare_split("train", train_episodes, tokenizer, config, shuffle=config.pack_shuffle,
                                               origins=train_origins, **split_kwargs)
        if len(val_episodes):
            val_ds, val_stats = _prepare_split("validation", val_episodes, tokenizer, config, shuffle=False,
                                               origins=val_origins, **split_kwargs)
        else:
            empty = (np.zeros(0, np.int32), np.zeros(1, np.int64))
            val_ds = build_token_dataset({"input_ids": empty, "labels": empty, "seq_lengths": empty})
            val_stats = {"episodes": 0, "rows": 0, "tokens": 0, "supervised_tokens": 0, "mask_ratio": 0.0,
                         "dropped_overlong": 0}
    dataset = datasets.DatasetDict({"train": train_ds, "validation": val_ds})

    packing = bool(config.enable_packing)
    metadata = PreparedMetadata(
        schema=SCHEMA, prepare_mode=mode, splits={"train": train_stats, "validation": val_stats},
        packing_enabled=packing, block_size=int(config.pack_block_size),
        pack_by_field=config.pack_by_field if packing else None,
        pack_shuffle=bool(config.pack_shuffle) if packing else None, seq_lengths_include_pad_segment=packing,
        pad_token_id=int(pad_token_id), system_prompt_mode=config.system_mode,
        system_prompt_override=config.system_prompt, sources=sources, val_sources=val_sources,
        separation=separation,
        payload_overlap_count=None if separation is None else separation["payload_overlap_count"],
        template_overlap_count=None if separation is None else separation["template_overlap_count"],
        tokenizer=TokenizerRecord(name=tokenizer_spec or getattr(tokenizer, "name_or_path", None) or None,
                                  vocab_size=len(tokenizer), model_vocab_size=model_vocab_size(tokenizer),
                                  fingerprint=fingerprint),
        # content hashes of the in-memory splits (the saved state.json fingerprints derive from these)
        content_fingerprints={"train": train_ds._fingerprint, "validation": val_ds._fingerprint},
        config=asdict(config),
        inputs={"val_file": os.fspath(val_file) if isinstance(val_file, (str, os.PathLike)) else None,
                "tokenizer": tokenizer_spec, "tokenizer_filters": token_filters},
    )
    log(f"train: {train_stats['episodes']} episodes -> {train_stats['rows']} rows, {train_stats['tokens']} tokens, "
        f"{train_stats['supervised_tokens']} supervised ({train_stats['mask_ratio']:.1%})")
    log(f"validation: {val_stats['episodes']} episodes -> {val_stats['rows']} rows, {val_stats['tokens']} tokens, "
        f"{val_stats['supervised_tokens']} supervised ({val_stats['mask_ratio']:.1%})")
    if packing and "packing" in train_stats:
        p = train_stats["packing"]
        log(f"packing: block {config.pack_block_size}, fill {p['fill']:.4%}, {p['episodes_per_block_mean']:.1f} "
            f"episodes/block (min {p['episodes_per_block_min']}, max {p['episodes_per_block_max']}), supervised "
            f"tokens per row x{p['gain_vs_unpacked_padded']:.1f} vs one episode per row")
    log(f"prepared in {time.perf_counter() - started:.2f}s")
    return dataset, metadata


def prepare(inputs: Union[InputSpec, Sequence[InputSpec]], output_dir: PathLike, tokenizer=None,
            config: Optional[PrepareConfig] = None, *, val_file: Optional[InputSpec] = None, overwrite: bool = False,
            allow_tokenizer_mismatch: bool = False, verbose: bool = True):
    """Prepare episodes for training and save them: ``output_dir`` gets the DatasetDict (``save_to_disk``)
    and ``mypt_metadata.json``. Nothing is written when anything fails. Arguments as :func:`prepare_dataset`;
    an existing ``output_dir`` is refused unless ``overwrite``. Returns the DatasetDict.
    """
    output_dir = Path(output_dir)
    # fail before the expensive part: an existing output (without overwrite) or a location that cannot be written
    check_outputs_writable([output_dir], overwrite=overwrite, field="output_dir")
    import datasets

    bars_were_on = datasets.is_progress_bar_enabled()
    if not verbose:
        datasets.disable_progress_bars()
    try:
        # the intermediate arrow files live inside the atomic output (same filesystem; removed with it on failure,
        # and by the next run's leftover cleaning after a crash), and go before it is moved into place
        with atomic_output_dir(output_dir, overwrite=overwrite) as tmp:
            work = tmp / "_prepare_work"
            work.mkdir()
            dataset, metadata = prepare_dataset(inputs, tokenizer, config, val_file=val_file,
                                                allow_tokenizer_mismatch=allow_tokenizer_mismatch, verbose=verbose,
                                                work_dir=work)
            _save_into(dataset, metadata, tmp)
            del dataset  # unmap the work files before removing them
            shutil.rmtree(work)
    finally:
        if not verbose and bars_were_on:
            datasets.enable_progress_bars()
    if verbose:
        print(f"saved {output_dir}")
    return load_prepared(output_dir)[0]


def save_prepared(dataset, metadata: PreparedMetadata, output_dir: PathLike, overwrite: bool = False) -> None:
    """Write a prepared ``DatasetDict`` and its metadata the way :func:`load_prepared` reads them (atomically)."""
    with atomic_output_dir(Path(output_dir), overwrite=overwrite) as tmp:
        _save_into(dataset, metadata, tmp)


def _save_into(dataset, metadata: PreparedMetadata, directory: Path) -> None:
    # an empty split must still get one (empty) shard, or load_from_disk cannot read it back
    dataset.save_to_disk(str(directory), num_shards={name: _save_shards(split) for name, split in dataset.items()})
    metadata.save(directory)


def _save_shards(split) -> int:
    """The shards of a token split: as ``save_to_disk`` would pick for its in-memory table (the streamed splits
    are memory-mapped in other record batches, whose byte estimate differs a little), one for an empty split
    (load_from_disk cannot read a split without a shard)."""
    if len(split) == 0:
        return 1
    nbytes = 0
    for name in split.column_names:
        column = split.data.table.column(name)
        values = sum(int(chunk.offsets[-1].as_py()) - int(chunk.offsets[0].as_py()) for chunk in column.chunks)
        nbytes += 4 * (len(split) + 1) + 4 * values
    return _shards_for(len(split), nbytes)


def load_prepared(directory: PathLike) -> Tuple[Any, PreparedMetadata]:
    """Load a prepared dataset: ``(DatasetDict, PreparedMetadata)``."""
    import datasets

    metadata = PreparedMetadata.load(directory)
    return datasets.load_from_disk(str(directory)), metadata


__all__ = ["METADATA_FILE", "SCHEMA", "PrepareOptions", "PrepareConfig", "PreparedMetadata", "prepare",
           "prepare_dataset", "save_prepared", "load_prepared", "build_token_dataset", "load_episode_inputs",
           "check_separation", "derive_payload", "template_signature", "tokenize_episodes", "group_values"]
