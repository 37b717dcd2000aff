#!/usr/bin/env python
"""Supervised tokens per second of MyPTSFTTrainer on the tiny config: packed vs unpacked (padded to the block).

Both runs use the same operator episodes, model, batch size (rows), block length and step count; the
unpacked rows hold one episode each and are padded to the block, the packed rows hold as many whole
episodes of one operator as fit. Each row costs the same compute, so the ratio of supervised tokens per
second is the packing gain the trainer actually gets.

    OMP_NUM_THREADS=2 python benchmarks/train_throughput.py [--steps 30] [--block 256] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def run_once(dataset, metadata, tokenizer, args, packed: bool, output_dir: str) -> dict:
    import torch

    from mypt_hf.data.packing import PackedEpisodeCollator
    from mypt_hf.training import MyPTSFTConfig, MyPTSFTTrainer
    from mypt_hf.training.modeling import ModelArguments, build_fresh_model

    model, _ = build_fresh_model(ModelArguments(hidden_size=args.width, num_hidden_layers=args.layers,
                                                num_attention_heads=4, block_size=args.block),
                                 tokenizer=tokenizer, seed=0)
    config = MyPTSFTConfig(output_dir=output_dir, max_steps=args.steps + args.warmup_steps,
                           per_device_train_batch_size=args.batch, learning_rate=1e-3, warmup_steps=2,
                           logging_steps=10_000, save_strategy="no", eval_strategy="no", disable_tqdm=True,
                           dataloader_num_workers=0, seed=0)
    collator = PackedEpisodeCollator(pad_token_id=tokenizer.pad_token_id, packed=packed,
                                     pad_to_multiple_of=args.block)
    trainer = MyPTSFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                             data_collator=collator, dataset_metadata=metadata)

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        """Start the clock after the warm-up steps (allocator, first-call overheads)."""

        t0 = None
        sup0 = 0

        def on_step_end(self, a, state, control, **kw):
            if state.global_step == args.warmup_steps:
                Clock.t0 = time.perf_counter()
                Clock.sup0 = trainer._supervised_tokens_total

    trainer.add_callback(Clock())
    trainer.train()
    elapsed = time.perf_counter() - Clock.t0
    supervised = trainer._supervised_tokens_total - Clock.sup0
    tokens = args.steps * args.batch * args.block
    del torch
    return {"packed": packed, "steps": args.steps, "seconds": round(elapsed, 2),
            "supervised_tokens": supervised, "supervised_tokens_per_s": round(supervised / elapsed, 1),
            "tokens_per_s": round(tokens / elapsed, 1), "rows": len(dataset)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per run")
    parser.add_argument("--warmup_steps", type=int, default=3, help="untimed steps first")
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--n_train", type=int, default=3000, help="operator episodes")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternate packed/unpacked runs this many times and keep each one's best (shared CPUs)")
    parser.add_argument("--output", default=None, help="write the result as JSON")
    args = parser.parse_args()

    import tempfile

    import torch

    from mypt_hf.data.operators import operators
    from mypt_hf.data.prepare import PrepareConfig, prepare_dataset
    from mypt_hf.tokenization_mypt import load_tokenizer

    tokenizer = load_tokenizer()
    episodes = operators(n_train=args.n_train, n_val=10, tokenizer=tokenizer)["train"]
    common = dict(val_split=0.0, pack_block_size=args.block, seed=0, verbose=False)
    packed_ds, packed_meta = prepare_dataset(episodes, tokenizer, config=PrepareConfig(enable_packing=True, pack_by_field="_meta.operator"), **common)
    unpacked_ds, unpacked_meta = prepare_dataset(episodes, tokenizer, config=PrepareConfig(enable_packing=False), **common)
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for packed, (ds, meta) in ((False, (unpacked_ds, unpacked_meta)), (True, (packed_ds, packed_meta))):
                r = run_once(ds["train"], meta, tokenizer, args, packed, os.path.join(tmp, f"{packed}{repeat}"))
                print(f"{'packed  ' if packed else 'unpacked'}: {r['supervised_tokens_per_s']:>9.1f} supervised "
                      f"tokens/s ({r['supervised_tokens']} in {r['seconds']} s, {r['tokens_per_s']:.0f} tokens/s, "
                      f"{r['rows']} rows)", flush=True)
                if packed not in best or r["supervised_tokens_per_s"] > best[packed]["supervised_tokens_per_s"]:
                    best[packed] = r
    results = [best[False], best[True]]
    ratio = results[1]["supervised_tokens_per_s"] / results[0]["supervised_tokens_per_s"]
    summary = {
        "benchmark": "train_throughput", "ratio_packed_over_unpacked": round(ratio, 2), "target": ">= 4x",
        "config": {k: getattr(args, k) for k in ("steps", "block", "batch", "layers", "width", "n_train")},
        "runs": results, "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                     "platform": platform.platform(), "cuda": torch.cuda.is_available(),
                                     "load_avg": os.getloadavg()},
    }
    print(f"packed / unpacked supervised tokens per second: {ratio:.2f}x (target >= 4x)")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
