"""Which tokenizer a generated episode file was filtered with, and the check that prepare uses the same one.

Two generators filter by token counts: ``generate-echo --bpe_safe`` keeps made-up words of at most
``--max_target_tokens`` tokens (γ's "BPE-safe" words) and ``generate-operators --max_tokens`` drops payloads
longer than that. Measured with another vocabulary, the filter lets through words the preparing tokenizer splits
into many pieces, and nothing in the episodes shows it. So each generator records the tokenizer it measured with
(``tokenizer_filter`` in the metadata it writes beside its JSONL), ``mix`` carries its inputs' records into its own
metadata (``tokenizer_filters``), and :func:`check_tokenizer_filters` — run by prepare before tokenizing —
refuses a file filtered with a tokenizer other than the one preparing it, naming both.

Where the metadata lives (the generators' own layout):

- ``<stem>.meta.json`` beside ``<stem>.jsonl`` (generate-echo, generate-format-lock);
- ``<stem>.mix_meta.json`` beside ``<stem>.jsonl`` (mix);
- ``dataset_metadata.json`` in the directory of ``operator_train.jsonl`` / ``operator_val.jsonl``.

A file without such metadata (written by hand or by another tool) is not checked; prepare says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..errors import MyPTInputError

#: The operator generator writes one metadata file for its two splits.
OPERATOR_METADATA = "dataset_metadata.json"
OPERATOR_OUTPUTS = ("operator_train.jsonl", "operator_val.jsonl")


@dataclass(frozen=True)
class TokenizerFilter:
    """One token-count filter applied to a file: which tokenizer measured, and what it filtered."""

    spec: str
    fingerprint: str
    what: str


def tokenizer_filter_record(spec: Optional[str], fingerprint: str, what: str) -> Dict[str, str]:
    """The ``tokenizer_filter`` entry a generator writes into its metadata (``spec`` None = the embedded one)."""
    return asdict(TokenizerFilter(spec=spec or "embedded", fingerprint=fingerprint, what=what))


def metadata_beside(path: Path) -> Optional[Path]:
    """The metadata file a generator or ``mix`` wrote beside ``path``, or None when there is none."""
    candidates = [path.with_name(path.stem + ".meta.json"), path.with_name(path.stem + ".mix_meta.json")]
    if path.name in OPERATOR_OUTPUTS:
        candidates.append(path.with_name(OPERATOR_METADATA))
    return next((c for c in candidates if c.is_file()), None)


def _read_metadata(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise MyPTInputError("not UTF-8 text (a damaged or binary file)", path=str(path)) from None
    except json.JSONDecodeError as error:
        raise MyPTInputError(f"invalid JSON ({error.msg} at line {error.lineno})", path=str(path)) from None
    if not isinstance(data, dict):
        raise MyPTInputError(f"expected a JSON object, got {type(data).__name__}", path=str(path))
    return data


def _filter_from(entry: Any, metadata: Path, field: str) -> TokenizerFilter:
    if not (isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("spec", "fingerprint", "what"))):
        raise MyPTInputError("expected an object with string fields spec, fingerprint and what", path=str(metadata),
                             field=field)
    return TokenizerFilter(spec=entry["spec"], fingerprint=entry["fingerprint"], what=entry["what"])


def tokenizer_filters(path: Path) -> Optional[List[TokenizerFilter]]:
    """The token-count filters recorded for the episode file ``path``: None when no metadata lies beside it,
    an empty list when its metadata says no tokenizer filtered it."""
    metadata = metadata_beside(path)
    if metadata is None:
        return None
    data = _read_metadata(metadata)
    filters: List[TokenizerFilter] = []
    if data.get("tokenizer_filter") is not None:
        filters.append(_filter_from(data["tokenizer_filter"], metadata, "tokenizer_filter"))
    for i, entry in enumerate(data.get("tokenizer_filters") or []):
        filters.append(_filter_from(entry, metadata, f"tokenizer_filters[{i}]"))
    return filters


def check_tokenizer_filters(paths: Sequence[Path], tokenizer_name: str, fingerprint: str, *,
                            allow_mismatch: bool = False,
                            log: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Refuse an episode file filtered by token counts with a tokenizer other than the preparing one.

    ``tokenizer_name``/``fingerprint``: the preparing tokenizer. Returns one record per file (for the prepared
    dataset's metadata): the filters found, and whether they match. ``allow_mismatch`` turns the refusal into a
    printed warning (the data is then knowingly filtered with another vocabulary).
    """
    records: List[Dict[str, Any]] = []
    unchecked: List[str] = []
    for path in paths:
        filters = tokenizer_filters(path)
        if filters is None:
            unchecked.append(str(path))
            records.append({"file": str(path), "metadata": None, "filters": None, "matches": None})
            continue
        mismatched = [f for f in filters if f.fingerprint != fingerprint]
        records.append({"file": str(path), "metadata": str(metadata_beside(path)),
                        "filters": [asdict(f) for f in filters], "matches": not mismatched})
        for f in mismatched:
            message = (f"was filtered with tokenizer {f.spec} (fingerprint {f.fingerprint[:12]}; {f.what}) but is "
                       f"being prepared with tokenizer {tokenizer_name} (fingerprint {fingerprint[:12]}), so its "
                       f"token-count filter measured another vocabulary; regenerate it with --tokenizer "
                       f"{tokenizer_name}, or pass --allow_tokenizer_mismatch to prepare it anyway")
            if not allow_mismatch:
                raise MyPTInputError(message, path=str(path), field="tokenizer")
            log(f"warning: {path} {message.split('; regenerate')[0]} (--allow_tokenizer_mismatch)")
    if unchecked:
        log(f"note: no generator metadata beside {', '.join(unchecked)}: which tokenizer filtered it is not checked")
    return records


__all__ = ["TokenizerFilter", "tokenizer_filter_record", "metadata_beside", "tokenizer_filters",
           "check_tokenizer_filters"]
