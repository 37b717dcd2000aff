"""`mypt-hf prepare-chat-sft`: the original prepare_chat_sft.py (same argument names) on datasets + the chat template."""

from __future__ import annotations

import argparse

HELP = ("Tokenize episodes through the chat template with MyPT loss masks, split train/val (strict separation "
        "with --val_file), optionally pack whole episodes into blocks; writes a DatasetDict + mypt_metadata.json.")


def add_arguments(parser) -> None:
    parser.add_argument("--input", nargs="+", required=True,
                        help="episode JSONL file(s) or saved datasets.Dataset directories (concatenated in order)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--val_file", default=None,
                        help="explicit validation episodes (JSONL or dataset dir); val_split is then ignored and "
                             "any payload/template overlap with the input fails (exit 1)")
    parser.add_argument("--val_split", type=float, default=0.1, help="seeded random validation share")
    parser.add_argument("--enable_packing", action="store_true", help="pack whole episodes into fixed blocks")
    parser.add_argument("--pack_block_size", type=int, default=1024,
                        help="block size (also the longest allowed episode, packed or not)")
    parser.add_argument("--pack_by_field", default=None, help="group episodes by this _meta dot path, e.g. _meta.operator")
    parser.add_argument("--pack_shuffle", dest="pack_shuffle", action="store_true", default=True,
                        help="shuffle episodes within groups and the block order (seeded; default)")
    parser.add_argument("--no_pack_shuffle", dest="pack_shuffle", action="store_false")
    parser.add_argument("--system_prompt", default=None, help="system prompt for every episode (overrides theirs)")
    parser.add_argument("--no_system_prompt", action="store_true", help="drop every system message")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer spec for load_tokenizer: embedded (default), embedded:<N>, *.tiktoken, dir")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--overlong", choices=("error", "drop"), default="error",
                        help="episodes longer than the block: fail naming the first (default) or drop and count")
    parser.add_argument("--num_proc", type=int, default=1, help="worker processes for tokenization")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("-q", "--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from mypt_hf.data.prepare import prepare

    prepare(args.input, args.output_dir, args.tokenizer, overwrite=args.overwrite, val_file=args.val_file,
            val_split=args.val_split, enable_packing=args.enable_packing, pack_block_size=args.pack_block_size,
            pack_by_field=args.pack_by_field, pack_shuffle=args.pack_shuffle, system_prompt=args.system_prompt,
            no_system_prompt=args.no_system_prompt, overlong=args.overlong, num_proc=args.num_proc,
            seed=args.seed, verbose=not args.quiet)
    return 0
