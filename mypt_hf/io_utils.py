"""Small I/O helpers shared by every writer: strict JSONL reading, deterministic JSONL writing,
and files (:func:`atomic_write`, :func:`write_text`) and output directories that appear whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

from .errors import MyPTInputError

PathLike = Union[str, os.PathLike]
T = TypeVar("T")


#: The longest JSONL line read (bytes). A chat episode of the largest block MyPT trains on (4,096 tokens) is well
#: under 100 KB of UTF-8; 16 MiB leaves room for any real episode while refusing a runaway line (a whole file
#: without newlines, a binary blob) before it is parsed, so reading it never holds more than this in memory.
MAX_JSONL_LINE_BYTES = 16 << 20


def _lines(handle: IO[bytes], path: Path, max_line_bytes: int, why: str) -> Iterator[Tuple[int, bytes]]:
    """``(1-based line number, raw bytes)`` per ``\n``-terminated line, as an editor counts lines (U+2028 and
    other Unicode separators inside a JSON string are not line ends); a line longer than ``max_line_bytes`` is
    refused after reading at most that many bytes of it."""
    for line_number, raw in enumerate(iter(lambda: handle.readline(max_line_bytes + 1), b""), start=1):
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            raise MyPTInputError(f"line longer than {max_line_bytes:,} bytes: {why}", path=str(path), line=line_number)
        yield line_number, raw


_TOO_LONG = "not an episode (a file without line breaks, or binary data?)"


def read_jsonl(path: PathLike, max_line_bytes: int = MAX_JSONL_LINE_BYTES) -> List[Dict[str, Any]]:
    """The rows of a JSONL file (see :func:`read_jsonl_numbered`)."""
    return [row for _, row in read_jsonl_numbered(path, max_line_bytes)]


def read_jsonl_numbered(path: PathLike, max_line_bytes: Optional[int] = None,
                        too_long: str = _TOO_LONG) -> List[Tuple[int, Dict[str, Any]]]:
    """``(1-based line number, row)`` of a JSONL file; every non-blank line must be a JSON object.

    Raises MyPTInputError naming the file and the 1-based line number (counting ``\n`` only) on the first bad
    line (invalid UTF-8, invalid JSON, not an object, longer than ``max_line_bytes`` (default
    :data:`MAX_JSONL_LINE_BYTES`; ``too_long`` says why in the error)), and when the file is missing, a directory
    or holds no rows.
    """
    max_line_bytes = MAX_JSONL_LINE_BYTES if max_line_bytes is None else max_line_bytes
    path = Path(path)
    if path.is_dir():
        raise MyPTInputError("is a directory, expected a JSONL file", path=str(path))
    if not path.is_file():
        raise MyPTInputError("file not found", path=str(path))
    rows: List[Tuple[int, Dict[str, Any]]] = []
    with path.open("rb") as handle:
        for line_number, raw in _lines(handle, path, max_line_bytes, too_long):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise MyPTInputError(f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})",
                                     path=str(path), line=line_number) from None
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
            rows.append((line_number, row))
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


def check_outputs_writable(paths: Iterable[PathLike], *, overwrite: bool, field: str = "output") -> None:
    """Before any work: refuse outputs that exist (unless ``overwrite``) or whose directory cannot be written.

    The nearest existing ancestor of each output must be a writable directory, so an unwritable location is
    found before the tokenizing or generating is done, not after.
    """
    for path in map(Path, paths):
        if path.exists() and not overwrite:
            raise MyPTInputError("output already exists (pass --overwrite to replace it)", path=str(path), field=field)
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise MyPTInputError(f"{ancestor} is not a directory", path=str(path), field=field)
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise MyPTInputError(f"cannot write in {ancestor} (permission denied)", path=str(path), field=field)


@contextlib.contextmanager
def atomic_files(paths: Sequence[PathLike]) -> Iterator[Dict[Path, Path]]:
    """Write several files that belong together: yields ``{final path: temporary path beside it}``; when the block
    ends normally every temporary file is renamed to its final path (one rename each, after all are written), and
    on any exception they are all removed and the final paths are left as they were."""
    finals = [Path(path) for path in paths]
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
    temps = {final: final.with_name(f".{final.name}.{secrets.token_hex(6)}.part") for final in finals}
    try:
        yield temps
        missing = [str(final) for final, temp in temps.items() if not temp.is_file()]
        if missing:
            raise RuntimeError(f"atomic_files: nothing was written for {missing}")
        for final, temp in temps.items():
            os.replace(temp, final)
    finally:
        for temp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL / ENOSYS / EOPNOTSUPP: the filesystem or kernel cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _swap_into_place(new: Path, path: Path) -> None:
    """Replace the existing ``path`` with ``new`` (beside it) and delete the old content.

    With RENAME_EXCHANGE the swap is one atomic step: ``path`` always holds either the old or the new output, and
    the old one ends at ``new``'s hidden name only to be deleted. Without it, two renames; an interrupt between them
    leaves the old output under ``.NAME.old-*``, which the next write to ``path`` restores or removes.
    """
    if _rename_exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)  # now the old content
        return
    backup = path.with_name(f".{path.name}.old-{secrets.token_hex(6)}")
    os.replace(path, backup)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(backup, path)  # put the old output back
        raise
    shutil.rmtree(backup, ignore_errors=True)


def _clean_leftovers(path: Path) -> None:
    """An earlier swap interrupted between its two renames left the old output only at ``.NAME.old-*``: put it back
    when ``path`` is missing, else delete it."""
    for old in sorted(path.parent.glob(f".{path.name}.old-*")):
        if not path.exists():
            os.replace(old, path)
        else:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_output_dir(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path`` in one rename.

    On any exception the temporary directory is removed and ``path`` is left untouched, so a
    failed run never leaves half-written output. An existing ``path`` is refused unless
    ``overwrite`` is true.
    """
    path = Path(path)
    if path.parent.is_dir():
        _clean_leftovers(path)
    if path.exists() and not overwrite:
        raise MyPTInputError("output directory already exists (pass --overwrite to replace it)", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.mkdir with 0o777 (not tempfile.mkdtemp, which forces 0o700): the directory that replaces ``path``
    # gets the permissions a plain mkdir would give it.
    tmp, _ = _create_beside(path, ".tmp", lambda name: os.mkdir(name, 0o777))
    try:
        yield tmp
        if path.exists():
            _swap_into_place(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
