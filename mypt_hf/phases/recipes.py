"""What each phase trains on: the phase's own steps (generate, mix, prepare, train, gate), one function a phase.

Each function takes a :class:`~mypt_hf.phases.run.PhaseRun` and calls its methods in order; :func:`run_phase`
parses the arguments, runs the phase's steps and returns the exit status. The scripts in the repository's
``recipes/`` folder, ``python -m mypt_hf.phases <phase>`` and the chain all come here, so an installed wheel runs
every phase without the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

from ..exit_codes import call_with_exit_codes, pop_debug_flag
from .registry import get_phase
from .run import MixPart, PhaseRun, source_row


def tiny_base(run: PhaseRun) -> None:
    """Copy pretraining of a fresh tiny model: made-up phrases followed by their copies (no chat format, no eval
    prompt or payload word), so α starts from a model that copies. Gate: greedy copy of held-out phrases."""
    from ..data.copy_pretraining import copy_pretraining_dataset

    copy, base, block = run.group("copy"), run.group("tiny_base"), run.data.pack_block_size
    dataset, metadata = copy_pretraining_dataset(
        run.tokenizer, n_train_rows=base.copy_train_rows, n_val_rows=base.copy_val_rows, block_size=block,
        seed=run.data.episode_seed, random_token_share=copy.copy_random_token_share,
        bare_share=copy.copy_bare_share, framed_share=copy.copy_framed_share,
        variants_start=base.copy_variants_start)
    settings = (f"made-up phrases + their copies, {copy.copy_random_token_share:.0%} random-token repeats, "
                f"{block}-token rows; after {base.copy_variants_start:.0%} of the rows "
                f"{copy.copy_bare_share:.0%} bare and {copy.copy_framed_share:.0%} framed copies")
    run.use_dataset(dataset, metadata, sources=[source_row("copy_pretraining", dataset["train"], 1.0, settings)])
    run.train()
    run.gate()


def _alpha_episodes(run: PhaseRun):
    from ..data.format_lock import format_lock

    return format_lock(mode="minimal", math="exclude", seed=run.data.episode_seed)


def _beta_echo(run: PhaseRun):
    from ..data.echo import echo

    return echo(gibberish="exclude", seed=run.data.episode_seed, tokenizer=run.tokenizer,
                max_examples=run.group("echo").echo_max_examples)


def phase3a1_alpha(run: PhaseRun) -> None:
    """3a-1α: format lock (minimal mode, no math). Gate: A (format) and B (echo basics)."""
    alpha = _alpha_episodes(run)
    run.prepare(alpha, sources=[source_row("format_lock", alpha, 1.0, "mode=minimal, math=exclude")])
    run.train()
    run.gate()


def phase3a1_beta(run: PhaseRun) -> None:
    """3a-1β: echo without gibberish (85 %) + α replay (15 %). Gate: A, B, C."""
    echo_beta = _beta_echo(run)
    run.prepare_mix([MixPart("echo", "echo", echo_beta, 0.85, "gibberish=exclude"),
                     MixPart("alpha_replay", "format_lock (α replay)", _alpha_episodes(run), 0.15,
                             "mode=minimal, math=exclude")],
                    default_size=len(echo_beta))
    run.train()
    run.gate()


def _gamma_gibberish(run: PhaseRun):
    from ..data.echo import echo

    settings = run.group("echo")
    return echo(gibberish="only", bpe_safe=True, seed=run.data.episode_seed, tokenizer=run.tokenizer,
                max_examples=settings.echo_max_examples, max_target_tokens=settings.echo_max_target_tokens,
                gibberish_words_en=settings.echo_gibberish_words_en, gibberish_letters=settings.echo_gibberish_letters)


# The rows of γ's made-up-word echo that say "a question about a made-up word is not a copy request": anti-echo
# questions and the contrast groups that echo the same word once and answer a question about it once.
ANTI_ECHO_CATEGORIES = ("anti_echo_en", "anti_echo_de", "contrast_echo_prefix", "contrast_echo_quote",
                        "contrast_anti_echo")


def _gamma_anti_echo(run: PhaseRun):
    gibberish = _gamma_gibberish(run)
    return gibberish.filter(lambda row: row["_meta"]["category"] in ANTI_ECHO_CATEGORIES,
                            desc="γ echo: anti-echo and contrast rows")


def phase3a1_gamma(run: PhaseRun) -> None:
    """3a-1γ: BPE-safe gibberish echo (35 %) + β echo (50 %) + α replay (15 %). Gate: A, B, C."""
    settings = run.group("echo")
    gibberish = _gamma_gibberish(run)
    echo_beta = _beta_echo(run)
    run.prepare_mix([MixPart("echo_gibberish", "echo gibberish", gibberish, 0.35, "gibberish=only, bpe_safe"),
                     MixPart("beta_replay", "echo (β replay)", echo_beta, 0.50, "gibberish=exclude"),
                     MixPart("alpha_replay", "format_lock (α replay)", _alpha_episodes(run), 0.15,
                             "mode=minimal, math=exclude")],
                    default_size=len(gibberish) + len(echo_beta),
                    token_filters={"echo_gibberish": f"bpe_safe: made-up words of at most "
                                                     f"{settings.echo_max_target_tokens} tokens"})
    run.train()
    run.gate()


def phase3a2(run: PhaseRun) -> None:
    """3a-2: format lock full with math (70 %) + β echo (20 %) + α replay (10 %); optionally part of format lock's
    share as knowledge paraphrases (``knowledge_paraphrase_share``). Gate: A, B, C, D."""
    from ..data.format_lock import format_lock
    from .settings import FORMAT_LOCK_FULL_SHARE_3A2

    full = format_lock(mode="full", math="include", seed=run.data.episode_seed)
    paraphrase_share = run.group("knowledge").knowledge_paraphrase_share
    parts = [MixPart("format_lock_full", "format_lock full", full, FORMAT_LOCK_FULL_SHARE_3A2 - paraphrase_share,
                     "mode=full, math=include"),
             MixPart("beta_replay", "echo (β replay)", _beta_echo(run), 0.20, "gibberish=exclude"),
             MixPart("alpha_replay", "format_lock (α replay)", _alpha_episodes(run), 0.10,
                     "mode=minimal, math=exclude")]
    if paraphrase_share:  # the tiny default: the same facts and sums in more forms, so recall is not tied to three
        from ..data.paraphrases import knowledge_paraphrases

        parts.append(MixPart("knowledge_paraphrases", "knowledge paraphrases (capitals, sums)",
                             knowledge_paraphrases(seed=run.data.episode_seed), paraphrase_share,
                             "format lock's capitals and sums in other forms"))
    run.prepare_mix(parts, default_size=len(full))
    run.train()
    run.gate()


def phase3a_operator(run: PhaseRun) -> None:
    """Operators: COPY / WRAP / EXTRACT with disjoint train/validation templates and payloads, packed by
    ``_meta.operator`` (+ optional replay of α, β echo and 3a-2 data). Gate: A and E; the generator's validation
    split is scored too."""
    from ..data.format_lock import format_lock
    from ..data.mixing import mix
    from ..data.operators import operators
    from ..data.paraphrases import knowledge_paraphrases

    settings = run.group("operator")
    shares = settings.replay_shares()  # each in [0, 1), their sum below 1: checked when the arguments are parsed
    data = operators(n_train=settings.operator_n_train, n_val=settings.operator_n_val,
                     max_tokens=settings.operator_max_tokens, word_dist=settings.operator_word_dist,
                     seed_train=run.data.episode_seed,
                     novel_word_share=settings.operator_novel_word_share,
                     bracket_contrast=settings.operator_bracket_contrast, tokenizer=run.tokenizer)
    train = data["train"]
    own = 1.0 - sum(shares.values())
    sources = [source_row("operators train", data["train"], own, "COPY/WRAP/EXTRACT, train templates")]
    if shares:  # the tiny default: replay keeps what the earlier phases taught (the stop on plain prompts, ...)
        replays = {
            "alpha_replay": (lambda: _alpha_episodes(run), "α replay (format lock minimal)", "mode=minimal, math=exclude"),
            "echo_replay": (lambda: _beta_echo(run), "β echo replay", "gibberish=exclude"),
            "anti_echo_replay": (lambda: _gamma_anti_echo(run), "γ anti-echo replay",
                                 "made-up words: anti-echo questions and contrast groups"),
            "knowledge_replay": (lambda: format_lock(mode="full", math="include", seed=run.data.episode_seed),
                                 "3a-2 replay (format lock full)", "mode=full, math=include"),
            "paraphrase_replay": (lambda: knowledge_paraphrases(seed=run.data.episode_seed),
                                  "3a-2 replay (knowledge paraphrases)", "capitals and sums in other forms"),
        }
        parts = [data["train"]]
        for name, share in shares.items():
            build, label, detail = replays[name]
            episodes, dropped = _without_payloads(build(), data["validation"])
            parts.append(episodes)
            sources.append(source_row(label, episodes, share, detail + (
                f"; {dropped} episode(s) left out whose payload is an operator validation payload" if dropped else "")))
        train = mix(parts, weights=[own, *shares.values()], target_size=round(len(train) / own), shuffle=True,
                    seed=run.data.episode_seed, names=["operators", *shares])
    sources.append(source_row("operators validation", data["validation"], None, "unseen templates+payloads"))
    filtered = f"max_tokens: payloads of at most {settings.operator_max_tokens} tokens"
    run.prepare(train, val_episodes=data["validation"], sources=sources,
                token_filters={"operators train": filtered, "operators validation": filtered})
    run.train()
    run.gate()
    # Reported, not gated: exact match on the generator's own validation split (unseen templates and payloads).
    run.score_held_out(data["validation"], "operator validation split")


def _without_payloads(episodes, validation):
    """``episodes`` less those whose payload (as prepare's separation check derives it) is one of the
    ``validation`` split's payloads, so a replayed echo of a word cannot leak it; returns (episodes, how many
    were left out)."""
    from ..data.prepare import derive_payload

    held = {m["payload"].lower() for m in validation["_meta"]}

    def keep(row) -> bool:
        user = next((m["content"] for m in row["messages"] if m["role"] == "user"), "")
        payload = derive_payload(user, row.get("_meta"))
        return payload is None or payload.lower() not in held

    kept = episodes.filter(keep, desc="replay: leave out validation payloads")
    return kept, len(episodes) - len(kept)


PHASE_STEPS: Dict[str, Callable[[PhaseRun], None]] = {
    "tiny_base": tiny_base, "phase3a1_alpha": phase3a1_alpha, "phase3a1_beta": phase3a1_beta,
    "phase3a1_gamma": phase3a1_gamma, "phase3a2": phase3a2, "phase3a_operator": phase3a_operator,
}


def run_phase(phase: str, argv: Optional[Sequence[str]] = None) -> int:
    """Run one phase from its arguments (``--config`` + ``--key value`` overrides); returns the exit status
    (0 gate passed or no gate, 1 gate failed). Raises MyPTInputError for bad input."""
    name = get_phase(phase).name
    run = PhaseRun.from_argv(name, argv)
    PHASE_STEPS[name](run)
    return run.save()


def exit_with_status(main: Callable[[], int], prog: Optional[str] = None, debug: Optional[bool] = None) -> None:
    """``sys.exit(main())`` with MyPT's exit codes (:mod:`mypt_hf.exit_codes`): 1 a failed gate, 2 bad input,
    3 an internal error. ``debug=None``: ``--debug`` in ``sys.argv`` (removed before ``main`` reads the command
    line) turns on tracebacks."""
    if debug is None:
        sys.argv[1:], debug = pop_debug_flag(sys.argv[1:])
    code = call_with_exit_codes(main, prog=prog or Path(sys.argv[0]).name, debug=debug)
    if _close_process_group():
        # On CPU (gloo), a rank sometimes aborts during interpreter finalisation ("terminate called without an
        # active exception") after everything is saved; skip finalisation so the exit status stays the real one.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _close_process_group() -> bool:
    """Tear down torch.distributed before exit; True when there was a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
        return True
    return False


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m mypt_hf.phases <phase> [--config NAME|FILE] [--key value ...]``."""
    argv, debug = pop_debug_flag(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m mypt_hf.phases <phase> [--config NAME|FILE] [--key value ...]\n"
              f"phases: {', '.join(PHASE_STEPS)}")
        sys.exit(0 if argv else 2)
    exit_with_status(lambda: run_phase(argv[0], argv[1:]), prog=f"python -m mypt_hf.phases {argv[0]}",
                     debug=debug)


__all__ = ["PHASE_STEPS", "run_phase", "exit_with_status", "main", *PHASE_STEPS]
