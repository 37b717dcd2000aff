"""`mypt-hf inspect-sft-dataset`: the original inspect_sft_dataset.py for prepared datasets."""

from __future__ import annotations

import argparse

HELP = ("Statistics of a prepared SFT dataset (tokens, supervised tokens, mask ratio, fill, episodes per block), "
        "decoded samples with supervised spans marked, and recommended max_steps for 2.0/3.0/3.5 passes.")


def add_arguments(parser) -> None:
    parser.add_argument("--dataset_dir", required=True)
    parser.add_argument("--show_samples", type=int, default=0)
    parser.add_argument("--split", choices=("train", "val", "validation"), default="train")
    parser.add_argument("--config", default=None, help="training config (YAML/JSON) to read the batch size from")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="per-device batch size (default: from --config, else 16)")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=None,
                        help="gradient accumulation (default: from --config, else 1)")
    parser.add_argument("--num_processes", type=int, default=None,
                        help="training processes (GPUs) (default: the launcher's WORLD_SIZE, else 1); the "
                             "recommended steps use processes x per-device batch x accumulation")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer for decoding samples (default: the spec recorded in the metadata)")


def run(args: argparse.Namespace) -> int:
    from mypt_hf.data.inspect import format_report, inspect
    from mypt_hf.errors import MyPTInputError

    if args.show_samples < 0:
        raise MyPTInputError(f"--show_samples must be >= 0, got {args.show_samples}", field="show_samples")
    report = inspect(args.dataset_dir, split=args.split, show_samples=args.show_samples, config=args.config,
                     batch_size=args.batch_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
                     num_processes=args.num_processes, tokenizer=args.tokenizer)
    print(format_report(report))
    return 0
