#!/usr/bin/env python
"""Phase 3a-1α: format lock (minimal mode, no math).

    python recipes/phase3a1_alpha.py [--config recipes/configs/phase3a1_alpha.yaml] [--key value ...]
    accelerate launch recipes/phase3a1_alpha.py --config recipes/configs/phase3a1_alpha_750M.yaml \
        --init_from_model checkpoints/mypt-750M-hf

Gate: buckets A (format) and B (echo basics); every bucket is reported.
"""

from mypt_hf.data.format_lock import format_lock
from mypt_hf.training.recipe import PhaseRun, run_recipe, source_row


def main(argv=None) -> int:
    run = PhaseRun.from_argv("phase3a1_alpha", argv)
    alpha = format_lock(mode="minimal", math="exclude", seed=run.data.episode_seed)
    run.prepare(alpha, sources=[source_row("format_lock", alpha, 1.0, "mode=minimal, math=exclude")])
    run.train()
    run.gate()
    return run.save()


if __name__ == "__main__":
    run_recipe(main)
