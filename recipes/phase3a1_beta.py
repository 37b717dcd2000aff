#!/usr/bin/env python
"""Phase 3a-1β: echo without gibberish (85 %) + α replay (15 %), from the α model.

    python recipes/phase3a1_beta.py [--config recipes/configs/phase3a1_beta.yaml] [--init_from_model DIR]

Gate: buckets A, B, C; every bucket is reported.
"""

from mypt_hf.data.echo import echo
from mypt_hf.data.format_lock import format_lock
from mypt_hf.data.mixing import mix
from mypt_hf.training.recipe import PhaseRun, run_recipe, source_row


def main(argv=None) -> int:
    run = PhaseRun.from_argv("phase3a1_beta", argv)
    seed = run.data.episode_seed
    echo_beta = echo(gibberish="exclude", seed=seed, tokenizer=run.tokenizer, max_examples=run.data.echo_max_examples)
    alpha = format_lock(mode="minimal", math="exclude", seed=seed)
    size = run.data.mix_target_size or len(echo_beta)
    episodes = mix([echo_beta, alpha], weights=[0.85, 0.15], target_size=size, shuffle=True, seed=seed,
                   names=["echo", "alpha_replay"])
    run.prepare(episodes, sources=[source_row("echo", echo_beta, 0.85, "gibberish=exclude"),
                                   source_row("format_lock (α replay)", alpha, 0.15, "mode=minimal, math=exclude")])
    run.train()
    run.gate()
    return run.save()


if __name__ == "__main__":
    run_recipe(main)
