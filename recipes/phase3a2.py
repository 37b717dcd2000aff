#!/usr/bin/env python
"""Phase 3a-2: format lock full with math (70 %) + β echo (20 %) + α replay (10 %), from the γ model.

    python recipes/phase3a2.py [--config phase3a2] [--init_from_model DIR]

Gate: buckets A, B, C, D; every bucket is reported.

The phase's steps are mypt_hf.phases.recipes.phase3a2; its configs ship with the package (mypt_hf/phases/configs/).
"""

from mypt_hf.phases.recipes import exit_with_status, run_phase


def main(argv=None) -> int:
    """Run the phase; ``argv`` defaults to the command line."""
    return run_phase("phase3a2", argv)


if __name__ == "__main__":
    exit_with_status(main)
