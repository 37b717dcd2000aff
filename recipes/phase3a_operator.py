#!/usr/bin/env python
"""Phase 3a operators: COPY / WRAP / EXTRACT, 9,000 train / 1,000 validation episodes with disjoint templates
and payloads, packed by ``_meta.operator``, from the 3a-2 model.

    python recipes/phase3a_operator.py [--config phase3a_operator] [--init_from_model DIR]

Gate: buckets A and E; every bucket is reported.

The phase's steps are mypt_hf.phases.recipes.phase3a_operator; its configs ship with the package (mypt_hf/phases/configs/).
"""

from mypt_hf.phases.recipes import exit_with_status, run_phase


def main(argv=None) -> int:
    """Run the phase; ``argv`` defaults to the command line."""
    return run_phase("phase3a_operator", argv)


if __name__ == "__main__":
    exit_with_status(main)
