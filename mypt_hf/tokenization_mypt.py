"""The MyPT tokenizers (GPT-2 BPE + tags, or a small embedded byte-level BPE) and the chat template.

Both tokenizers are plain ``PreTrainedTokenizerFast`` objects: they save with ``save_pretrained`` and
reload with ``AutoTokenizer.from_pretrained`` without this package.

Protocol facts (see ``mypt_hf.tokens`` and the original's ``prepare_chat_sft.py``):

* The 19 tags are added special tokens with ids ``base_vocab + index`` (GPT-2: 50257-50275). They are
  matched on the raw text (``normalized=False``) and never strip neighbouring whitespace, so
  ``"<myPT_user> hi"`` keeps its space as the original's independent ``encode_ordinary`` runs do.
* ``<|endoftext|>`` keeps id 50256 in the GPT-2 vocabulary but is *not* an added token: the original encodes
  every text run with ``encode_ordinary``, so the literal text ``<|endoftext|>`` inside content is BPE text
  (``<``, ``|``, ``endoftext``, ``|>``), and id 50256 still decodes to ``<|endoftext|>``.
* Tag strings typed inside message content are text, never tag ids (prompt-injection safety). The chat
  template escapes content by inserting the private-use sentinel U+E000 before every ``myPT_``; the raw
  added-token match then fails, and the normalizer turns ``"\\ue000myPT_"`` back into ``"myPT_"`` before BPE,
  so the content is encoded exactly as written. The normalizer replaces only that exact sequence, which makes
  the template path lossless for every string (content that itself contains ``"\\ue000myPT_"`` is escaped to
  ``"\\ue000\\ue000myPT_"`` and comes back intact). A direct ``tokenizer.encode(text)`` still turns tag strings
  into tag ids (handy for building prompts) and drops the U+E000 of a literal ``"\\ue000myPT_"``;
  :func:`validate_content` rejects that sequence for callers that encode raw text outside the template.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Iterable, List, Optional, Union

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .errors import MyPTInputError
from .tokens import (
    ASSISTANT_CLOSE,
    ASSISTANT_OPEN,
    EOT,
    GPT2_BASE_VOCAB_SIZE,
    GPT2_ENDOFTEXT_ID,
    STOP_TAG_STRINGS,
    SYSTEM_CLOSE,
    SYSTEM_OPEN,
    TAG_STRINGS,
    USER_CLOSE,
    USER_OPEN,
    pad_vocab_size,
    tag_ids_for_base,
)

#: The GPT-2 pre-tokenization regex (tiktoken's ``gpt2`` pat_str). TikTokenConverter's default is cl100k's.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_ENDOFTEXT = "<|endoftext|>"

#: Base vocabulary (256 bytes + merges) of the embedded tokenizer when none is given. Small on purpose:
#: a small vocabulary helps a tiny model learn to copy (issue 7); the end-to-end tuning may change it.
EMBEDDED_DEFAULT_VOCAB_SIZE = 512

#: Private-use character the template inserts before ``myPT_`` inside content (see the module docstring).
ESCAPE_SENTINEL = "\ue000"
_ESCAPE_PREFIX = "myPT_"
_ESCAPED = ESCAPE_SENTINEL + _ESCAPE_PREFIX

_EMBEDDED_CORPUS_DIR = "embedded"  # under the mypt_hf package (package data: embedded/*.txt)


def _jinja_str(text: str) -> str:
    """A Jinja string literal for ``text`` (tags are plain ASCII)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# No whitespace between blocks: every statement trims with ``-``. The tag strings come from mypt_hf.tokens.
# Mask (``{% generation %}``): assistant content + </myPT_assistant> (+ the final <myPT_eot> when the
# conversation ends on an assistant turn); never <myPT_assistant>, system or user text.
# <myPT_eot> marks the end of a finished conversation: it is left out when add_generation_prompt asks for a
# new assistant turn. A conversation ending on a user turn without a generation prompt still gets the
# closing <myPT_eot> (as the original serializer writes it), but unsupervised.
# Content is escaped (U+E000 before every "myPT_"), so ``tokenize=False`` output holds those invisible escapes;
# encoding that text with the same tokenizer gives the template's ids (the normalizer removes the escapes).
MYPT_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is not string -%}"
    "{{- raise_exception('MyPT chat template: message content must be a string') -}}"
    "{%- endif -%}"
    "{%- set content = message['content'] | replace(" + _jinja_str(_ESCAPE_PREFIX) + ", "
    + "'\\ue000" + _ESCAPE_PREFIX + "'" + ") -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{- " + _jinja_str(SYSTEM_OPEN) + " + content + " + _jinja_str(SYSTEM_CLOSE) + " -}}"
    "{%- elif message['role'] == 'user' -%}"
    "{{- " + _jinja_str(USER_OPEN) + " + content + " + _jinja_str(USER_CLOSE) + " -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- " + _jinja_str(ASSISTANT_OPEN) + " -}}"
    "{%- generation -%}"
    "{{- content + " + _jinja_str(ASSISTANT_CLOSE) + " -}}"
    "{%- if loop.last and not add_generation_prompt -%}{{- " + _jinja_str(EOT) + " -}}{%- endif -%}"
    "{%- endgeneration -%}"
    "{%- else -%}"
    "{{- raise_exception('MyPT chat template: unknown role ' ~ message['role'] ~ "
    "' (expected system, user or assistant)') -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- " + _jinja_str(ASSISTANT_OPEN) + " -}}"
    "{%- elif messages | length > 0 and messages[-1]['role'] != 'assistant' -%}"
    "{{- " + _jinja_str(EOT) + " -}}"
    "{%- endif -%}"
)


def validate_content(text: str, *, field: Optional[str] = None) -> str:
    """Check text that will be encoded *outside* the chat template; return it unchanged.

    The tokenizer's normalizer turns ``"\\ue000myPT_"`` into ``"myPT_"`` (that is how escaped tags in chat
    content come back), so raw text holding that exact sequence would lose its U+E000. The template path
    needs no check: it escapes every ``myPT_`` first and is lossless.
    """
    if not isinstance(text, str):
        raise MyPTInputError(f"content must be a string, got {type(text).__name__}", field=field)
    if _ESCAPED in text:
        raise MyPTInputError(
            "content contains U+E000 directly before 'myPT_'; this private-use sequence is reserved by the "
            "MyPT tokenizer for escaping tag strings", field=field)
    return text


def _tag_added_tokens() -> List[AddedToken]:
    # special + normalized=False: matched on the raw text (so escaped content never matches);
    # lstrip/rstrip False: the original never eats whitespace next to a tag.
    return [AddedToken(tag, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)
            for tag in TAG_STRINGS]


def _escape_normalizer() -> normalizers.Normalizer:
    return normalizers.Replace(_ESCAPED, _ESCAPE_PREFIX)


def _add_tags(tk: Tokenizer, base_vocab_size: int) -> None:
    if tk.get_vocab_size(with_added_tokens=True) != base_vocab_size:
        raise ValueError(f"base vocabulary has {tk.get_vocab_size(with_added_tokens=True)} ids, "
                         f"expected {base_vocab_size}")
    tk.add_special_tokens(_tag_added_tokens())
    expected = tag_ids_for_base(base_vocab_size)
    got = {tag: tk.token_to_id(tag) for tag in TAG_STRINGS}
    if got != expected:  # the whole protocol depends on these ids
        raise RuntimeError(f"tag ids {got} differ from the pinned layout {expected}")


def _wrap(tokenizer_json: str) -> PreTrainedTokenizerFast:
    """A fresh PreTrainedTokenizerFast around a serialized backend (callers may mutate their copy)."""
    tk = Tokenizer.from_str(tokenizer_json)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        eos_token=EOT,
        pad_token=EOT,
        extra_special_tokens=list(TAG_STRINGS),
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    tok.chat_template = MYPT_CHAT_TEMPLATE
    return tok


# --------------------------------------------------------------------------------------------- GPT-2


@functools.lru_cache(maxsize=4)
def _gpt2_json_from_tiktoken(path: str, mtime_ns: int) -> str:
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tk = TikTokenConverter(vocab_file=path, pattern=GPT2_PATTERN, add_prefix_space=False).converted()
    if tk.get_vocab_size() != GPT2_ENDOFTEXT_ID:
        raise MyPTInputError(f"expected the 50256 GPT-2 BPE ranks, found {tk.get_vocab_size()}", path=path)
    # <|endoftext|> = 50256 as an ordinary vocabulary entry (not an added token), so that the literal text is
    # BPE-encoded like tiktoken's encode_ordinary while the id still decodes to "<|endoftext|>".
    data = json.loads(tk.to_str())
    data["model"]["vocab"][GPT2_ENDOFTEXT] = GPT2_ENDOFTEXT_ID
    tk = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    tk.normalizer = _escape_normalizer()
    # trim_offsets=False: offsets must cover whitespace tokens so assistant masks include them
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    _add_tags(tk, GPT2_BASE_VOCAB_SIZE)
    return tk.to_str()


def _retrofit_hf_gpt2(tok: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """Turn a plain HF GPT-2 tokenizer (hub id or local dir without our tags) into the MyPT one."""
    data = json.loads(tok.backend_tokenizer.to_str())
    model = data.get("model") or {}
    vocab = model.get("vocab") or {}
    if model.get("type") != "BPE":
        raise MyPTInputError(f"not a GPT-2 tokenizer: model type {model.get('type')!r}, expected BPE")
    if len(vocab) == GPT2_ENDOFTEXT_ID and GPT2_ENDOFTEXT not in vocab:
        vocab[GPT2_ENDOFTEXT] = GPT2_ENDOFTEXT_ID  # kept only as an added token in some exports
    if len(vocab) != GPT2_BASE_VOCAB_SIZE or vocab.get(GPT2_ENDOFTEXT) != GPT2_ENDOFTEXT_ID:
        raise MyPTInputError(f"not a GPT-2 tokenizer (vocab {len(vocab)} ids, expected {GPT2_BASE_VOCAB_SIZE} "
                             f"with {GPT2_ENDOFTEXT}={GPT2_ENDOFTEXT_ID})")
    # Drop the added <|endoftext|>: the original never matches it in text (encode_ordinary).
    data["added_tokens"] = []
    data["post_processor"] = None
    # tiktoken looks a whole pre-token up in the ranks before merging; ignore_merges does the same.
    model["ignore_merges"] = True
    tk = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    # HF's GPT-2 pre-tokenizer is ByteLevel(use_regex=True), whose built-in regex is the GPT-2 pattern.
    tk.normalizer = _escape_normalizer()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    _add_tags(tk, GPT2_BASE_VOCAB_SIZE)
    return _wrap(tk.to_str())


def build_gpt2_tokenizer(source: Union[str, os.PathLike]) -> PreTrainedTokenizerFast:
    """GPT-2 BPE + the 19 MyPT tags at 50257-50275.

    ``source`` is a tiktoken rank file (``*.tiktoken``, offline), a local HF tokenizer directory (a plain
    GPT-2 one is given the tags; a saved MyPT one is loaded as is), or a hub id such as
    ``openai-community/gpt2`` (needs network). Ids equal tiktoken's gpt2 ``encode_ordinary`` on text runs,
    with the pinned tag ids between them.
    """
    path = Path(source)
    if path.is_file():
        return _wrap(_gpt2_json_from_tiktoken(str(path.resolve()), path.stat().st_mtime_ns))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(source))
    if tok.convert_tokens_to_ids(EOT) == GPT2_BASE_VOCAB_SIZE + TAG_STRINGS.index(EOT):
        return _ensure_mypt(tok)
    return _retrofit_hf_gpt2(tok)


# ------------------------------------------------------------------------------------------ embedded


def embedded_corpus() -> List[str]:
    """The package's own training text for the embedded tokenizer, one line per item, in a fixed order."""
    folder = resources.files("mypt_hf").joinpath(_EMBEDDED_CORPUS_DIR)
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".txt"))
    lines: List[str] = []
    for name in files:
        text = folder.joinpath(name).read_text(encoding="utf-8")
        lines.extend(line for line in text.splitlines() if line.strip())
    if not lines:
        raise RuntimeError("the embedded tokenizer corpus (mypt_hf/embedded/*.txt) is missing")
    return lines


@functools.lru_cache(maxsize=8)
def _embedded_json(vocab_size: int) -> str:
    if vocab_size < 257:
        raise ValueError(f"embedded vocab_size must be at least 257 (256 bytes + 1 merge), got {vocab_size}")
    tk = Tokenizer(models.BPE(fuse_unk=False))
    tk.normalizer = _escape_normalizer()
    # Same pre-tokenization as GPT-2 (split regex, then bytes -> printable unicode).
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GPT2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte has a token: nothing is unknown
    )
    tk.train_from_iterator(embedded_corpus(), trainer=trainer)
    got = tk.get_vocab_size()
    if got != vocab_size:
        raise ValueError(f"the embedded corpus supports a base vocabulary of at most {got} ids; "
                         f"{vocab_size} was asked for")
    _add_tags(tk, vocab_size)
    return tk.to_str()


def build_embedded_tokenizer(vocab_size: int = EMBEDDED_DEFAULT_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained deterministically from ``mypt_hf/embedded/*.txt`` + the 19 tags.

    ``vocab_size`` is the base vocabulary (256 bytes + merges); the tags take ids ``vocab_size + index``.
    No download needed. The trained backend is cached per size; every call returns a fresh object.
    """
    return _wrap(_embedded_json(int(vocab_size)))


# ------------------------------------------------------------------------------------------- loading


def _ensure_mypt(tok: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """Check a loaded tokenizer carries the MyPT protocol; fill in a missing template/eos/pad."""
    ids = {tag: tok.convert_tokens_to_ids(tag) for tag in TAG_STRINGS}
    base = ids[TAG_STRINGS[0]]
    if ids != tag_ids_for_base(base if isinstance(base, int) else -1):
        raise MyPTInputError(f"tokenizer does not carry the 19 MyPT tags at consecutive ids: {ids}")
    if not tok.chat_template:
        tok.chat_template = MYPT_CHAT_TEMPLATE
    if tok.eos_token != EOT:
        tok.eos_token = EOT
    if tok.pad_token != EOT:
        tok.pad_token = EOT
    return tok


def load_tokenizer(spec: Optional[Union[str, os.PathLike]] = None) -> PreTrainedTokenizerFast:
    """Load a MyPT tokenizer.

    ``None`` / ``"embedded"``: the embedded tokenizer at ``EMBEDDED_DEFAULT_VOCAB_SIZE``;
    ``"embedded:<N>"``: the embedded tokenizer with base vocabulary N; a ``*.tiktoken`` file: GPT-2 from
    those ranks; a local directory: ``from_pretrained`` (offline; a plain GPT-2 dir is given the tags);
    anything else: a hub id (needs network).
    """
    if spec is None:
        return build_embedded_tokenizer()
    spec_str = os.fspath(spec)
    if spec_str == "embedded":
        return build_embedded_tokenizer()
    if spec_str.startswith("embedded:"):
        size = spec_str.split(":", 1)[1]
        if not size.isdigit():
            raise MyPTInputError(f"bad tokenizer spec {spec_str!r}; expected 'embedded:<N>' with an integer N",
                                 field="tokenizer")
        try:
            return build_embedded_tokenizer(int(size))
        except ValueError as error:  # a size the embedded corpus cannot give
            raise MyPTInputError(f"{spec_str!r}: {error}", field="tokenizer") from None
    path = Path(spec_str)
    if spec_str.endswith(".tiktoken"):
        if not path.is_file():
            raise MyPTInputError("tiktoken rank file not found", path=spec_str)
        return build_gpt2_tokenizer(path)
    if path.is_dir():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(spec_str)
        if tok.convert_tokens_to_ids(TAG_STRINGS[0]) in (None, tok.unk_token_id):
            return _retrofit_hf_gpt2(tok)
        return _ensure_mypt(tok)
    if path.exists() or spec_str.startswith((".", "/", "~")):
        raise MyPTInputError("tokenizer spec is neither a *.tiktoken file nor a tokenizer directory", path=spec_str)
    try:
        return build_gpt2_tokenizer(spec_str)
    except OSError as error:  # a hub id that is not cached while offline, or that does not exist
        raise MyPTInputError(f"cannot load tokenizer {spec_str!r} from the Hugging Face hub or its cache "
                             f"({str(error).splitlines()[0]}); valid specs: 'embedded', 'embedded:<N>', a *.tiktoken "
                             "rank file, a tokenizer directory, or a hub id that is cached", field="tokenizer") from None


# ------------------------------------------------------------------------------------------- helpers


def stop_token_ids(tokenizer: PreTrainedTokenizerFast) -> List[int]:
    """Ids at which generation stops: those of ``</myPT_assistant>`` and ``<myPT_eot>``, in that order.

    The one lookup of the stop ids (generation, the model's generation_config, training). Raises
    ``MyPTInputError`` (a ``ValueError``) when the tokenizer lacks one of the tags: it is not a MyPT tokenizer,
    and a plain lookup would give the unknown-token id, on which generation would silently stop.
    """
    ids: List[int] = []
    for tag in STOP_TAG_STRINGS:
        token_id = tokenizer.convert_tokens_to_ids(tag)
        if token_id is None or tokenizer.convert_ids_to_tokens(token_id) != tag:
            raise MyPTInputError(f"tokenizer has no token {tag!r}; it is not a MyPT tokenizer")
        ids.append(int(token_id))
    return ids


def model_vocab_size(tokenizer: PreTrainedTokenizerFast) -> int:
    """Embedding rows a model needs for this tokenizer: ``len(tokenizer)`` rounded up to a multiple of 64."""
    return pad_vocab_size(len(tokenizer))


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerFast) -> str:
    """sha256 over what decides the ids: vocab, merges, added tokens, normalizer/pre-tokenizer, chat template.

    Runtime settings (padding, truncation, padding side) are left out, so the fingerprint of a saved and
    reloaded tokenizer equals the original's.
    """
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    added = sorted((t["id"], t["content"], bool(t.get("special"))) for t in data.get("added_tokens", []))
    payload = {
        "model": data.get("model"),
        "added_tokens": added,
        "normalizer": data.get("normalizer"),
        "pre_tokenizer": data.get("pre_tokenizer"),
        "decoder": data.get("decoder"),
        "chat_template": tokenizer.chat_template,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def encode_messages(tokenizer: PreTrainedTokenizerFast, messages: Iterable[dict], *,
                    add_generation_prompt: bool = False) -> dict:
    """``apply_chat_template`` with the MyPT defaults: returns ``{"input_ids", "assistant_masks"}`` lists."""
    out = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True,
                                        add_generation_prompt=add_generation_prompt)
    return {"input_ids": list(out["input_ids"]), "assistant_masks": list(out["assistant_masks"])}


__all__ = [
    "GPT2_PATTERN", "EMBEDDED_DEFAULT_VOCAB_SIZE", "ESCAPE_SENTINEL", "MYPT_CHAT_TEMPLATE",
    "build_gpt2_tokenizer", "build_embedded_tokenizer", "load_tokenizer", "embedded_corpus",
    "stop_token_ids", "model_vocab_size", "tokenizer_fingerprint", "validate_content", "encode_messages",
]
