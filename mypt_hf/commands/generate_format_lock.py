"""`mypt-hf generate-format-lock`: the original generate_format_lock_dataset.py (plus --seed)."""

from __future__ import annotations

HELP = "Generate format-lock Q&A episodes (mypt_format_lock_v1.jsonl + metadata)."
OUTPUT_NAME = "mypt_format_lock_v1.jsonl"


def add_arguments(parser) -> None:
    parser.add_argument("--output_dir", default="data/sft_format_lock")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--mode", default="full", help="full | minimal")
    parser.add_argument("--math", default="include", help="include | exclude | only | minimal")
    parser.add_argument("--seed", type=int, default=42, help="shuffle seed (the original hard-codes 42)")


def run(args) -> int:
    from pathlib import Path

    import mypt_hf
    from mypt_hf.data.format_lock import format_lock
    from mypt_hf.data.mixing import summarize_episodes
    from mypt_hf.data.schema import save_episodes_jsonl
    from mypt_hf.io_utils import atomic_files, check_outputs_writable, write_json

    out = Path(args.output_dir)
    path, meta = out / OUTPUT_NAME, out / "mypt_format_lock_v1.meta.json"
    check_outputs_writable([path, meta], overwrite=args.overwrite, field="output_dir")
    dataset = format_lock(mode=args.mode, math=args.math, seed=args.seed)
    with atomic_files([path, meta]) as temp:
        save_episodes_jsonl(dataset, temp[path])
        write_json(temp[meta], {
            "generator": "format_lock", "version": mypt_hf.__version__, "seed": args.seed,
            "args": {"output_dir": args.output_dir, "mode": args.mode, "math": args.math, "seed": args.seed},
            "tokenizer_filter": None,  # no token-count filter: the episodes do not depend on a tokenizer
            "output": OUTPUT_NAME, **summarize_episodes(dataset)})
    print(f"wrote {len(dataset)} episodes to {path}")
    return 0
