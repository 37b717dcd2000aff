"""`mypt-hf convert-to-gguf`: a Llama-exact MyPT model -> one GGUF file for llama.cpp (the original's
``export/convert_to_gguf.py``, same argument names)."""

from __future__ import annotations

import argparse

HELP = "Write a Llama-exact MyPT model as a GGUF file for llama.cpp (refused unless exactly a Llama)."

OUTTYPES = ("f32", "f16", "bf16")  # mypt_hf.gguf_export.OUTTYPES; repeated here so --help imports nothing heavy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hf", required=True,
                        help="HF MyPT model directory saved with its tokenizer, or a native MyPT checkpoint "
                             "(config.json + model.pt, model.pt, final.pt/latest.pt)")
    parser.add_argument("--out", required=True, help="the .gguf file to write (atomically)")
    parser.add_argument("--outtype", default="f16", choices=OUTTYPES,
                        help="type of the weight matrices (norms and biases stay f32, as in llama.cpp's converter)")
    parser.add_argument("--tokenizer", default=None,
                        help="for a native checkpoint: the GPT-2 tokenizer source, as in `convert` (a *.tiktoken "
                             "rank file, a tokenizer directory or a hub id)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    from ..gguf_export import convert_to_gguf

    out = convert_to_gguf(args.hf, args.out, outtype=args.outtype, tokenizer=args.tokenizer,
                          overwrite=args.overwrite)
    print(f"wrote GGUF ({args.outtype}) to {out}")
    return 0
