"""Episode columns read straight from arrow, in bounded passes: role codes, contents, ``_meta`` fields.

Every pass over all episodes (validation, the separation gate, pack groups) goes through :func:`scan_batches`, so no
pass holds a whole column in Python, and each batch reads a memory mapping of its own (:func:`mapped_anew`), so the
pages a pass reads do not stay in the resident set while the preparation goes on.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np


def arrow_column(ds, column: str):
    """A column as one pyarrow array (respecting any select()/indices mapping)."""
    import pyarrow as pa

    col = ds.with_format("arrow")[column]
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col


def meta_field(ds, name: str) -> List[Optional[str]]:
    if "_meta" not in ds.column_names:
        return [None] * len(ds)
    col = arrow_column(ds, "_meta")
    if name not in [f.name for f in col.type]:
        return [None] * len(ds)
    return col.field(name).to_pylist()


def message_arrays(ds) -> Tuple[np.ndarray, np.ndarray, Any]:
    """(row offsets, role codes (0 system, 1 user, 2 assistant, -1 other/None), contents arrow array)."""
    import pyarrow.compute as pc

    col = arrow_column(ds, "messages")
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


def scan_batches(ds, columns: Sequence[str]):
    """``(first row, batch Dataset)`` over ``ds`` in :data:`SCAN_BATCH_ROWS` pieces, so no pass holds a whole column
    (a slice of a memory-mapped dataset reads only its own rows; select()/indices mappings are respected); each
    batch reads a mapping of its own (:func:`mapped_anew`), so the pages read are given back batch by batch."""
    ds = ds.select_columns(list(columns))
    for start in range(0, len(ds), SCAN_BATCH_ROWS):
        yield start, mapped_anew(ds.select(range(start, min(start + SCAN_BATCH_ROWS, len(ds)))))
    release_arrow_memory()


__all__ = ["SCAN_BATCH_ROWS", "arrow_column", "mapped_anew", "meta_field", "message_arrays", "release_arrow_memory",
           "scan_batches"]
