"""The train/validation separation gate: payloads and template signatures, and the check that no split shares one.

A payload is what an episode asks to copy, wrap or extract (``_meta.payload``, else derived from the first user
message); the template signature is that message with the payload replaced by ``{PAYLOAD}``. Both are worked out
batch by batch into arrow string arrays (a Python string per episode would cost ~100 bytes each).
"""

from __future__ import annotations

import re
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..errors import GateFailure
from .episode_arrays import message_arrays, meta_field, scan_batches

PAYLOAD_PLACEHOLDER = "{PAYLOAD}"

_QUOTED = re.compile(r'"([^"]+)"')
_WS = re.compile(r"\s+")


def derive_payload(user: str, meta: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """The payload of an episode: ``_meta.payload`` if set; else, from the first user message, the first
    double-quoted substring; else the text after the first ":" of a single-line message; else None."""
    if meta and meta.get("payload"):
        return meta["payload"]
    match = _QUOTED.search(user)
    if match:
        return match.group(1)
    if "\n" not in user and ":" in user:
        rest = user.split(":", 1)[1].strip()
        return rest or None
    return None


def template_signature(user: str, payload: Optional[str]) -> str:
    """The user message with its payload replaced by ``{PAYLOAD}`` and whitespace collapsed."""
    text = user
    if payload:
        text = text.replace(f'"{payload}"', f'"{PAYLOAD_PLACEHOLDER}"').replace(payload, PAYLOAD_PLACEHOLDER)
    return _WS.sub(" ", text).strip()


def _payloads_and_templates(ds) -> Tuple[Any, Any]:
    """Every episode's payload (null where none) and template signature, as compact arrow string arrays.

    Worked out batch by batch; a Python string per episode would cost ~100 bytes each, the arrow arrays hold the
    text and an offset."""
    import pyarrow as pa

    payload_chunks, template_chunks = [], []
    columns = ["messages"] + (["_meta"] if "_meta" in ds.column_names else [])
    for _, batch in scan_batches(ds, columns):
        offsets, codes, contents = message_arrays(batch)
        user_pos = np.flatnonzero(codes == 1)
        k = np.searchsorted(user_pos, offsets[:-1])
        has_user = (k < len(user_pos)) & (user_pos[np.minimum(k, max(len(user_pos) - 1, 0))] < offsets[1:]) \
            if len(user_pos) else np.zeros(len(offsets) - 1, dtype=bool)
        first_user = contents.take(user_pos[np.minimum(k, len(user_pos) - 1)]).to_pylist() if len(user_pos) else []
        meta_payloads = meta_field(batch, "payload")
        payloads, templates = [], []
        for row in range(len(offsets) - 1):
            user = first_user[row] if has_user[row] else ""
            payload = derive_payload(user, {"payload": meta_payloads[row]})
            payloads.append(payload or None)  # an empty payload counts as none (as it always did)
            templates.append(template_signature(user, payload))
        payload_chunks.append(pa.array(payloads, type=pa.large_string()))
        template_chunks.append(pa.array(templates, type=pa.large_string()))
    return (pa.chunked_array(payload_chunks, type=pa.large_string()),
            pa.chunked_array(template_chunks, type=pa.large_string()))


def _overlap(train, val) -> List[str]:
    """The distinct non-null strings of ``train`` that ``val`` holds too, sorted."""
    import pyarrow.compute as pc

    val_set = pc.drop_null(pc.unique(val.combine_chunks() if val.num_chunks else val))
    shared = pc.filter(train, pc.is_in(train, value_set=val_set))
    return sorted(pc.unique(shared).to_pylist()) if len(shared) else []


def check_separation(train, val, *, max_examples: int = 5, out=None) -> Dict[str, Any]:
    """Strict train/val separation: no shared payload and no shared template signature.

    Returns the counts (for the metadata); prints up to ``max_examples`` examples of each overlap and
    raises GateFailure when either overlap is non-empty.
    """
    import pyarrow.compute as pc

    out = out or sys.stdout
    train_p, train_t = _payloads_and_templates(train)
    val_p, val_t = _payloads_and_templates(val)
    payload_overlap = _overlap(train_p, val_p)
    template_overlap = _overlap(train_t, val_t)

    def distinct(values) -> int:
        return int(pc.count_distinct(values, mode="only_valid").as_py()) if len(values) else 0

    report = {
        "train_payloads": distinct(train_p),
        "val_payloads": distinct(val_p),
        "train_templates": distinct(train_t),
        "val_templates": distinct(val_t),
        "payload_overlap_count": len(payload_overlap),
        "template_overlap_count": len(template_overlap),
    }
    print(f"separation check: payloads train {report['train_payloads']} / val {report['val_payloads']}, "
          f"overlap {len(payload_overlap)}; templates train {report['train_templates']} / val "
          f"{report['val_templates']}, overlap {len(template_overlap)}", file=out)
    problems = []
    if payload_overlap:
        problems.append(f"{len(payload_overlap)} payload(s) occur in both train and val")
        for p in payload_overlap[:max_examples]:
            print(f"  payload in both: {p!r}", file=out)
    if template_overlap:
        problems.append(f"{len(template_overlap)} template(s) occur in both train and val")
        for t in template_overlap[:max_examples]:
            print(f"  template in both: {t!r}", file=out)
    if problems:
        raise GateFailure("train/val separation failed: " + "; ".join(problems))
    return report


__all__ = ["PAYLOAD_PLACEHOLDER", "check_separation", "derive_payload", "template_signature"]
