"""`mypt-hf eval-episodes`: exact match of a model's greedy replies on held-out episodes (JSONL)."""

from __future__ import annotations

import argparse

HELP = ("Exact match of greedy replies on held-out episodes (e.g. operator_val.jsonl); "
        "exit 1 when below --min_exact_match.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory (save_pretrained output)")
    parser.add_argument("--episodes", required=True, help="episodes JSONL (expected answer in _meta.expected)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer spec (default: the one saved in --model)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N episodes")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--min_exact_match", type=float, default=None, help="fail (exit 1) below this rate")
    parser.add_argument("--output", default=None, help="write the JSON result here")
    parser.add_argument("--device", default=None)


def run(args: argparse.Namespace) -> int:
    from mypt_hf.commands.eval import load_model_and_tokenizer
    from mypt_hf.data.schema import load_episodes_jsonl
    from mypt_hf.errors import GateFailure, MyPTInputError
    from mypt_hf.evaluation.exact_match import episode_exact_match, format_exact_match
    from mypt_hf.io_utils import write_json

    episodes = load_episodes_jsonl(args.episodes)
    if args.limit is not None:
        if args.limit < 1:
            raise MyPTInputError("must be at least 1", field="limit")
        episodes = episodes.select(range(min(args.limit, len(episodes))))
    model, tokenizer = load_model_and_tokenizer(args.model, args.tokenizer, args.device)
    result = episode_exact_match(model, tokenizer, list(episodes), batch_size=args.batch_size,
                                 max_new_tokens=args.max_new_tokens, progress=True)
    print(format_exact_match(result))
    if args.output:
        write_json(args.output, {"model": str(args.model), "episodes": str(args.episodes), **result})
    if args.min_exact_match is not None and result["exact_match"] < args.min_exact_match:
        raise GateFailure(f"exact match {result['exact_match']:.1%} below {args.min_exact_match:.1%}")
    return 0
