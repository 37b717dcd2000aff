#!/usr/bin/env python
"""The Phase 3a chain: (tiny base →) α → β → γ → 3a-2 → operators, each phase starting from the previous output.

    python recipes/run_all.py [--phases alpha,beta] [--output_root outputs/tiny] [--set max_steps=10 ...]
    accelerate launch recipes/run_all.py --config_suffix _750M --init_from_model checkpoints/mypt-750M-hf

Same as `mypt-hf run-phases` (see mypt_hf/training/chain.py). Exit 0 when every phase passes its gate, 1 when one
fails (every model is still saved), 2 for bad input. Writes <output_root>/chain_summary.md and .json.
"""

from mypt_hf.training.chain import main
from mypt_hf.training.recipe import run_recipe

if __name__ == "__main__":
    run_recipe(main)
