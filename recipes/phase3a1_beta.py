#!/usr/bin/env python
"""Phase 3a-1β: echo without gibberish (85 %) + α replay (15 %), from the α model.

    python recipes/phase3a1_beta.py [--config recipes/configs/phase3a1_beta.yaml] [--init_from_model DIR]

Gate: buckets A, B, C; every bucket is reported.
"""

from mypt_hf.data.echo import echo
from mypt_hf.data.format_lock import format_lock
from mypt_hf.training.recipe import MixPart, PhaseRun, run_recipe


def main(argv=None) -> int:
    run = PhaseRun.from_argv("phase3a1_beta", argv)
    seed = run.data.episode_seed
    echo_beta = echo(gibberish="exclude", seed=seed, tokenizer=run.tokenizer, max_examples=run.data.echo_max_examples)
    alpha = format_lock(mode="minimal", math="exclude", seed=seed)
    run.prepare_mix([MixPart("echo", "echo", echo_beta, 0.85, "gibberish=exclude"),
                     MixPart("alpha_replay", "format_lock (α replay)", alpha, 0.15, "mode=minimal, math=exclude")],
                    default_size=len(echo_beta))
    run.train()
    run.gate()
    return run.save()


if __name__ == "__main__":
    run_recipe(main)
