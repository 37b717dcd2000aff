"""The 19 MyPT tags: their strings, names, pinned GPT-2-layout ids and roles.

This module is the single source of truth for tag strings and ids. Everything else
(tokenizer, chat template, masks, generation stop ids, conversion) imports from here.

In the GPT-2 layout the base vocabulary has 50257 ids (``<|endoftext|>`` = 50256), the
tags take 50257-50275, and the model's embedding matrix is padded to 50304 rows.
The embedded tokenizer has a smaller base vocabulary; its tags follow right after it in
the same order, so ``tag_id = base_vocab_size + TAG_NAMES.index(name)`` holds for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

GPT2_BASE_VOCAB_SIZE = 50257
GPT2_ENDOFTEXT_ID = 50256
GPT2_MODEL_VOCAB_SIZE = 50304  # 50276 rounded up to a multiple of 64, as the original does
FIRST_TAG_ID = GPT2_BASE_VOCAB_SIZE


@dataclass(frozen=True)
class Tag:
    """One MyPT tag.

    ``trained`` tags are ones the model learns to emit in Phase 3a (they are loss targets);
    the others are injected by the serializer or by tools and are never generation targets.
    """

    name: str
    string: str
    gpt2_id: int
    trained: bool


# Order matters: it fixes the ids (50257 + index).
_TAG_TABLE: Tuple[Tuple[str, str, bool], ...] = (
    ("myPT_system_open", "<myPT_system>", False),
    ("myPT_system_close", "</myPT_system>", False),
    ("myPT_user_open", "<myPT_user>", False),
    ("myPT_user_close", "</myPT_user>", False),
    ("myPT_assistant_open", "<myPT_assistant>", False),  # part of the prompt, never a target
    ("myPT_assistant_close", "</myPT_assistant>", True),
    ("myPT_user_context_open", "<myPT_user_context>", False),
    ("myPT_user_context_close", "</myPT_user_context>", False),
    ("myPT_assistant_context_open", "<myPT_assistant_context>", False),
    ("myPT_assistant_context_close", "</myPT_assistant_context>", False),
    ("myPT_toolcall_open", "<myPT_toolcall>", True),
    ("myPT_toolcall_close", "</myPT_toolcall>", True),
    ("myPT_toolresult_open", "<myPT_toolresult>", False),
    ("myPT_toolresult_close", "</myPT_toolresult>", False),
    ("myPT_think_open", "<myPT_think>", True),
    ("myPT_think_close", "</myPT_think>", True),
    ("myPT_cite_open", "<myPT_cite>", True),
    ("myPT_cite_close", "</myPT_cite>", True),
    ("myPT_eot", "<myPT_eot>", True),
)

TAGS: Tuple[Tag, ...] = tuple(
    Tag(name=name, string=string, gpt2_id=FIRST_TAG_ID + index, trained=trained)
    for index, (name, string, trained) in enumerate(_TAG_TABLE)
)
NUM_TAGS = len(TAGS)
assert NUM_TAGS == 19

TAG_NAMES: Tuple[str, ...] = tuple(tag.name for tag in TAGS)
TAG_STRINGS: Tuple[str, ...] = tuple(tag.string for tag in TAGS)
TAG_BY_NAME: Dict[str, Tag] = {tag.name: tag for tag in TAGS}
TAG_BY_STRING: Dict[str, Tag] = {tag.string: tag for tag in TAGS}
GPT2_TAG_IDS: Dict[str, int] = {tag.string: tag.gpt2_id for tag in TAGS}

SYSTEM_OPEN = TAG_BY_NAME["myPT_system_open"].string
SYSTEM_CLOSE = TAG_BY_NAME["myPT_system_close"].string
USER_OPEN = TAG_BY_NAME["myPT_user_open"].string
USER_CLOSE = TAG_BY_NAME["myPT_user_close"].string
ASSISTANT_OPEN = TAG_BY_NAME["myPT_assistant_open"].string
ASSISTANT_CLOSE = TAG_BY_NAME["myPT_assistant_close"].string
EOT = TAG_BY_NAME["myPT_eot"].string

#: Tags at which generation stops (end of the assistant turn, end of the conversation).
STOP_TAG_STRINGS: Tuple[str, ...] = (ASSISTANT_CLOSE, EOT)
#: Role tags a Phase 3a assistant must never emit.
FORBIDDEN_IN_OUTPUT: Tuple[str, ...] = (SYSTEM_OPEN, SYSTEM_CLOSE, USER_OPEN, USER_CLOSE)

#: The 15-tag layout used before 2026-02-15 (ids assigned sequentially from 50257).
#: Keyed by the current tag string; the legacy files spelled the toolcall tag ``<myPT_tool_call>`` at first.
LEGACY_15_TAG_IDS: Dict[str, int] = {
    "<myPT_system>": 50257,
    "</myPT_system>": 50258,
    "<myPT_user>": 50259,
    "</myPT_user>": 50260,
    "<myPT_user_context>": 50261,
    "</myPT_user_context>": 50262,
    "<myPT_assistant>": 50263,
    "</myPT_assistant>": 50264,
    "<myPT_assistant_context>": 50265,
    "</myPT_assistant_context>": 50266,
    "<myPT_toolcall>": 50267,
    "</myPT_toolcall>": 50268,
    "<myPT_toolresult>": 50269,
    "</myPT_toolresult>": 50270,
    "<myPT_eot>": 50271,
}

# System prompts (the original's core/system_prompts.py and operator generator).
DEFAULT_SYSTEM_PROMPT = "You are MyPT."
OPERATOR_SYSTEM_PROMPT_EN = "You are MyPT. Execute the instruction exactly."
OPERATOR_SYSTEM_PROMPT_DE = "Du bist MyPT. Fuehre die Anweisung genau aus."


def tag_ids_for_base(base_vocab_size: int) -> Dict[str, int]:
    """Tag string -> id for a tokenizer whose base (non-tag) vocabulary has ``base_vocab_size`` ids."""
    return {tag.string: base_vocab_size + index for index, tag in enumerate(TAGS)}


def pad_vocab_size(n_tokens: int, multiple: int = 64) -> int:
    """Round a tokenizer size up to a multiple (the original pads 50276 -> 50304)."""
    return ((n_tokens + multiple - 1) // multiple) * multiple


__all__: List[str] = [
    "Tag", "TAGS", "NUM_TAGS", "TAG_NAMES", "TAG_STRINGS", "TAG_BY_NAME", "TAG_BY_STRING", "GPT2_TAG_IDS",
    "GPT2_BASE_VOCAB_SIZE", "GPT2_ENDOFTEXT_ID", "GPT2_MODEL_VOCAB_SIZE", "FIRST_TAG_ID",
    "SYSTEM_OPEN", "SYSTEM_CLOSE", "USER_OPEN", "USER_CLOSE", "ASSISTANT_OPEN", "ASSISTANT_CLOSE", "EOT",
    "STOP_TAG_STRINGS", "FORBIDDEN_IN_OUTPUT", "LEGACY_15_TAG_IDS", "DEFAULT_SYSTEM_PROMPT",
    "OPERATOR_SYSTEM_PROMPT_EN", "OPERATOR_SYSTEM_PROMPT_DE", "tag_ids_for_base", "pad_vocab_size",
]
