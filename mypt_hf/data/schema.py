"""The one episode schema every generator emits and every consumer reads.

An episode is ``{"messages": [{"role", "content"}, ...], "_meta": {...}}``. ``_meta`` is a struct
with a fixed set of nullable string fields, so datasets from different generators concatenate
and mix without casts. JSONL import accepts the original MyPT files (top-level ``system``,
``context``, ``language``, ``mix_source``) and maps them into this schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import datasets

from ..errors import MyPTInputError
from ..io_utils import PathLike, read_jsonl_numbered, write_jsonl
from ..tokens import DEFAULT_SYSTEM_PROMPT

ROLES = ("system", "user", "assistant")

#: Fixed ``_meta`` fields; all nullable strings.
META_FIELDS: tuple = (
    "source",       # generator or file the episode came from ("format_lock", "echo", "operators", file stem)
    "episode_id",   # stable id within its source
    "category",     # generator category (e.g. "say", "math_add", "echo_gibberish", "anti_echo")
    "language",     # "en" / "de"
    "operator",     # COPY / WRAP / EXTRACT (operator episodes)
    "payload",      # the payload the user message carries (echo and operator episodes)
    "expected",     # the exact expected answer where one exists
    "template",     # the user-message template with the payload replaced by {payload}
    "group",        # contrast-group id (echo) or other grouping key
    "mix_source",   # the input a mixed row was drawn from
)

EPISODE_FEATURES = datasets.Features(
    {
        "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
        "_meta": {name: datasets.Value("string") for name in META_FIELDS},
    }
)


def make_meta(**fields: Optional[str]) -> Dict[str, Optional[str]]:
    """A complete ``_meta`` dict: the given fields, every other field None. Unknown names are an error."""
    unknown = sorted(set(fields) - set(META_FIELDS))
    if unknown:
        raise KeyError(f"unknown _meta field(s) {unknown}; known: {list(META_FIELDS)}")
    return {name: (None if fields.get(name) is None else str(fields[name])) for name in META_FIELDS}


def make_episode(user: str, assistant: str, *, system: Optional[str] = DEFAULT_SYSTEM_PROMPT,
                 **meta: Optional[str]) -> Dict[str, Any]:
    """A single-turn episode with an explicit system message (omitted when ``system`` is None)."""
    messages = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user})
    messages.append({"role": "assistant", "content": assistant})
    return {"messages": messages, "_meta": make_meta(**meta)}


def validate_episode(row: Mapping[str, Any], *, where: str = "<episodes>", row_number: Optional[int] = None) -> None:
    """Check one episode; raise MyPTInputError naming ``where``, the row/line and the field.

    Rules: ``messages`` is a non-empty list of {role, content}; roles are system/user/assistant;
    a system message may only come first; content is a non-empty string; at least one assistant turn.
    """
    def fail(message: str, field: str) -> None:
        raise MyPTInputError(message, path=where, line=row_number, field=field)

    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        fail("missing or empty 'messages' list", "messages")
    has_assistant = False
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if not isinstance(message, Mapping):
            fail("message is not an object", field)
        role = message.get("role")
        if role is None:
            fail("missing role", f"{field}.role")
        if role not in ROLES:
            fail(f"unknown role {role!r} (expected one of {', '.join(ROLES)})", f"{field}.role")
        if role == "system" and index != 0:
            fail("a system message may only be the first message", f"{field}.role")
        content = message.get("content")
        if not isinstance(content, str):
            fail("content must be a string", f"{field}.content")
        if not content.strip():
            fail("empty content", f"{field}.content")
        has_assistant = has_assistant or role == "assistant"
    if not has_assistant:
        fail("no assistant turn", "messages")
    meta = row.get("_meta")
    if meta is not None and not isinstance(meta, Mapping):
        fail("_meta must be an object", "_meta")


def normalize_row(row: Mapping[str, Any], *, where: str, row_number: int,
                  source: Optional[str] = None) -> Dict[str, Any]:
    """Map one row of an original-format or mypt_hf JSONL file onto the episode schema.

    A top-level ``system`` becomes the leading system message unless the messages already start
    with one; ``context``/``language``/``mix_source`` move into ``_meta``; unknown ``_meta`` keys
    are an error (they would be silently dropped otherwise).
    """
    messages = row.get("messages")
    if isinstance(messages, list):
        messages = [dict(m) if isinstance(m, Mapping) else m for m in messages]
        messages = [
            {"role": m.get("role"), "content": m.get("content")} if isinstance(m, dict) else m for m in messages
        ]
    system = row.get("system")
    if isinstance(messages, list) and system is not None:
        if not isinstance(system, str):
            raise MyPTInputError("system must be a string", path=where, line=row_number, field="system")
        if not (messages and isinstance(messages[0], dict) and messages[0].get("role") == "system"):
            messages = [{"role": "system", "content": system}] + messages
    candidate = {"messages": messages, "_meta": row.get("_meta")}
    validate_episode(candidate, where=where, row_number=row_number)

    raw_meta = dict(row.get("_meta") or {})
    unknown = sorted(set(raw_meta) - set(META_FIELDS))
    if unknown:
        raise MyPTInputError(f"unknown _meta key(s) {unknown}; known: {list(META_FIELDS)}",
                             path=where, line=row_number, field="_meta")
    context = row.get("context")
    if isinstance(context, str) and context.startswith("episode_id:"):
        # original format: "episode_id: echo_0001, category: CAT"
        for part in context.split(","):
            key, _, value = part.partition(":")
            key, value = key.strip(), value.strip()
            if key == "episode_id" and raw_meta.get("episode_id") is None:
                raw_meta["episode_id"] = value
            elif key == "category" and raw_meta.get("category") is None:
                raw_meta["category"] = value
    for key in ("language", "mix_source"):
        if row.get(key) is not None and raw_meta.get(key) is None:
            raw_meta[key] = row[key]
    if raw_meta.get("source") is None and source is not None:
        raw_meta["source"] = source
    return {"messages": messages, "_meta": make_meta(**raw_meta)}


def episodes_from_rows(rows: Sequence[Mapping[str, Any]], *, where: str = "<rows>",
                       source: Optional[str] = None) -> datasets.Dataset:
    """Validate rows (1-based row numbers in errors) and build a Dataset with EPISODE_FEATURES."""
    normalized = [normalize_row(row, where=where, row_number=i, source=source) for i, row in enumerate(rows, 1)]
    return datasets.Dataset.from_list(normalized, features=EPISODE_FEATURES)


def load_episodes_jsonl(path: PathLike) -> datasets.Dataset:
    """Load an original-format or mypt_hf JSONL file as an episode Dataset (errors name file and line)."""
    return load_episodes_jsonl_numbered(path)[0]


def load_episodes_jsonl_numbered(path: PathLike, max_line_bytes: Optional[int] = None,
                                 too_long: Optional[str] = None) -> Tuple[datasets.Dataset, List[int]]:
    """The episodes of a JSONL file and the file line (1-based, ``\n`` counted) each came from; a line over
    ``max_line_bytes`` is refused before it is parsed (``too_long`` says why)."""
    path = Path(path)
    numbered = (read_jsonl_numbered(path, max_line_bytes, too_long) if too_long
                else read_jsonl_numbered(path, max_line_bytes))
    normalized = [normalize_row(row, where=str(path), row_number=line, source=path.stem) for line, row in numbered]
    return datasets.Dataset.from_list(normalized, features=EPISODE_FEATURES), [line for line, _ in numbered]


def episode_to_jsonl_row(episode: Mapping[str, Any]) -> Dict[str, Any]:
    """An episode as a JSONL object: ``messages`` then ``_meta`` with its None fields left out."""
    meta = {key: value for key, value in (episode.get("_meta") or {}).items() if value is not None}
    row: Dict[str, Any] = {"messages": [{"role": m["role"], "content": m["content"]} for m in episode["messages"]]}
    if meta:
        row["_meta"] = meta
    return row


def save_episodes_jsonl(dataset: Iterable[Mapping[str, Any]], path: PathLike) -> int:
    """Write episodes as JSONL (atomically). Returns the number of rows."""
    return write_jsonl(path, (episode_to_jsonl_row(episode) for episode in dataset))


def empty_episodes() -> datasets.Dataset:
    """An empty Dataset with the episode features."""
    return datasets.Dataset.from_list([], features=EPISODE_FEATURES)


__all__: List[str] = [
    "ROLES", "META_FIELDS", "EPISODE_FEATURES", "make_meta", "make_episode", "validate_episode",
    "normalize_row", "episodes_from_rows", "load_episodes_jsonl", "episode_to_jsonl_row",
    "save_episodes_jsonl", "empty_episodes",
]
