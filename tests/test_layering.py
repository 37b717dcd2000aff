"""The house's import rules, checked on the source so they cannot drift (DESIGN.md, "Layout"):

- imports point one way: CLI adapters → phase orchestration → training / data / evaluation → model and tokenizer
  → tokens / errors / io; a module imports only from its own room or the rooms below it;
- no module imports another module's private (underscore) name.

Every import statement counts, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mypt_hf"

# top room first; a module may import from its own room and any room after it
ROOMS: List[Tuple[str, Tuple[str, ...]]] = [
    ("cli", ("mypt_hf.cli", "mypt_hf.commands")),
    ("phases", ("mypt_hf.phases",)),
    ("libraries", ("mypt_hf.training", "mypt_hf.data", "mypt_hf.evaluation")),
    ("model", ("mypt_hf.configuration_mypt", "mypt_hf.modeling_mypt", "mypt_hf.tokenization_mypt",
               "mypt_hf.convert", "mypt_hf.gguf_export", "mypt_hf.generation", "mypt_hf.embedded")),
    ("ground", ("mypt_hf.tokens", "mypt_hf.errors", "mypt_hf.io_utils", "mypt_hf")),
]


def room_of(module: str) -> int:
    """Index of the room holding ``module`` (the longest matching prefix wins)."""
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(ROOMS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no room of tests/test_layering.py: place it")
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(importer: str, source: str, is_package: bool) -> Iterator[Tuple[int, str, List[str]]]:
    """``(line, imported module, imported names)`` of every mypt_hf import in ``source`` (relative ones resolved)."""
    package = importer if is_package else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mypt_hf":
                    yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "mypt_hf":
                yield node.lineno, target, [alias.name for alias in node.names]


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent / Path(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(importer: str, source: str, is_package: bool = False) -> List[str]:
    """What in ``source`` (the module ``importer``) breaks the rules, one line each."""
    problems = []
    for line, target, names in imports(importer, source, is_package):
        modules = [f"{target}.{name}" if _is_module(f"{target}.{name}") else target for name in names] or [target]
        for module in modules:
            if room_of(module) < room_of(importer):
                problems.append(f"line {line}: {importer} ({ROOMS[room_of(importer)][0]}) imports {module} "
                                f"({ROOMS[room_of(module)][0]}), a room above it")
        for name in names:
            if name.startswith("_") and not name.startswith("__"):
                problems.append(f"line {line}: {importer} imports the private name {name} from {target}")
    return problems


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_point_down_and_use_public_names(path):
    importer = module_name(path)
    if importer == "mypt_hf":
        return  # the package root only points at its parts lazily (PEP 562)
    problems = violations(importer, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py")
    assert not problems, "\n".join(problems)


def test_the_rules_catch_a_violation():
    """The check itself flags an upward import (relative or absolute) and a private name, and passes a
    downward import of public names, so a pass means something."""
    assert violations("mypt_hf.data.mixing", "from ..phases.run import PhaseRun\n")
    assert violations("mypt_hf.training.trainer", "def f():\n    import mypt_hf.cli\n")
    assert violations("mypt_hf.evaluation.suite", "from mypt_hf.commands.eval import run\n")
    assert any("private name _flat" in p for p in violations("mypt_hf.data.mixing", "from .prepare import _flat\n"))
    assert violations("mypt_hf.tokens", "from .tokenization_mypt import load_tokenizer\n")
    assert not violations("mypt_hf.phases.run", "from ..data.prepare import prepare_dataset\nfrom ..errors import "
                                                "MyPTInputError\nfrom . import registry\n")
