#!/usr/bin/env python
"""Phase 3a operators: COPY / WRAP / EXTRACT, 9,000 train / 1,000 validation episodes with disjoint templates
and payloads, packed by ``_meta.operator``, from the 3a-2 model.

    python recipes/phase3a_operator.py [--config recipes/configs/phase3a_operator.yaml] [--init_from_model DIR]

Gate: buckets A and E; every bucket is reported.
"""

from mypt_hf.data.operators import operators
from mypt_hf.training.recipe import PhaseRun, run_recipe, source_row


def main(argv=None) -> int:
    run = PhaseRun.from_argv("phase3a_operator", argv)
    data = operators(n_train=run.data.operator_n_train, n_val=run.data.operator_n_val,
                     max_tokens=run.data.operator_max_tokens, seed_train=run.data.episode_seed,
                     novel_word_share=run.data.operator_novel_word_share, tokenizer=run.tokenizer)
    run.prepare(data["train"], val_episodes=data["validation"],
                sources=[source_row("operators train", data["train"], 1.0, "COPY/WRAP/EXTRACT, train templates"),
                         source_row("operators validation", data["validation"], None, "unseen templates+payloads")])
    run.train()
    run.gate()
    # Reported, not gated: exact match on the generator's own validation split (unseen templates and payloads).
    run.score_held_out(data["validation"], "operator validation split")
    return run.save()


if __name__ == "__main__":
    run_recipe(main)
