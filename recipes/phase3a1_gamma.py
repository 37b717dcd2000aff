#!/usr/bin/env python
"""Phase 3a-1γ: BPE-safe gibberish echo (35 %) + β echo (50 %) + α replay (15 %), from the β model.

    python recipes/phase3a1_gamma.py [--config recipes/configs/phase3a1_gamma.yaml] [--init_from_model DIR]

Gate: buckets A, B, C; every bucket is reported.
"""

from mypt_hf.data.echo import echo
from mypt_hf.data.format_lock import format_lock
from mypt_hf.training.recipe import MixPart, PhaseRun, run_recipe


def main(argv=None) -> int:
    run = PhaseRun.from_argv("phase3a1_gamma", argv)
    seed = run.data.episode_seed
    gibberish = echo(gibberish="only", bpe_safe=True, seed=seed, tokenizer=run.tokenizer,
                     max_examples=run.data.echo_max_examples, max_target_tokens=run.data.echo_max_target_tokens,
                     gibberish_words_en=run.data.echo_gibberish_words_en,
                     gibberish_letters=run.data.echo_gibberish_letters)
    echo_beta = echo(gibberish="exclude", seed=seed, tokenizer=run.tokenizer, max_examples=run.data.echo_max_examples)
    alpha = format_lock(mode="minimal", math="exclude", seed=seed)
    run.prepare_mix([MixPart("echo_gibberish", "echo gibberish", gibberish, 0.35, "gibberish=only, bpe_safe"),
                     MixPart("beta_replay", "echo (β replay)", echo_beta, 0.50, "gibberish=exclude"),
                     MixPart("alpha_replay", "format_lock (α replay)", alpha, 0.15, "mode=minimal, math=exclude")],
                    default_size=len(gibberish) + len(echo_beta))
    run.train()
    run.gate()
    return run.save()


if __name__ == "__main__":
    run_recipe(main)
