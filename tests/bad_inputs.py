"""The harness of the table-driven bad-input tests (tests/test_bad_inputs*.py).

A :class:`Case` is one command line of ``mypt-hf`` run on bad input. :func:`run_case` builds its workspace
(the files the case names, written into a fresh directory), runs the command in-process through
``mypt_hf.cli.main`` from inside that directory, and asserts the contract of ``mypt_hf.exit_codes``:

* the exit status is the case's (2 bad input unless it says otherwise);
* stderr holds no traceback and exactly one ``mypt-hf <command>: error:`` line (``FAIL:`` for status 1),
  and that line names what the case says it must (file, line, field, ...);
* nothing new appears in the workspace or in the shared fixtures, and every file that was there before
  is byte-identical afterwards (so nothing is written under the output path and no input is touched).

Placeholders in ``argv``, ``says`` and file names are filled from :class:`Fixtures` and the workspace:
``{ws}`` the case's directory, ``{episodes}`` a good chat JSONL, ``{dataset}`` a prepared dataset dir,
``{model}`` a saved tiny model dir. Bytes in ``files`` are written as they are, text as UTF-8.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from mypt_hf.cli import main as cli_main

FileContent = Union[str, bytes, Callable[["Fixtures", Path], None]]


@dataclass(frozen=True)
class Fixtures:
    """Good inputs every case may point at (built once per test session, never modified by a case)."""

    root: Path
    episodes: Path
    dataset: Path
    model: Path

    def placeholders(self, workspace: Path) -> Dict[str, str]:
        return {"ws": str(workspace), "episodes": str(self.episodes), "dataset": str(self.dataset),
                "model": str(self.model)}


@dataclass(frozen=True)
class Case:
    """One bad command line and what it must produce."""

    id: str
    argv: Sequence[str]
    says: Tuple[str, ...] = ()
    files: Mapping[str, FileContent] = field(default_factory=dict)
    code: int = 2
    # chmod applied after the files are written, e.g. {"in.jsonl": 0o000} (skipped when running as root
    # makes permissions meaningless: see :func:`permissions_enforced`)
    modes: Mapping[str, int] = field(default_factory=dict)

    def __str__(self) -> str:  # the pytest id
        return self.id


def permissions_enforced() -> bool:
    """False when running as root, where a chmod 000 file stays readable."""
    return not (hasattr(os, "geteuid") and os.geteuid() == 0)


def snapshot(*roots: Path) -> Dict[str, Tuple[str, str]]:
    """path -> (kind, sha256 or "") for everything under ``roots``."""
    seen: Dict[str, Tuple[str, str]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames:
                seen[os.path.join(dirpath, name)] = ("dir", "")
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                except PermissionError:
                    digest = "unreadable"
                seen[path] = ("file", digest)
    return seen


def _fill(text: str, values: Mapping[str, str]) -> str:
    return text.format(**values)


def build_workspace(case: Case, fixtures: Fixtures, workspace: Path) -> Dict[str, str]:
    values = fixtures.placeholders(workspace)
    for name, content in case.files.items():
        path = workspace / _fill(name, values)
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(fixtures, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(_fill(content, values), encoding="utf-8")
    for name, mode in case.modes.items():
        os.chmod(workspace / _fill(name, values), mode)
    return values


def run_case(case: Case, fixtures: Fixtures, workspace: Path, capsys, monkeypatch) -> str:
    """Run ``case`` and assert the contract; returns the error line."""
    workspace.mkdir(parents=True, exist_ok=True)
    values = build_workspace(case, fixtures, workspace)
    argv = [_fill(arg, values) for arg in case.argv]
    before = snapshot(workspace, fixtures.root)
    monkeypatch.chdir(workspace)
    capsys.readouterr()
    try:
        code = cli_main(argv)
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code if isinstance(exit_.code, int) else 2
    err = capsys.readouterr().err
    try:
        assert "Traceback" not in err, f"{case.id}: traceback on stderr:\n{err}"
        assert code == case.code, f"{case.id}: exit {code}, expected {case.code}; stderr:\n{err}"
        marker = f"mypt-hf {argv[0]}: {'FAIL' if case.code == 1 else 'error'}:"
        lines = [line for line in err.splitlines() if line.startswith(marker) or line.startswith(f"mypt-hf {argv[0]}: error:")]
        assert len(lines) == 1, f"{case.id}: expected one {marker!r} line, got:\n{err}"
        line = lines[0]
        for needle in case.says:
            needle = _fill(needle, values)
            assert needle in line, f"{case.id}: error line does not name {needle!r}:\n{line}"
        after = snapshot(workspace, fixtures.root)
        added = sorted(set(after) - set(before))
        changed = sorted(path for path in before if after.get(path) != before[path])
        assert not added, f"{case.id}: wrote {added}"
        assert not changed, f"{case.id}: changed or removed {changed}"
        return line
    finally:
        for name in case.modes:  # let pytest clean up
            path = workspace / _fill(name, values)
            if path.exists():
                os.chmod(path, stat.S_IRWXU)


def copy_fixture(name: str, damage: Optional[Callable[[Path], None]] = None) -> Callable[[Fixtures, Path], None]:
    """A ``files`` entry: a copy of the fixture ``name`` ("dataset" or "model"), then ``damage(copy)``."""

    def write(fixtures: Fixtures, path: Path) -> None:
        shutil.copytree(getattr(fixtures, name), path)
        if damage is not None:
            damage(path)

    return write
