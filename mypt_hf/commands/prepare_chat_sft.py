"""`mypt-hf prepare-chat-sft`: the original prepare_chat_sft.py (same argument names) on datasets + the chat template.

The preparation options are the fields of :class:`mypt_hf.data.prepare.PrepareConfig` (HfArgumentParser builds
their flags, so name, default and help are stated once); the inputs and outputs are the plain arguments below.
"""

from __future__ import annotations

import argparse
import dataclasses

HELP = ("Tokenize episodes through the chat template with MyPT loss masks, split train/val (strict separation "
        "with --val_file), optionally pack whole episodes into blocks; writes a DatasetDict + mypt_metadata.json.")


def build_parser(prog: str) -> argparse.ArgumentParser:
    """PrepareConfig's options plus the input/output arguments (no torch is imported)."""
    from transformers import HfArgumentParser

    from mypt_hf.data.prepare import PrepareConfig

    parser = HfArgumentParser(PrepareConfig, prog=prog, description=HELP)
    parser.add_argument("--input", nargs="+", required=True,
                        help="episode JSONL file(s) or saved datasets.Dataset directories (concatenated in order)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--val_file", default=None,
                        help="explicit validation episodes (JSONL or dataset dir); val_split is then ignored and "
                             "any payload/template overlap with the input fails (exit 1)")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer spec for load_tokenizer: embedded (default), embedded:<N>, *.tiktoken, dir")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--allow_tokenizer_mismatch", action="store_true",
                        help="prepare episodes that their generator filtered by token counts with another tokenizer "
                             "(refused by default: the filter measured another vocabulary)")
    parser.add_argument("-q", "--quiet", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    from mypt_hf.data.prepare import PrepareConfig, prepare

    config = PrepareConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PrepareConfig)})
    prepare(args.input, args.output_dir, args.tokenizer, config, val_file=args.val_file, overwrite=args.overwrite,
            allow_tokenizer_mismatch=args.allow_tokenizer_mismatch, verbose=not args.quiet)
    return 0
