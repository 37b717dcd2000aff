"""The metadata of a prepared dataset (``mypt_metadata.json``): one typed object, read and written only here.

:func:`~mypt_hf.data.prepare.prepare_dataset` and
:func:`~mypt_hf.data.copy_pretraining.copy_pretraining_dataset` build a :class:`PreparedMetadata`; the trainer,
the inspector, the copy replay and the model card read its fields. ``PreparedMetadata.load(directory)`` refuses
a file with a missing or ill-typed field, naming the file and the field, so readers never guess at keys.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from ..errors import MyPTInputError
from ..io_utils import PathLike, write_json

METADATA_FILE = "mypt_metadata.json"
SCHEMA = "mypt_hf_sft_v1"


@dataclass
class TokenizerRecord:
    """The tokenizer a dataset was prepared with: enough to refuse a model whose tokenizer differs."""

    name: Optional[str]
    vocab_size: int
    model_vocab_size: int
    fingerprint: str


@dataclass
class PreparedMetadata:
    """What ``mypt_metadata.json`` holds about a prepared ``DatasetDict``.

    ``splits`` maps a split name to its statistics (``episodes``, ``rows``, ``tokens``, ``supervised_tokens``,
    ``mask_ratio``, ``dropped_overlong``, and ``packing`` when packed). ``config`` is
    ``dataclasses.asdict(PrepareConfig)`` of the preparation, ``inputs`` what else it was given (``val_file``,
    ``tokenizer`` spec); ``copy_pretraining`` holds the arguments of the copy-pretraining generator instead, and
    ``copy_replay`` what :func:`~mypt_hf.data.copy_pretraining.add_copy_replay` added.
    """

    schema: str
    prepare_mode: str
    splits: Dict[str, Dict[str, Any]]
    packing_enabled: bool
    block_size: int
    pad_token_id: Optional[int]
    tokenizer: TokenizerRecord
    content_fingerprints: Dict[str, str] = field(default_factory=dict)
    sources: List[Dict[str, Any]] = field(default_factory=list)
    val_sources: List[Dict[str, Any]] = field(default_factory=list)
    separation: Optional[Dict[str, Any]] = None
    pack_by_field: Optional[str] = None
    pack_shuffle: Optional[bool] = None
    seq_lengths_include_pad_segment: bool = False
    system_prompt_mode: Optional[str] = None
    system_prompt_override: Optional[str] = None
    payload_overlap_count: Optional[int] = None
    template_overlap_count: Optional[int] = None
    copy_replay: Optional[Dict[str, Any]] = None
    config: Optional[Dict[str, Any]] = None
    inputs: Dict[str, Any] = field(default_factory=dict)
    copy_pretraining: Optional[Dict[str, Any]] = None

    # ---- derived -------------------------------------------------------------------------------
    @property
    def train_rows(self) -> Optional[int]:
        """Rows of the training split (``splits.train.rows``), None when not recorded."""
        rows = (self.splits.get("train") or {}).get("rows")
        return rows if isinstance(rows, int) and not isinstance(rows, bool) else None

    def card_rows(self) -> Dict[str, Any]:
        """The flat headline numbers for the model card: layout, per-split counts, tokenizer."""
        out: Dict[str, Any] = {"schema": self.schema, "packing_enabled": self.packing_enabled,
                               "block_size": self.block_size, "pack_by_field": self.pack_by_field,
                               "prepare_mode": self.prepare_mode}
        for split, stats in self.splits.items():
            for key in ("episodes", "rows", "tokens", "supervised_tokens", "mask_ratio"):
                if key in stats:
                    out[f"{split}_{key}"] = stats[key]
        for key in ("name", "vocab_size", "model_vocab_size"):
            out[f"tokenizer_{key}"] = getattr(self.tokenizer, key)
        return out

    # ---- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict (the content of ``mypt_metadata.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Optional[PathLike] = None) -> "PreparedMetadata":
        """Build from a parsed ``mypt_metadata.json``; a missing or ill-typed field is a MyPTInputError naming
        ``path`` and the field. Keys this version does not know are ignored (files of later versions load)."""
        where = None if path is None else str(path)
        if not isinstance(data, Mapping):
            raise MyPTInputError(f"expected a JSON object, got {type(data).__name__}", path=where)
        values = _typed_fields(cls, data, where, prefix="")
        values["tokenizer"] = TokenizerRecord(**_typed_fields(TokenizerRecord, values["tokenizer"], where,
                                                              prefix="tokenizer."))
        return cls(**values)

    def save(self, directory: PathLike) -> None:
        """Write ``<directory>/mypt_metadata.json`` (atomically)."""
        write_json(Path(directory) / METADATA_FILE, self.to_dict())

    @classmethod
    def load(cls, directory: PathLike) -> "PreparedMetadata":
        """Read ``<directory>/mypt_metadata.json``; a directory without one is not a prepared dataset."""
        directory = Path(directory)
        path = directory / METADATA_FILE
        if not path.is_file():
            raise MyPTInputError(f"not a prepared dataset (no {METADATA_FILE})", path=str(directory))
        try:
            with path.open(encoding="utf-8") as handle:
                data = json.load(handle)
        except json.JSONDecodeError as error:
            raise MyPTInputError(f"invalid JSON ({error.msg} at line {error.lineno})", path=str(path)) from None
        except UnicodeDecodeError:
            raise MyPTInputError("not UTF-8 text (a damaged or binary file)", path=str(path)) from None
        return cls.from_dict(data, path=path)


def _typed_fields(cls: type, data: Any, where: Optional[str], prefix: str) -> Dict[str, Any]:
    """The values of ``cls``'s fields in ``data``, each checked against its annotation."""
    if not isinstance(data, Mapping):
        raise MyPTInputError(f"expected a JSON object, got {type(data).__name__}", path=where,
                             field=prefix.rstrip(".") or None)
    hints = typing.get_type_hints(cls)
    values: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise MyPTInputError("missing from the prepared-dataset metadata", path=where, field=name)
            continue
        value = data[f.name]
        hint = hints[f.name]
        if hint is TokenizerRecord:
            values[f.name] = value  # checked field by field by the caller
            continue
        if not _matches(value, hint):
            raise MyPTInputError(f"expected {_type_name(hint)}, got {type(value).__name__} ({value!r:.60})",
                                 path=where, field=name)
        values[f.name] = value
    return values


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field annotation (Optional, Dict, List, Any and the JSON scalar types)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union:
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin in (dict, Dict) or hint is dict:
        return isinstance(value, dict) and (not args or all(_matches(v, args[1]) for v in value.values()))
    if origin in (list, List) or hint is list:
        return isinstance(value, list) and (not args or all(_matches(v, args[0]) for v in value))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is Union:
        return " or ".join(_type_name(a) for a in args)
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint) or hint
    return {dict: "an object", list: "a list", bool: "a boolean", int: "an integer", float: "a number",
            str: "a string"}.get(origin, getattr(origin, "__name__", str(origin)))


__all__ = ["METADATA_FILE", "SCHEMA", "PreparedMetadata", "TokenizerRecord"]
