"""Whole eval suite (buckets A-E) wall time: batched generation vs one prompt at a time, same tiny model.

    OMP_NUM_THREADS=1 python benchmarks/eval_suite_speed.py [--hidden 128 --layers 4 --batch_size 32]

Both runs are greedy on the same model and prompts, so they must produce identical reports (checked).
Target: batched >= 4x faster.
"""

from __future__ import annotations

import argparse
import time

import torch

from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.evaluation.suite import build_items, run_eval_suite
from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--tokenizer", default=None, help="tokenizer spec (default: embedded)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    tokenizer = load_tokenizer(args.tokenizer)
    torch.manual_seed(0)
    # Untied with a wide init so replies differ per prompt and stop at different lengths, like a real model's.
    config = MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=args.hidden,
                        num_hidden_layers=args.layers, num_attention_heads=args.heads, max_position_embeddings=256,
                        tie_word_embeddings=False, initializer_range=0.3)
    model = MyPTForCausalLM(config).to(args.device).eval()
    set_mypt_generation_config(model, tokenizer)
    n_prompts = len(build_items())
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M params, {args.layers}x{args.hidden}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}; suite: {n_prompts} prompts, max_new_tokens {args.max_new_tokens}")

    run_eval_suite(model, tokenizer, buckets=["A"], batch_size=args.batch_size, max_new_tokens=4, progress=False)

    def timed(batch_size):
        start = time.perf_counter()
        report = run_eval_suite(model, tokenizer, batch_size=batch_size, max_new_tokens=args.max_new_tokens,
                                progress=False)
        return time.perf_counter() - start, report

    batched_s, batched = timed(args.batch_size)
    single_s, single = timed(1)
    same = ([i["generated"] for b in batched["buckets"].values() for i in b["items"]]
            == [i["generated"] for b in single["buckets"].values() for i in b["items"]])
    print(f"batched (batch_size={args.batch_size}): {batched_s:.2f} s")
    print(f"one prompt at a time:         {single_s:.2f} s")
    print(f"speed-up: {single_s / batched_s:.1f}x   identical generations: {same}")


if __name__ == "__main__":
    main()
