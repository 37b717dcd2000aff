#!/usr/bin/env python
"""Tiny base: in-context copy pretraining, the tiny default's stand-in for a pretrained base model.

    python recipes/tiny_base.py [--config tiny_base] [--key value ...]

The 750M recipes start from a pretrained MyPT base that can already copy from its context. A freshly initialised
tiny model cannot, and the Phase 3a data alone teaches it spellings of the training words instead of copying
(see mypt_hf/data/copy_pretraining.py). This step trains a fresh tiny model on made-up phrases followed by their
copies (no chat format, no eval prompt or payload word), so α starts from a model that copies.

Gate: greedy copy of held-out made-up phrases (mypt_hf.evaluation.copy_probe).

The phase's steps are mypt_hf.phases.recipes.tiny_base; its configs ship with the package (mypt_hf/phases/configs/).
"""

from mypt_hf.phases.recipes import exit_with_status, run_phase


def main(argv=None) -> int:
    """Run the phase; ``argv`` defaults to the command line."""
    return run_phase("tiny_base", argv)


if __name__ == "__main__":
    exit_with_status(main)
