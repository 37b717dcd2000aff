"""Errors with a user-facing meaning.

``MyPTInputError`` is raised for bad input (files, rows, arguments). The CLI prints its message
and exits with status 2; library callers get a ``ValueError`` subclass they can catch.
"""

from __future__ import annotations

from typing import Optional


class MyPTInputError(ValueError):
    """Bad input: names the file, the line or row, and the field where known."""

    def __init__(self, message: str, *, path: Optional[str] = None, line: Optional[int] = None,
                 field: Optional[str] = None) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        self.path, self.line, self.field, self.message = path, line, field, message
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class GateFailure(RuntimeError):
    """An evaluation gate or a consistency check failed (CLI exit status 1)."""
