"""Episodes -> trainer-ready token datasets: chat template + loss masks, splits, overlap gate, packing.

``prepare(...)`` writes a ``DatasetDict`` (``train``, ``validation``) with ``save_to_disk`` plus
``mypt_metadata.json`` beside it; ``load_prepared(dir)`` reads both back. Columns (int32 lists):
``input_ids``, ``labels`` (-100 = not supervised; aligned with ``input_ids``, the model shifts) and
``seq_lengths`` (the episodes in the row; packed rows end with the trailing pad run as its own segment,
see :mod:`mypt_hf.data.packing`).

Tokenization goes through the tokenizer's chat template with ``return_assistant_tokens_mask``: the
template's ``{% generation %}`` block decides what is supervised (assistant content, ``</myPT_assistant>``
and the final ``<myPT_eot>``), so the mask has one source of truth.

The work streams through arrow files in bounded memory, one job per module: :mod:`.episode_arrays` (passes over the
episodes), :mod:`.separation` (the train/val gate), :mod:`.chat_tokenize` (the tokenize map),
:mod:`.token_files` (the rows of a split written in ``save_to_disk``'s batches); this module holds the options,
the inputs, one split's plan and the public API.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import MyPTInputError
from ..io_utils import PathLike, atomic_output_dir, check_outputs_writable, sha256_file
from .chat_tokenize import ChatTemplateEncoder, tokenize_episodes
from .episode_arrays import arrow_column, mapped_anew, message_arrays, meta_field, release_arrow_memory, scan_batches
from .metadata import METADATA_FILE, SCHEMA, PreparedMetadata, TokenizerRecord
from .packing import pack_lengths, packing_stats
from .provenance import check_tokenizer_filters
from .separation import PAYLOAD_PLACEHOLDER, check_separation, derive_payload, template_signature
from .token_files import (build_token_dataset, file_dataset, length_and_supervised, shards_for, write_packed,
                          write_unpacked)

SPLITS = ("train", "validation")
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


def _validate_dataset_rows(ds, where: str) -> None:
    """Vectorised schema check of an episode Dataset (in batches); the first bad row gets validate_episode's exact
    error."""
    missing = {"messages"} - set(ds.column_names)
    if missing:
        raise MyPTInputError(f"dataset has no {sorted(missing)} column (columns: {ds.column_names})", path=where)
    for start, batch in scan_batches(ds, ["messages"]):
        _validate_batch(batch, where, start)


def _validate_batch(ds, where: str, first_row: int) -> None:
    import pyarrow.compute as pc

    from .schema import validate_episode

    if len(ds) == 0:
        return
    offsets, codes, contents = message_arrays(ds)
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
        return meta_field(ds, parts[1])
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
    for start, batch in scan_batches(ds, ["_meta"]):
        meta = arrow_column(batch, "_meta")
        values = meta.field(name) if name in [f.name for f in meta.type] else pa.nulls(len(meta), pa.string())
        encoded = pc.fill_null(values.cast(pa.string()), "_ungrouped").dictionary_encode()
        mapping = np.array([keys.setdefault(key, len(keys)) for key in encoded.dictionary.to_pylist()],
                           dtype=np.int64)
        codes[start:start + len(batch)] = mapping[encoded.indices.to_numpy(zero_copy_only=False)] \
            if len(mapping) else 0
    return codes, list(keys)


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
        lengths, sup_per_episode = length_and_supervised(tokenized)
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
            write_unpacked(out, tokenized, np.arange(n_episodes) if keep is None else keep, lengths)
            stats["rows"] = n_episodes
        else:
            blocks = pack_lengths(lengths, block_size, groups=codes, shuffle=shuffle, seed=config.seed)
            write_packed(out, tokenized, keep, blocks, lengths, block_size, pad_token_id)
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
    return file_dataset(out, in_memory), stats


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
    return shards_for(len(split), nbytes)


def load_prepared(directory: PathLike) -> Tuple[Any, PreparedMetadata]:
    """Load a prepared dataset: ``(DatasetDict, PreparedMetadata)``."""
    import datasets

    metadata = PreparedMetadata.load(directory)
    return datasets.load_from_disk(str(directory)), metadata


__all__ = ["METADATA_FILE", "SCHEMA", "PrepareOptions", "PrepareConfig", "PreparedMetadata", "prepare",
           "prepare_dataset", "save_prepared", "load_prepared", "build_token_dataset", "load_episode_inputs",
           "check_separation", "derive_payload", "template_signature", "tokenize_episodes", "group_values",
           "ChatTemplateEncoder", "PAYLOAD_PLACEHOLDER"]
