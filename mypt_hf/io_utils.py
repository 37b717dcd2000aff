"""Small I/O helpers shared by every writer: strict JSONL reading, deterministic JSONL writing,
and files (:func:`atomic_write`, :func:`write_text`) and output directories that appear whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

from .errors import MyPTInputError

PathLike = Union[str, os.PathLike]
T = TypeVar("T")


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


def sha256_file(path: PathLike) -> str:
    """The sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dumps_jsonl_row(row: Dict[str, Any]) -> str:
    """One JSONL line, UTF-8 text kept as is (the original writes with ensure_ascii=False)."""
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": "))


def _create_beside(path: Path, suffix: str, create: Callable[[Path], T]) -> Tuple[Path, T]:
    """``create(name)`` for a fresh hidden name beside ``path``; ``create`` must fail on an existing name."""
    for _ in range(100):
        name = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            return name, create(name)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", *, encoding: Optional[str] = "utf-8",
                 newline: Optional[str] = "\n") -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears whole or not at all; yields the file handle.

    The data goes to a temporary file beside ``path`` (same directory, so the rename is atomic), which
    replaces ``path`` when the block ends normally; on any exception it is removed and ``path`` is left as
    it was. Missing parent directories are created. ``mode`` is ``"w"`` (text: UTF-8, ``"\\n"`` line ends
    by default) or ``"wb"``. The file gets the permissions ``open(path, mode)`` would give a new file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL with mode 0o666 (what open() passes): the kernel applies the umask and any default ACL itself;
    # tempfile.mkstemp would force 0o600, and reading the umask to undo that is racy.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    tmp, fd = _create_beside(path, ".tmp", lambda name: os.open(name, flags, 0o666))
    try:
        handle = os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    try:
        with handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8, ``"\\n"`` line ends; see :func:`atomic_write`)."""
    with atomic_write(path) as handle:
        handle.write(text)


def write_jsonl(path: PathLike, rows: Iterable[Dict[str, Any]]) -> int:
    """Write rows to ``path`` atomically (temporary file, then rename). Returns the row count."""
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(dumps_jsonl_row(row))
            handle.write("\n")
            count += 1
    return count


def write_json(path: PathLike, obj: Any) -> None:
    """Write pretty, key-sorted JSON atomically."""
    with atomic_write(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2, sort_keys=True)
        handle.write("\n")


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
    # os.mkdir with 0o777 (not tempfile.mkdtemp, which forces 0o700): the directory that replaces ``path``
    # gets the permissions a plain mkdir would give it.
    tmp, _ = _create_beside(path, ".tmp", lambda name: os.mkdir(name, 0o777))
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
