#!/usr/bin/env python
"""Phase 3a-1γ: BPE-safe gibberish echo (35 %) + β echo (50 %) + α replay (15 %), from the β model.

    python recipes/phase3a1_gamma.py [--config phase3a1_gamma] [--init_from_model DIR]

Gate: buckets A, B, C; every bucket is reported.

The phase's steps are mypt_hf.phases.recipes.phase3a1_gamma; its configs ship with the package (mypt_hf/phases/configs/).
"""

from mypt_hf.phases.recipes import exit_with_status, run_phase


def main(argv=None) -> int:
    """Run the phase; ``argv`` defaults to the command line."""
    return run_phase("phase3a1_gamma", argv)


if __name__ == "__main__":
    exit_with_status(main)
