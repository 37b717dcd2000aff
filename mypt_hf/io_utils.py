"""Small I/O helpers shared by every writer: strict JSONL reading, deterministic JSONL writing,
and output directories that appear whole or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Union

from .errors import MyPTInputError

PathLike = Union[str, os.PathLike]


def read_jsonl(path: PathLike) -> List[Dict[str, Any]]:
    """Read a JSONL file; every non-blank line must be a JSON object.

    Raises MyPTInputError naming the file and the 1-based line number on the first bad line,
    and when the file is missing or holds no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise MyPTInputError("file not found", path=str(path))
    rows: List[Dict[str, Any]] = []
    with path.open("r", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise MyPTInputError(f"invalid JSON ({error.msg} at column {error.colno})",
                                     path=str(path), line=line_number) from None
            if not isinstance(row, dict):
                raise MyPTInputError(f"expected a JSON object, got {type(row).__name__}",
                                     path=str(path), line=line_number)
            rows.append(row)
    if not rows:
        raise MyPTInputError("file holds no rows", path=str(path))
    return rows


def dumps_jsonl_row(row: Dict[str, Any]) -> str:
    """One JSONL line, UTF-8 text kept as is (the original writes with ensure_ascii=False)."""
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": "))


def write_jsonl(path: PathLike, rows: Iterable[Dict[str, Any]]) -> int:
    """Write rows to ``path`` atomically (temporary file, then rename). Returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(dumps_jsonl_row(row))
                handle.write("\n")
                count += 1
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return count


def write_json(path: PathLike, obj: Any) -> None:
    """Write pretty, key-sorted JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            json.dump(obj, handle, ensure_ascii=False, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_output_dir(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path`` in one rename.

    On any exception the temporary directory is removed and ``path`` is left untouched, so a
    failed run never leaves half-written output. An existing ``path`` is refused unless
    ``overwrite`` is true.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise MyPTInputError("output directory already exists (pass --overwrite to replace it)", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=str(path.parent)))
    try:
        yield tmp
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=str(path.parent)))
            backup.rmdir()
            os.replace(path, backup)
            os.replace(tmp, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
