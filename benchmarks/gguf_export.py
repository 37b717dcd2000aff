#!/usr/bin/env python
"""Time and peak memory of ``convert-to-gguf`` on a randomly initialised Llama-exact MyPT model of a given size.

The model is built and saved first (not timed), with the embedded tokenizer and the vocabulary padded to
``--vocab_size`` rows (the GPT-2 layout's 50304 by default), then exported once per ``--outtype``::

    python benchmarks/gguf_export.py --n_embd 1280 --n_layer 32 --n_head 20 --outtype f16 bf16   # ~750M

Prints one line per export: seconds, output size, and the process's peak RSS so far (``ru_maxrss``, which
includes building the model, so the first line is the one to read for the whole job).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n_embd", type=int, default=256)
    parser.add_argument("--n_layer", type=int, default=4)
    parser.add_argument("--n_head", type=int, default=4)
    parser.add_argument("--vocab_size", type=int, default=50304)
    parser.add_argument("--outtype", nargs="+", default=["f16"], choices=["f32", "f16", "bf16"])
    parser.add_argument("--workdir", default=None, help="where the model and the GGUF files go (default: a temp dir)")
    args = parser.parse_args(argv)

    import torch

    from mypt_hf.configuration_mypt import MyPTConfig
    from mypt_hf.gguf_export import export_gguf
    from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
    from mypt_hf.tokenization_mypt import load_tokenizer

    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        root = Path(scratch)
        tokenizer = load_tokenizer()
        torch.manual_seed(0)
        model = MyPTForCausalLM(MyPTConfig(vocab_size=args.vocab_size, hidden_size=args.n_embd,
                                           num_hidden_layers=args.n_layer, num_attention_heads=args.n_head,
                                           max_position_embeddings=1024, lm_head_bias=False))
        set_mypt_generation_config(model, tokenizer)
        params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(root / "m")
        tokenizer.save_pretrained(root / "m")
        del model
        for outtype in args.outtype:
            start = time.perf_counter()
            out = export_gguf(root / "m", root / f"m-{outtype}.gguf", outtype=outtype)
            seconds = time.perf_counter() - start
            peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"params {params / 1e6:.1f}M  outtype {outtype}  {seconds:.1f} s  "
                  f"file {out.stat().st_size / 2**20:.0f} MiB  peak RSS {peak_mib:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
