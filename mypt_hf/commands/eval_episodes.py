"""`mypt-hf eval-episodes`: exact match of a model's greedy replies on held-out episodes (JSONL)."""

from __future__ import annotations

import argparse

HELP = ("Exact match of greedy replies on held-out episodes (e.g. operator_val.jsonl); "
        "exit 1 when below --min_exact_match (default 0.75, bucket E's gate).")
#: The default gate: the operator bucket's threshold (mypt_hf.evaluation.suite.DEFAULT_THRESHOLDS["operators"],
#: the Phase 3a guide's "overall >= 75 %"), the rule this command applies to any number of episodes.
#: Kept as a literal so --help imports no torch; tests/test_bad_inputs_models.py keeps the two equal.
DEFAULT_MIN_EXACT_MATCH = 0.75


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model dir, or a model name: <checkpoints>/<name> "
                             "($MYPT_CHECKPOINTS_DIR, default ./checkpoints)")
    parser.add_argument("--episodes", required=True, help="episodes JSONL (expected answer in _meta.expected)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer spec (default: the one saved in --model)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N episodes")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--min_exact_match", type=float, default=DEFAULT_MIN_EXACT_MATCH,
                        help=f"fail (exit 1) below this rate, in [0, 1] (default {DEFAULT_MIN_EXACT_MATCH}: bucket E's "
                             "gate; 0 reports without gating)")
    parser.add_argument("--output", default=None, help="write the JSON result here")
    parser.add_argument("--device", default=None)


def run(args: argparse.Namespace) -> int:
    from mypt_hf.commands.eval import load_model_and_tokenizer
    from mypt_hf.data.schema import load_episodes_jsonl
    from mypt_hf.errors import GateFailure, MyPTInputError
    from mypt_hf.evaluation.exact_match import episode_exact_match, format_exact_match
    from mypt_hf.io_utils import write_json

    import math

    for name in ("limit", "batch_size", "max_new_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise MyPTInputError(f"--{name} must be >= 1, got {value}", field=name)
    if not (math.isfinite(args.min_exact_match) and 0.0 <= args.min_exact_match <= 1.0):
        raise MyPTInputError(f"--min_exact_match must be a rate in [0, 1] (0 = report only), got {args.min_exact_match}",
                             field="min_exact_match")
    try:
        episodes = load_episodes_jsonl(args.episodes)
    except UnicodeDecodeError as error:  # read_jsonl lets a binary file through undecoded
        raise MyPTInputError(f"not a UTF-8 text file (byte {error.start}); expected JSONL episodes",
                             path=args.episodes, field="episodes") from None
    if args.limit is not None:
        episodes = episodes.select(range(min(args.limit, len(episodes))))
    model, tokenizer = load_model_and_tokenizer(args.model, args.tokenizer, args.device)
    result = episode_exact_match(model, tokenizer, list(episodes), batch_size=args.batch_size,
                                 max_new_tokens=args.max_new_tokens, progress=True)
    print(format_exact_match(result))
    if args.output:
        write_json(args.output, {"model": str(args.model), "episodes": str(args.episodes), **result})
    if result["exact_match"] < args.min_exact_match:
        raise GateFailure(f"exact match {result['exact_match']:.1%} below {args.min_exact_match:.1%}")
    return 0
