"""`mypt-hf generate-operators`: the original generate_operator_dataset.py (COPY / WRAP / EXTRACT)."""

from __future__ import annotations

HELP = "Generate COPY/WRAP/EXTRACT operator episodes (operator_train.jsonl, operator_val.jsonl, dataset_metadata.json)."


def add_arguments(parser) -> None:
    parser.add_argument("--output_dir", default="data/sft_operator")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--n_train", type=int, default=5000, help="training episodes (each with its own payload)")
    parser.add_argument("--n_val", type=int, default=500, help="validation episodes")
    parser.add_argument("--max_words", type=int, default=4)
    parser.add_argument("--max_tokens", type=int, default=12)
    parser.add_argument("--word_dist", default="0.35,0.30,0.20,0.15")
    parser.add_argument("--seed_train", type=int, default=42)
    parser.add_argument("--seed_val", type=int, default=12345)
    parser.add_argument("--no_german", action="store_true")
    parser.add_argument("--novel_word_share", type=float, default=0.0,
                        help="share of payloads made mostly of made-up words (0..1; 0 = word pools only)")
    parser.add_argument("--bracket_contrast", action="store_true",
                        help="add training phrasings where COPY verbs recur bracketed in WRAP (new; off = the original's)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer for the max_tokens check (default: embedded); give the model's, prepare "
                             "refuses data filtered with another")


def run(args) -> int:
    from pathlib import Path

    import mypt_hf
    from mypt_hf.data.mixing import summarize_episodes
    from mypt_hf.data.operators import (VAL_TEMPLATES, by_operator, check_operator_args, operators,
                                        training_templates)
    from mypt_hf.data.provenance import tokenizer_filter_record
    from mypt_hf.data.schema import save_episodes_jsonl
    from mypt_hf.io_utils import atomic_files, check_outputs_writable, write_json
    from mypt_hf.tokenization_mypt import load_tokenizer, tokenizer_fingerprint

    shares = check_operator_args(args.n_train, args.n_val, args.max_words, args.max_tokens, args.word_dist,
                                 args.seed_train, args.seed_val, args.novel_word_share)
    out = Path(args.output_dir)
    train_path, val_path, meta = out / "operator_train.jsonl", out / "operator_val.jsonl", out / "dataset_metadata.json"
    check_outputs_writable([train_path, val_path, meta], overwrite=args.overwrite, field="output_dir")
    tokenizer = load_tokenizer(args.tokenizer)
    splits = operators(n_train=args.n_train, n_val=args.n_val, max_words=args.max_words, max_tokens=args.max_tokens,
                       word_dist=args.word_dist, seed_train=args.seed_train, seed_val=args.seed_val,
                       german=not args.no_german, tokenizer=tokenizer, novel_word_share=args.novel_word_share,
                       bracket_contrast=args.bracket_contrast)
    train_templates = by_operator(training_templates(args.bracket_contrast))
    train_payloads = {m["payload"] for m in splits["train"]["_meta"]}
    val_payloads = {m["payload"] for m in splits["validation"]["_meta"]}
    arguments = {k: getattr(args, k) for k in ("output_dir", "n_train", "n_val", "max_words", "max_tokens",
                                               "word_dist", "seed_train", "seed_val", "no_german", "tokenizer",
                                               "novel_word_share", "bracket_contrast")}
    metadata = {
        "generator": "operators", "version": mypt_hf.__version__, "args": arguments,
        "seed_train": args.seed_train, "seed_val": args.seed_val, "word_distribution": shares,
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "tokenizer_filter": tokenizer_filter_record(args.tokenizer, tokenizer_fingerprint(tokenizer),
                                                    f"--max_tokens: payloads of at most {args.max_tokens} tokens"),
        "n_train_episodes": len(splits["train"]), "n_val_episodes": len(splits["validation"]),
        "n_unique_train_payloads": len(train_payloads), "n_unique_val_payloads": len(val_payloads),
        "payload_overlap": bool(train_payloads & val_payloads),
        "template_overlap": any(set(train_templates[op]) & set(VAL_TEMPLATES[op]) for op in train_templates),
        "train_templates": train_templates, "val_templates": VAL_TEMPLATES,
        "train": summarize_episodes(splits["train"]), "validation": summarize_episodes(splits["validation"])}
    with atomic_files([train_path, val_path, meta]) as temp:  # the three appear together or not at all
        save_episodes_jsonl(splits["train"], temp[train_path])
        save_episodes_jsonl(splits["validation"], temp[val_path])
        write_json(temp[meta], metadata)
    print(f"wrote {len(splits['train'])} train and {len(splits['validation'])} validation episodes to {out}")
    return 0
