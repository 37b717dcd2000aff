#!/usr/bin/env python
"""Tiny base: in-context copy pretraining, the tiny default's stand-in for a pretrained base model.

    python recipes/tiny_base.py [--config recipes/configs/tiny_base.yaml] [--key value ...]

The 750M recipes start from a pretrained MyPT base that can already copy from its context. A freshly initialised
tiny model cannot, and the Phase 3a data alone teaches it spellings of the training words instead of copying
(see mypt_hf/data/copy_pretraining.py). This step trains a fresh tiny model on made-up phrases followed by their
copies (no chat format, no eval prompt or payload word), so α starts from a model that copies.

Gate: greedy copy of held-out made-up phrases (mypt_hf.evaluation.copy_probe).
"""

from mypt_hf.data.copy_pretraining import copy_pretraining_dataset
from mypt_hf.training.recipe import PhaseRun, run_recipe, source_row


def main(argv=None) -> int:
    run = PhaseRun.from_argv("tiny_base", argv)
    data = run.data
    dataset, metadata = copy_pretraining_dataset(
        run.tokenizer, n_train_rows=data.copy_train_rows, n_val_rows=data.copy_val_rows,
        block_size=data.pack_block_size, seed=data.episode_seed, random_token_share=data.copy_random_token_share,
        bare_share=data.copy_bare_share, framed_share=data.copy_framed_share, variants_start=data.copy_variants_start)
    settings = (f"made-up phrases + their copies, {data.copy_random_token_share:.0%} random-token repeats, "
                f"{data.pack_block_size}-token rows; after {data.copy_variants_start:.0%} of the rows "
                f"{data.copy_bare_share:.0%} bare and {data.copy_framed_share:.0%} framed copies")
    run.use_dataset(dataset, metadata, sources=[source_row("copy_pretraining", dataset["train"], 1.0, settings)])
    run.train()
    run.gate()
    return run.save()


if __name__ == "__main__":
    run_recipe(main)
