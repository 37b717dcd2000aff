"""Opening a prepared dataset directory for training and the model checks, with damaged files named.

``datasets.load_from_disk`` reports a damaged file as a bare ``ArrowInvalid`` / ``JSONDecodeError`` without
its path; :func:`load_prepared_checked` names the file, and :func:`damaged_dataset_file` finds it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Tuple

from ..errors import MyPTInputError

DATASET_DICT_FILE = "dataset_dict.json"
SPLIT_JSON_FILES = ("state.json", "dataset_info.json")


def _json_problem(path: Path) -> Optional[str]:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return f"not valid JSON ({getattr(error, 'msg', type(error).__name__)})"
    return None


def _arrow_problem(path: Path) -> Optional[str]:
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            pa.ipc.open_stream(source).read_all()
    except (pa.ArrowException, OSError, ValueError) as error:
        return f"not a readable Arrow file ({str(error).splitlines()[0][:200]})"
    return None


def damaged_dataset_file(directory: str | Path) -> Optional[Tuple[Path, str]]:
    """``(file, what is wrong)`` for the first file of a saved DatasetDict that does not read, or ``None``."""
    directory = Path(directory)
    top = directory / DATASET_DICT_FILE
    if not top.is_file():
        return top, "missing (not a saved DatasetDict; prepare it with mypt-hf prepare-chat-sft)"
    problem = _json_problem(top)
    if problem:
        return top, problem
    try:
        splits = json.loads(top.read_text(encoding="utf-8")).get("splits", [])
    except AttributeError:
        return top, "expected a JSON object with 'splits'"
    for split in splits if isinstance(splits, list) else []:
        split_dir = directory / str(split)
        for name in SPLIT_JSON_FILES:
            path = split_dir / name
            if not path.is_file():
                return path, "missing"
            problem = _json_problem(path)
            if problem:
                return path, problem
        try:
            files = [entry["filename"] for entry in json.loads((split_dir / "state.json").read_text())["_data_files"]]
        except (KeyError, TypeError, AttributeError):
            return split_dir / "state.json", "lacks the '_data_files' list of its Arrow files"
        for filename in files:
            path = split_dir / str(filename)
            if not path.is_file():
                return path, "missing"
            problem = _arrow_problem(path)
            if problem:
                return path, problem
    return None


def load_prepared_checked(directory: str | Path, *, field: str = "dataset_dir") -> Tuple[Any, Any]:
    """``mypt_hf.data.prepare.load_prepared(directory)`` (the DatasetDict and its PreparedMetadata), with a missing
    directory or a damaged file a MyPTInputError naming it."""
    from ..data.metadata import METADATA_FILE, PreparedMetadata
    from ..data.prepare import load_prepared

    directory = Path(directory)
    if not directory.is_dir():
        raise MyPTInputError("dataset directory not found" if not directory.exists() else
                             "expected a prepared dataset directory, got a file", path=str(directory), field=field)
    try:  # a directory that is no prepared dataset is said so before its files
        PreparedMetadata.load(directory)
    except UnicodeDecodeError:  # PreparedMetadata.load reports bad JSON, not bytes that are no text
        raise MyPTInputError("not a JSON text file (not UTF-8); prepare the dataset again",
                             path=str(directory / METADATA_FILE), field=field) from None
    damaged = damaged_dataset_file(directory)
    if damaged is not None:
        path, problem = damaged
        raise MyPTInputError(f"{problem}; prepare the dataset again", path=str(path), field=field)
    return load_prepared(directory)


def load_dataset_dict_checked(directory: str | Path, *, field: str = "dataset_dir") -> Any:
    """``datasets.load_from_disk(directory)`` with the same checks as :func:`load_prepared_checked` (no metadata)."""
    import datasets

    directory = Path(directory)
    if not directory.is_dir():
        raise MyPTInputError("dataset directory not found" if not directory.exists() else
                             "expected a prepared dataset directory, got a file", path=str(directory), field=field)
    damaged = damaged_dataset_file(directory)
    if damaged is not None:
        path, problem = damaged
        raise MyPTInputError(f"{problem}; prepare the dataset again", path=str(path), field=field)
    return datasets.load_from_disk(str(directory))


__all__ = ["damaged_dataset_file", "load_prepared_checked", "load_dataset_dict_checked"]
