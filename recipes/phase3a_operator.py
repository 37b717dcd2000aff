#!/usr/bin/env python
"""Phase 3a operators: COPY / WRAP / EXTRACT, 9,000 train / 1,000 validation episodes with disjoint templates
and payloads, packed by ``_meta.operator``, from the 3a-2 model.

    python recipes/phase3a_operator.py [--config recipes/configs/phase3a_operator.yaml] [--init_from_model DIR]

Gate: buckets A and E; every bucket is reported.
"""

from mypt_hf.data.format_lock import format_lock
from mypt_hf.data.mixing import mix
from mypt_hf.data.operators import operators
from mypt_hf.training.recipe import PhaseRun, run_recipe, source_row


def main(argv=None) -> int:
    run = PhaseRun.from_argv("phase3a_operator", argv)
    share = run.data.operator_format_replay_share  # in [0, 1): checked when the arguments are parsed
    data = operators(n_train=run.data.operator_n_train, n_val=run.data.operator_n_val,
                     max_tokens=run.data.operator_max_tokens, seed_train=run.data.episode_seed,
                     novel_word_share=run.data.operator_novel_word_share,
                     bracket_contrast=run.data.operator_bracket_contrast, tokenizer=run.tokenizer)
    train = data["train"]
    sources = [source_row("operators train", data["train"], 1.0 - share, "COPY/WRAP/EXTRACT, train templates")]
    if share:  # the tiny default: a little α replay keeps the stop on plain chat prompts
        replay = format_lock(mode="minimal", math="exclude", seed=run.data.episode_seed)
        train = mix([data["train"], replay], weights=[1.0 - share, share], target_size=round(len(train) / (1.0 - share)),
                    shuffle=True, seed=run.data.episode_seed, names=["operators", "alpha_replay"])
        sources.append(source_row("α replay (format lock minimal)", replay, share, "mode=minimal, math=exclude"))
    sources.append(source_row("operators validation", data["validation"], None, "unseen templates+payloads"))
    run.prepare(train, val_episodes=data["validation"], sources=sources)
    run.train()
    run.gate()
    # Reported, not gated: exact match on the generator's own validation split (unseen templates and payloads).
    run.score_held_out(data["validation"], "operator validation split")
    return run.save()


if __name__ == "__main__":
    run_recipe(main)
