"""Chat prompt building and generation with MyPT's defaults, on top of ``GenerationMixin.generate``.

The eval suite, the training-time eval callbacks and ``mypt-hf generate`` all generate through here, so
they share one definition of "the reply": greedy by default, left-padded batches with an attention mask
and the KV cache, stopping at ``</myPT_assistant>`` or ``<myPT_eot>``, and decoded with the tag strings
kept visible (the format check must see a forbidden tag the model emits).
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Sequence

import torch

from .tokenization_mypt import stop_token_ids
from .tokens import DEFAULT_SYSTEM_PROMPT

DEFAULT_MAX_NEW_TOKENS = 64


def build_chat_messages(user: str, system: Optional[str] = DEFAULT_SYSTEM_PROMPT) -> List[Dict[str, str]]:
    """The messages of a one-turn chat prompt: ``[system], user`` (``system=None`` leaves the system block out)."""
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages.append({"role": "user", "content": user})
    return messages


def _context_length(model) -> Optional[int]:
    return getattr(model.config, "max_position_embeddings", None)


def fit_to_context(prompt_lengths: Sequence[int], model, max_new_tokens: int) -> int:
    """``max_new_tokens`` capped at what the model's context leaves after the longest prompt.

    A prompt is never cut (the original kept its last block_size ids, so the model answered another prompt): one
    that leaves no room for a single new token is a MyPTInputError. When the cap applies it is said in one line
    on stderr. Models without ``max_position_embeddings`` are not capped.
    """
    from .errors import MyPTInputError

    limit = _context_length(model)
    if limit is None or not prompt_lengths:
        return max_new_tokens
    longest = max(prompt_lengths)
    if longest >= limit:
        raise MyPTInputError(f"the prompt has {longest} tokens but the model's context is {limit} tokens, leaving no "
                             "room for a reply; shorten the prompt", field="prompt")
    room = limit - longest
    if max_new_tokens > room:
        print(f"note: max_new_tokens {max_new_tokens} capped to {room}: the model's context is {limit} tokens and the "
              f"{'prompt' if len(prompt_lengths) == 1 else 'longest prompt'} has {longest}", file=sys.stderr)
        return room
    return max_new_tokens


def _cut_at_stop(ids: Sequence[int], stop_ids: Sequence[int]) -> List[int]:
    """Generated ids up to and including the first stop id (later ones are padding)."""
    out: List[int] = []
    for token_id in ids:
        out.append(int(token_id))
        if token_id in stop_ids:
            break
    return out


def _decode(tokenizer, ids: Sequence[int]) -> str:
    # skip_special_tokens=False: the tags are special tokens, and the caller must see every one emitted.
    return tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


@torch.no_grad()
def generate_ids(model, tokenizer, prompts: Sequence[Sequence[int]], *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 batch_size: int = 16, use_cache: bool = True, do_sample: bool = False, progress: bool = False,
                 progress_desc: str = "generate", **gen_kwargs: Any) -> List[List[int]]:
    """Generate from tokenized prompts in left-padded batches; returns each reply's ids up to its stop id.

    Prompts are grouped by length (stable sort) so batches hold little padding; the results come back
    in the input order. ``max_new_tokens`` is capped at the context the longest prompt leaves
    (:func:`fit_to_context`, said on stderr); a prompt with no room for a reply is a MyPTInputError.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stop_ids = stop_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[-1]
    device = next(model.parameters()).device
    prompts = [list(p) for p in prompts]
    max_new_tokens = fit_to_context([len(p) for p in prompts], model, max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: List[Optional[List[int]]] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    settings: Dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, use_cache=use_cache,
                                    eos_token_id=stop_ids, pad_token_id=pad_id, bos_token_id=None)
    if not do_sample:  # don't inherit sampling knobs from a saved generation_config (they'd only warn)
        settings.update(temperature=None, top_k=None, top_p=None)
    settings.update(gen_kwargs)
    bar = tqdm(total=len(prompts), desc=progress_desc, disable=not progress, unit="prompt")
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(prompts[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):  # left padding: every reply starts at the same column
                n = len(prompts[i])
                input_ids[row, width - n:] = torch.tensor(prompts[i], dtype=torch.long)
                attention_mask[row, width - n:] = 1
            output = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                    **settings)
            for row, i in enumerate(chunk):
                results[i] = _cut_at_stop(output[row, width:].tolist(), stop_ids)
            bar.update(len(chunk))
    finally:
        bar.close()
        model.train(was_training)
    return [r if r is not None else [] for r in results]


def generate_replies(model, tokenizer, conversations: Sequence[Sequence[Dict[str, str]]], max_new_tokens: int = 64,
                     batch_size: int = 16, use_cache: bool = True, do_sample: bool = False, *,
                     progress: bool = False, progress_desc: str = "generate", **gen_kwargs: Any) -> List[str]:
    """Generate the assistant reply to each conversation (greedy by default).

    Each conversation is rendered with the tokenizer's chat template and ``add_generation_prompt=True``
    (so the prompt ends with ``<myPT_assistant>``, exactly as in training). The reply is the decoded
    new text, including the stop tag string when one was emitted, with every tag string visible.
    """
    prompts = [tokenizer.apply_chat_template(list(conv), tokenize=True, add_generation_prompt=True,
                                             return_dict=True)["input_ids"] for conv in conversations]
    replies = generate_ids(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                           use_cache=use_cache, do_sample=do_sample, progress=progress,
                           progress_desc=progress_desc, **gen_kwargs)
    return [_decode(tokenizer, ids) for ids in replies]


@torch.no_grad()
def generate_text(model, tokenizer, prompt_text: str, temperature: float = 0.8, top_k: int = 50, top_p: float = 0.95,
                  repetition_penalty: float = 1.1, max_new_tokens: int = 100, *, return_full_text: bool = True,
                  seed: Optional[int] = None) -> str:
    """Generate from a raw prompt string (the original's ``GPT.generate`` defaults).

    Tag strings in ``prompt_text`` become tag ids (a raw prompt is how a user writes a chat by hand).
    ``temperature <= 0`` means greedy argmax with no penalty or filtering, as in the original;
    ``top_k = 0`` and ``top_p = 1`` disable those filters. Returns prompt + completion (the original's
    output) unless ``return_full_text=False``; a prompt that does not fit the context is refused, never cut, and
    ``max_new_tokens`` is capped at the room it leaves (:func:`fit_to_context`). Generation stops after ``</myPT_assistant>`` or ``<myPT_eot>``. Note: HF's repetition penalty covers the whole sequence,
    the original's only the last 256 ids.
    """
    ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError("prompt_text encodes to no tokens")
    greedy = temperature is None or temperature <= 0
    kwargs: Dict[str, Any] = {}
    if not greedy:
        kwargs = dict(temperature=float(temperature), top_k=int(top_k) if top_k else None,
                      top_p=float(top_p) if top_p is not None and top_p < 1.0 else None,
                      repetition_penalty=float(repetition_penalty) if repetition_penalty != 1.0 else None)
        if seed is not None:
            torch.manual_seed(seed)
    reply = generate_ids(model, tokenizer, [ids], max_new_tokens=max_new_tokens, batch_size=1,
                         do_sample=not greedy, **kwargs)[0]
    completion = _decode(tokenizer, reply)
    return _decode(tokenizer, ids) + completion if return_full_text else completion


__all__ = ["DEFAULT_MAX_NEW_TOKENS", "build_chat_messages", "fit_to_context", "generate_ids", "generate_replies", "generate_text"]
