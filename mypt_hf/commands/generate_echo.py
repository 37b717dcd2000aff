"""`mypt-hf generate-echo`: the original generate_echo_dataset.py."""

from __future__ import annotations

HELP = "Generate echo episodes: prefix echo, BPE-safe gibberish, anti-echo, contrast groups (mypt_echo_diverse.jsonl)."
OUTPUT_NAME = "mypt_echo_diverse.jsonl"


def add_arguments(parser) -> None:
    parser.add_argument("--output_dir", default="data/sft_echo")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--gibberish", default="exclude", help="include | exclude | only")
    parser.add_argument("--bpe_safe", dest="bpe_safe", action="store_true", default=True,
                        help="keep only made-up words of at most --max_target_tokens tokens (default on)")
    parser.add_argument("--no_bpe_safe", dest="bpe_safe", action="store_false")
    parser.add_argument("--max_target_tokens", type=int, default=4)
    parser.add_argument("--anti_echo_ratio", type=float, default=0.2, help="share of output rows")
    parser.add_argument("--contrast_ratio", type=float, default=0.2, help="share of output rows")
    parser.add_argument("--max_examples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tokenizer", default=None, help="tokenizer for the BPE-safe check (default: embedded); give the model's, prepare "
                             "refuses data filtered with another")
    parser.add_argument("--gibberish_words_en", type=int, default=300, help="made-up English words (new)")
    parser.add_argument("--gibberish_words_de", type=int, default=60, help="made-up German words (new)")
    parser.add_argument("--gibberish_letters", action="store_true",
                        help="letter-level made-up English words instead of syllable pairs (new)")


def run(args) -> int:
    from pathlib import Path

    import mypt_hf
    from mypt_hf.data.echo import check_echo_args, echo
    from mypt_hf.data.mixing import summarize_episodes
    from mypt_hf.data.schema import save_episodes_jsonl
    from mypt_hf.io_utils import atomic_files, check_outputs_writable, write_json

    check_echo_args(args.gibberish, args.max_target_tokens, args.anti_echo_ratio, args.contrast_ratio, args.max_examples,
                    args.gibberish_words_en, args.gibberish_words_de)
    out = Path(args.output_dir)
    path, meta = out / OUTPUT_NAME, out / "mypt_echo_diverse.meta.json"
    check_outputs_writable([path, meta], overwrite=args.overwrite, field="output_dir")
    tokenizer, fingerprint, token_filter = None, None, None
    if args.bpe_safe:
        from mypt_hf.data.provenance import tokenizer_filter_record
        from mypt_hf.tokenization_mypt import load_tokenizer, tokenizer_fingerprint

        tokenizer = load_tokenizer(args.tokenizer)
        fingerprint = tokenizer_fingerprint(tokenizer)
        token_filter = tokenizer_filter_record(args.tokenizer, fingerprint,
                                               f"--bpe_safe: made-up words of at most {args.max_target_tokens} tokens")
    dataset = echo(gibberish=args.gibberish, bpe_safe=args.bpe_safe, max_target_tokens=args.max_target_tokens,
                   anti_echo_ratio=args.anti_echo_ratio, contrast_ratio=args.contrast_ratio,
                   max_examples=args.max_examples, seed=args.seed, tokenizer=tokenizer,
                   gibberish_words_en=args.gibberish_words_en, gibberish_words_de=args.gibberish_words_de,
                   gibberish_letters=args.gibberish_letters)
    arguments = {k: getattr(args, k) for k in ("output_dir", "gibberish", "bpe_safe", "max_target_tokens",
                                               "anti_echo_ratio", "contrast_ratio", "max_examples", "seed", "tokenizer",
                                               "gibberish_words_en", "gibberish_words_de", "gibberish_letters")}
    with atomic_files([path, meta]) as temp:
        save_episodes_jsonl(dataset, temp[path])
        write_json(temp[meta], {
            "generator": "echo", "version": mypt_hf.__version__, "seed": args.seed, "args": arguments,
            "tokenizer_fingerprint": fingerprint, "tokenizer_filter": token_filter, "output": OUTPUT_NAME, **summarize_episodes(dataset)})
    print(f"wrote {len(dataset)} episodes to {path}")
    return 0
