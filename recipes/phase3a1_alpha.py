#!/usr/bin/env python
"""Phase 3a-1α: format lock (minimal mode, no math).

    python recipes/phase3a1_alpha.py [--config phase3a1_alpha] [--key value ...]
    accelerate launch recipes/phase3a1_alpha.py --config phase3a1_alpha_750M \
        --init_from_model checkpoints/mypt-750M-hf

Gate: buckets A (format) and B (echo basics); every bucket is reported.

The phase's steps are mypt_hf.phases.recipes.phase3a1_alpha; its configs ship with the package (mypt_hf/phases/configs/).
"""

from mypt_hf.phases.recipes import exit_with_status, run_phase


def main(argv=None) -> int:
    """Run the phase; ``argv`` defaults to the command line."""
    return run_phase("phase3a1_alpha", argv)


if __name__ == "__main__":
    exit_with_status(main)
