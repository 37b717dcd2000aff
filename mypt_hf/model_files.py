"""Checks on a saved model directory's files before a library opens them.

``from_pretrained`` reports a missing tokenizer as "install sentencepiece or tiktoken", a truncated
``model.safetensors`` as a bare ``SafetensorError`` and a broken ``config.json`` as an ``OSError`` without a
path; these checks name the directory, the file and what would make it valid instead (a
:class:`~mypt_hf.errors.MyPTInputError`). They read only file headers, so they are cheap enough to run before
every load. Ground floor: nothing here imports torch or another mypt_hf module but the errors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .errors import MyPTInputError

PathLike = Union[str, os.PathLike]
CONFIG_FILE = "config.json"
#: Weight files ``from_pretrained`` reads, in the order it prefers them.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
#: A fast tokenizer loads from ``tokenizer.json``, or (a plain GPT-2 directory) from ``vocab.json`` + ``merges.txt``.
TOKENIZER_FILE_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))


def safetensors_problem(path: PathLike) -> Optional[str]:
    """Why the safetensors file ``path`` cannot be loaded (``None`` when its header parses and the file is as
    long as the header promises): a truncated or overwritten file fails here instead of mid-load."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return f"{path.name} is truncated ({size} bytes; not a safetensors file)"
            length = int.from_bytes(prefix, "little")
            if length <= 0 or 8 + length > size:
                return f"{path.name} is truncated or not a safetensors file (its header length does not fit the file)"
            header = json.loads(handle.read(length))
    except (UnicodeDecodeError, ValueError):
        return f"{path.name} is damaged (its header is not the JSON a safetensors file starts with)"
    if not isinstance(header, dict):
        return f"{path.name} is damaged (its header is not a JSON object)"
    try:
        ends = [int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"]
    except (KeyError, TypeError, ValueError, IndexError):
        return f"{path.name} is damaged (a tensor entry of its header lacks data_offsets)"
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"{path.name} is truncated ({size} of {expected} bytes)"
    return None


def read_model_config(directory: PathLike, *, field: str = "model") -> dict:
    """``directory/config.json`` as a dict; a MyPTInputError naming the file when it is missing or not a JSON object."""
    directory = Path(directory)
    config = directory / CONFIG_FILE
    if not config.is_file():
        raise MyPTInputError(f"not a saved model directory (no {CONFIG_FILE}; expected a save_pretrained output)",
                             path=str(directory), field=field)
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise MyPTInputError("not a JSON file (not UTF-8 text); re-save the model with save_pretrained",
                             path=str(config), field=field) from None
    except json.JSONDecodeError as error:
        raise MyPTInputError(f"invalid JSON ({error.msg}); re-save the model with save_pretrained",
                             path=str(config), line=error.lineno, field=field) from None
    if not isinstance(data, dict):
        raise MyPTInputError("expected a JSON object of model settings", path=str(config), field=field)
    return data


def tokenizer_files_missing(directory: PathLike) -> Optional[str]:
    """``None`` when ``directory`` holds the files a tokenizer loads from, else which files it would need."""
    directory = Path(directory)
    if any(all((directory / name).is_file() for name in names) for names in TOKENIZER_FILE_SETS):
        return None
    return " or ".join(" + ".join(names) for names in TOKENIZER_FILE_SETS)


def check_saved_model_dir(directory: PathLike, *, field: str = "model", need_tokenizer: bool = True,
                          tokenizer_hint: str = "save the tokenizer into it (tokenizer.save_pretrained(dir))") -> None:
    """Refuse a model directory ``from_pretrained`` would fail on, naming the file and what is wrong.

    Checks: the directory exists; ``config.json`` is a JSON object; a weight file is present and, for
    ``model.safetensors``, whole; with ``need_tokenizer``, the tokenizer files (``tokenizer_hint`` says how to fix
    their absence, e.g. "pass --tokenizer").
    """
    directory = Path(directory)
    if not directory.exists():
        raise MyPTInputError("model directory not found", path=str(directory), field=field)
    if not directory.is_dir():
        raise MyPTInputError("expected a model directory (save_pretrained output), got a file",
                             path=str(directory), field=field)
    read_model_config(directory, field=field)
    weights = [directory / name for name in WEIGHT_FILES if (directory / name).is_file()]
    if not weights:
        raise MyPTInputError(f"no model weights (expected one of {', '.join(WEIGHT_FILES)})", path=str(directory),
                             field=field)
    if weights[0].name == "model.safetensors":
        problem = safetensors_problem(weights[0])
        if problem is not None:
            raise MyPTInputError(f"{problem}; copy or save the model again", path=str(weights[0]), field=field)
    if need_tokenizer:
        missing = tokenizer_files_missing(directory)
        if missing is not None:
            raise MyPTInputError(f"no tokenizer files (needs {missing}); {tokenizer_hint}", path=str(directory),
                                 field=field)


def load_causal_lm(directory: PathLike, *, field: str = "model", dtype: Any = None) -> Any:
    """``AutoModelForCausalLM.from_pretrained(directory)`` after :func:`check_saved_model_dir` (no tokenizer check);
    a config or weights the model class refuses (a field of the wrong type, shapes that disagree) is a
    MyPTInputError naming the directory."""
    from transformers import AutoModelForCausalLM

    import mypt_hf  # noqa: F401  (registers MyPT with the Auto classes)

    check_saved_model_dir(directory, field=field, need_tokenizer=False)
    kwargs = {} if dtype is None else {"dtype": dtype}
    try:
        return AutoModelForCausalLM.from_pretrained(str(directory), **kwargs)
    except (ValueError, TypeError, KeyError, RuntimeError) as error:
        # The files are whole (checked above), so a refusal here is about their content.
        summary = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise MyPTInputError(f"cannot load the model ({type(error).__name__}: {summary})", path=str(directory),
                             field=field) from None
    except OSError as error:
        if error.filename is not None:
            raise
        summary = (str(error).strip().splitlines() or ["OSError"])[0][:300]
        raise MyPTInputError(f"cannot load the model ({summary})", path=str(directory), field=field) from None


__all__: Sequence[str] = ["CONFIG_FILE", "WEIGHT_FILES", "TOKENIZER_FILE_SETS", "safetensors_problem",
                          "read_model_config", "tokenizer_files_missing", "check_saved_model_dir", "load_causal_lm"]
