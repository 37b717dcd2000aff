"""`mypt-hf generate`: sample from a saved model (the original's generate.py; temperature 0 = greedy)."""

from __future__ import annotations

import argparse

HELP = "Generate text from a saved model: --user builds a chat prompt with the template, --prompt is raw text."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model dir, or a model name: <checkpoints>/<name> "
                             "($MYPT_CHECKPOINTS_DIR, default ./checkpoints)")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer spec: a directory, a *.tiktoken file or 'embedded' (default: the tokenizer "
                             "saved in --model)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="raw prompt text (tag strings become tags, as in the original)")
    source.add_argument("--user", help="user message; rendered with the chat template and the system prompt")
    parser.add_argument("--system", default=None, help="system prompt for --user (default: 'You are MyPT.'; "
                                                       "'' for none)")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy argmax (default 0.8)")
    parser.add_argument("--top_k", type=int, default=50, help="0 disables (default 50)")
    parser.add_argument("--top_p", type=float, default=0.95, help="1.0 disables (default 0.95)")
    parser.add_argument("--repetition_penalty", type=float, default=1.1, help="1.0 disables (default 1.1)")
    parser.add_argument("--max_new_tokens", type=int, default=100,
                        help="at most this many new tokens (default 100); capped, with a note, at what the model's "
                             "context leaves after the prompt")
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling")
    parser.add_argument("--show_tags", action="store_true",
                        help="--user: print the reply with its stop tag (default: the reply text only)")


def sampling_kwargs(temperature: float, top_k: int, top_p: float, repetition_penalty: float) -> dict:
    """generate() kwargs for the original's sampling knobs; temperature <= 0 means greedy."""
    if temperature is None or temperature <= 0:
        return {"do_sample": False}
    kwargs = {"do_sample": True, "temperature": float(temperature), "top_k": int(top_k) if top_k else None,
              "top_p": float(top_p) if top_p is not None and top_p < 1.0 else None}
    if repetition_penalty and repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = float(repetition_penalty)
    return kwargs


def check_sampling_args(args: argparse.Namespace) -> None:
    """Refuse sampling settings that generate() would accept silently or crash on, before a model is loaded."""
    import math

    from mypt_hf.errors import MyPTInputError

    text = args.prompt if args.prompt is not None else args.user
    if not text or not text.strip():
        raise MyPTInputError("the prompt is empty", field="prompt" if args.prompt is not None else "user")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise MyPTInputError(f"--temperature must be a number >= 0 (0 = greedy), got {args.temperature}",
                             field="temperature")
    if args.top_k < 0:
        raise MyPTInputError(f"--top_k must be >= 0 (0 disables it), got {args.top_k}", field="top_k")
    if not math.isfinite(args.top_p) or not 0.0 < args.top_p <= 1.0:
        raise MyPTInputError(f"--top_p must be in (0, 1] (1 disables it), got {args.top_p}", field="top_p")
    if not math.isfinite(args.repetition_penalty) or args.repetition_penalty <= 0:
        raise MyPTInputError(f"--repetition_penalty must be > 0 (1 disables it), got {args.repetition_penalty}",
                             field="repetition_penalty")
    if args.max_new_tokens < 1:
        raise MyPTInputError("--max_new_tokens must be >= 1", field="max_new_tokens")


def run(args: argparse.Namespace) -> int:
    import torch

    from mypt_hf.generation import build_chat_messages, generate_ids, generate_text
    from mypt_hf.model_files import check_saved_model_dir, load_causal_lm
    from mypt_hf.tokenization_mypt import load_tokenizer
    from mypt_hf.tokens import DEFAULT_SYSTEM_PROMPT, STOP_TAG_STRINGS

    check_sampling_args(args)
    check_saved_model_dir(args.model, need_tokenizer=args.tokenizer is None,
                          tokenizer_hint="pass --tokenizer (a tokenizer dir, a *.tiktoken file or 'embedded') or save "
                                         "the tokenizer into the model dir (tokenizer.save_pretrained(dir))")
    model = load_causal_lm(args.model, dtype=torch.float32)  # first: a bad config.json is named as the model's
    tokenizer = load_tokenizer(args.tokenizer or args.model)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    if args.prompt is not None:
        print(generate_text(model, tokenizer, args.prompt, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                            max_new_tokens=args.max_new_tokens, seed=args.seed))
        return 0
    system = DEFAULT_SYSTEM_PROMPT if args.system is None else (args.system or None)
    messages = build_chat_messages(args.user, system=system)
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                        return_dict=True)["input_ids"]
    kwargs = sampling_kwargs(args.temperature, args.top_k, args.top_p, args.repetition_penalty)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    reply_ids = generate_ids(model, tokenizer, [ids], max_new_tokens=args.max_new_tokens, batch_size=1, **kwargs)[0]
    reply = tokenizer.decode(reply_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if not args.show_tags:
        for stop in STOP_TAG_STRINGS:
            reply = reply.split(stop, 1)[0]
        reply = reply.strip()
    print(reply)
    return 0
