"""Token splits streamed to arrow files: the rows of one split laid out and written in bounded batches.

The tokenized episodes stay in their arrow cache file; only per-episode lengths and supervised counts come into
memory (:func:`length_and_supervised`), the packer plans blocks from those, and :func:`write_packed` /
:func:`write_unpacked` read the episodes of a batch of rows back and write them, in the record batches
``save_to_disk`` copies, so the saved bytes are the ones an in-memory build of the whole split gave
(:class:`_SplitWriter`). :func:`build_token_dataset` is that in-memory build, for small token sets.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .episode_arrays import mapped_anew
from .metadata import SCHEMA
from .packing import IGNORE_INDEX, build_blocks


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


#: episodes / blocks per arrow batch when a split is laid out and written (bounds the memory of that step)
WRITE_BATCH_EPISODES = 50_000
WRITE_BATCH_BLOCKS = 250

TOKEN_COLUMNS = ("input_ids", "labels", "seq_lengths")


def token_features():
    import datasets

    return datasets.Features({name: datasets.List(datasets.Value("int32")) for name in TOKEN_COLUMNS})


def length_and_supervised(tokenized) -> Tuple[np.ndarray, np.ndarray]:
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

        nbytes = sum(4 * (n_rows + 1) + 4 * n_values[name] for name in TOKEN_COLUMNS)
        self.num_shards = shards_for(n_rows, nbytes)
        batch = min(ds_config.DEFAULT_MAX_BATCH_SIZE, get_writer_batch_size_from_data_size(n_rows, nbytes))
        div, mod = divmod(n_rows, self.num_shards)
        cuts = set()
        for shard in range(self.num_shards):  # Dataset.shard(contiguous=True)'s ranges
            start, end = div * shard + min(shard, mod), div * (shard + 1) + min(shard + 1, mod)
            cuts.update(range(start + batch, end, batch))
            cuts.add(end)
        self._cuts = sorted(c for c in cuts if c > 0)
        self._writer = ArrowWriter(features=token_features(), path=str(path), writer_batch_size=batch)
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
        taken: Dict[str, List[Tuple[np.ndarray, np.ndarray]]] = {name: [] for name in TOKEN_COLUMNS}
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


def shards_for(n_rows: int, nbytes: int) -> int:
    """The shard count ``save_to_disk`` picks for an in-memory table of ``nbytes``."""
    from datasets import config as ds_config
    from datasets.utils.py_utils import convert_file_size_to_int

    shards = int(nbytes / convert_file_size_to_int(ds_config.MAX_SHARD_SIZE)) + 1
    return max(1, min(n_rows, shards))


def write_unpacked(path: Path, tokenized, keep: np.ndarray, lengths: np.ndarray) -> None:
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


def write_packed(path: Path, tokenized, keep: Optional[np.ndarray], blocks: List[np.ndarray], lengths: np.ndarray,
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
    for name in TOKEN_COLUMNS:
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


def file_dataset(path: Path, in_memory: bool):
    """The split written at ``path`` as a Dataset with its content fingerprint (memory-mapped, or read in)."""
    import datasets
    from datasets.table import InMemoryTable, MemoryMappedTable

    table = InMemoryTable.from_file(str(path)) if in_memory else MemoryMappedTable.from_file(str(path))
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=token_features()),
                            fingerprint=_content_fingerprint(path))


__all__ = ["TOKEN_COLUMNS", "WRITE_BATCH_BLOCKS", "WRITE_BATCH_EPISODES", "build_token_dataset", "file_dataset",
           "length_and_supervised", "shards_for", "token_features", "write_packed", "write_unpacked"]
