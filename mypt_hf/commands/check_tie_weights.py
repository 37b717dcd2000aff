"""`mypt-hf check-tie-weights`: does the lm_head share the embedding's storage, as the config says?"""

from __future__ import annotations

import argparse

HELP = "Check that embedding and lm_head tying matches the config (exit 1 on FAIL)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="HF model directory or native MyPT checkpoint, or a model name in the checkpoints directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="print shapes, pointers and value equality")


def run(args: argparse.Namespace) -> int:
    from ..errors import GateFailure
    from ..evaluation.checks import check_tie_weights

    report = check_tie_weights(args.model)
    print(f"config tie_word_embeddings: {report.config_tied}")
    print(f"shares storage:             {report.shares_storage}")
    if args.verbose:
        for line in report.details:
            print(line)
    print(f"{report.verdict}: {report.message}")
    if not report.passed:
        raise GateFailure(report.message)
    return 0
