#!/usr/bin/env python
"""Phase 3a-2: format lock full with math (70 %) + β echo (20 %) + α replay (10 %), from the γ model.

    python recipes/phase3a2.py [--config recipes/configs/phase3a2.yaml] [--init_from_model DIR]

Gate: buckets A, B, C, D; every bucket is reported.
"""

from mypt_hf.data.echo import echo
from mypt_hf.data.format_lock import format_lock
from mypt_hf.training.recipe import MixPart, PhaseRun, run_recipe


def main(argv=None) -> int:
    run = PhaseRun.from_argv("phase3a2", argv)
    seed = run.data.episode_seed
    full = format_lock(mode="full", math="include", seed=seed)
    echo_beta = echo(gibberish="exclude", seed=seed, tokenizer=run.tokenizer, max_examples=run.data.echo_max_examples)
    alpha = format_lock(mode="minimal", math="exclude", seed=seed)
    run.prepare_mix([MixPart("format_lock_full", "format_lock full", full, 0.70, "mode=full, math=include"),
                     MixPart("beta_replay", "echo (β replay)", echo_beta, 0.20, "gibberish=exclude"),
                     MixPart("alpha_replay", "format_lock (α replay)", alpha, 0.10, "mode=minimal, math=exclude")],
                    default_size=len(full))
    run.train()
    run.gate()
    return run.save()


if __name__ == "__main__":
    run_recipe(main)
