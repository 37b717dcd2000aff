"""`mypt-hf convert`: a native MyPT checkpoint -> an HF model directory, or an HF MyPT dir -> a Llama dir."""

from __future__ import annotations

import argparse

HELP = "Convert a native MyPT checkpoint to an HF model directory (or, with --to_llama, to a plain Llama one)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True,
                        help="native checkpoint dir (config.json + model.pt), model.pt, legacy final.pt/latest.pt, "
                             "or with --to_llama an HF MyPT directory")
    parser.add_argument("--output_dir", required=True, help="directory to write (atomically)")
    parser.add_argument("--tokenizer", default=None,
                        help="GPT-2 tokenizer source for gpt2-kind checkpoints: a *.tiktoken rank file, a local "
                             "tokenizer directory, or a hub id (default: openai-community/gpt2, needs network)")
    parser.add_argument("--skip_tokenizer", action="store_true", help="write the model without a tokenizer")
    parser.add_argument("--to_llama", action="store_true",
                        help="write a plain LlamaForCausalLM dir; refused unless exact (rope/swiglu/rmsnorm, "
                             "no lm_head bias)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from ..convert import convert_checkpoint, export_llama
    from ..errors import MyPTInputError
    from ..model_files import read_model_config

    source = Path(args.input)
    if not args.to_llama:
        out = convert_checkpoint(source, args.output_dir, args.tokenizer, skip_tokenizer=args.skip_tokenizer,
                                 overwrite=args.overwrite)
        print(f"wrote HF model to {out}")
        return 0
    if Path(args.output_dir).exists() and not args.overwrite:  # before any work, as convert_checkpoint does
        raise MyPTInputError("output directory already exists (pass --overwrite to replace it)",
                             path=args.output_dir, field="output_dir")
    if source.is_dir() and (source / "config.json").is_file() and "model_type" in read_model_config(source, field="input"):
        out = export_llama(source, args.output_dir, overwrite=args.overwrite)
    else:  # a native checkpoint: convert to HF first, in a scratch directory (errors name the user's input)
        with tempfile.TemporaryDirectory() as scratch:
            hf_dir = Path(scratch) / "hf"
            convert_checkpoint(source, hf_dir, args.tokenizer, skip_tokenizer=args.skip_tokenizer)
            out = export_llama(hf_dir, args.output_dir, overwrite=args.overwrite, source=source)
    print(f"wrote LlamaForCausalLM to {out}")
    return 0
