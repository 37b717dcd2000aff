#!/usr/bin/env python
"""The Phase 3a chain: (tiny base →) α → β → γ → 3a-2 → operators, each phase starting from the previous output.

    python recipes/run_all.py [--phases alpha,beta] [--output_root outputs/tiny] [--set max_steps=10 ...]
    accelerate launch recipes/run_all.py --config_suffix _750M --init_from_model checkpoints/mypt-750M-hf

Same as `mypt-hf run-phases` (see mypt_hf/phases/chain.py). Exit 0 when every phase passes its gate, 1 when one
fails (every model is still saved), 2 for bad input. Writes <output_root>/chain_summary.md and .json.
"""

import sys

from mypt_hf.cli import main as cli
from mypt_hf.phases.recipes import exit_with_status


def main(argv=None) -> int:
    """``mypt-hf run-phases`` with ``argv`` (default: the command line)."""
    return cli(["run-phases", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    exit_with_status(main)
