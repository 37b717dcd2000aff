#!/usr/bin/env python
"""Seconds per training step on CPU in fp32 and under CPU bf16 autocast (what ``bf16: true`` does on a CPU).

The model is the 750M rehearsal's shape by default (GPT-2 vocabulary 50304, 64 wide, 2 layers), batch 2 x 512:
the tied 50304-row head dominates, which is where a CPU without native bf16 (AVX512-BF16 / AMX) is slowest.
Timings need a machine to itself.

    python benchmarks/cpu_bf16_step.py                      # ~2 min on a 2-core AVX2 CPU
    python benchmarks/cpu_bf16_step.py --steps 1 --seq 64   # smoke, seconds
"""

from __future__ import annotations

import argparse
import json
import time


def step_seconds(model, ids, bf16: bool, steps: int) -> float:
    """Mean seconds of a forward + backward over ``steps`` steps, after one warm-up step."""
    import torch

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        model.zero_grad(set_to_none=True)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    import torch

    from mypt_hf.configuration_mypt import MyPTConfig
    from mypt_hf.modeling_mypt import MyPTForCausalLM

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = MyPTConfig(vocab_size=args.vocab, hidden_size=args.width, num_hidden_layers=args.layers,
                        num_attention_heads=4, max_position_embeddings=max(args.seq, 128))
    model = MyPTForCausalLM(config).train()
    ids = torch.randint(0, args.vocab, (args.batch, args.seq))
    fp32 = step_seconds(model, ids, False, args.steps)
    bf16 = step_seconds(model, ids, True, args.steps)
    print(json.dumps({"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                      "shape": vars(args), "fp32_s_per_step": round(fp32, 3), "bf16_s_per_step": round(bf16, 3),
                      "bf16_over_fp32": round(bf16 / fp32, 2)}))


if __name__ == "__main__":
    main()
