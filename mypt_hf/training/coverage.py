"""Coverage: how many times a run reads its training data, as the guide counts it.

The guide sizes a phase by coverage, passes over the training episodes: 2x minimum, 3-3.5x optimal, 5x maximum
(more over-fits the small SFT sets). The original train.py printed it at start. A run's coverage is
``max_steps x global batch / training rows``, where the global batch is per-device batch x gradient
accumulation x processes; for packed data a row is a block of whole episodes, so passes over the rows are passes
over the episodes.

Warmup is counted against the same steps: a warmup of at least the run's steps never lets the learning rate reach
its peak. That happens when the steps come from coverage and the warmup is a fixed count, e.g. packed data (a
block holds many episodes, so few steps) or more processes (the global batch grows, the steps shrink); give the
warmup as a share of the run then (``warmup_steps`` below 1, which transformers reads as a ratio of the steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import MyPTInputError

#: The guide's bounds (passes over the training episodes).
MIN_COVERAGE = 2.0
OPTIMAL_COVERAGE = (3.0, 3.5)
MAX_COVERAGE = 5.0


@dataclass(frozen=True)
class Coverage:
    """A run's coverage and the numbers it comes from."""

    max_steps: int
    per_device_batch: int
    accumulation: int
    processes: int
    train_rows: int
    warmup_steps: int = 0  # resolved (a ratio already turned into steps)

    @property
    def global_batch(self) -> int:
        return self.per_device_batch * self.accumulation * self.processes

    @property
    def passes(self) -> float:
        return self.max_steps * self.global_batch / self.train_rows if self.train_rows else 0.0

    def describe(self) -> str:
        """One line for the start of a run, with a warning beyond the guide's bounds."""
        line = (f"coverage {self.passes:.2f}x: {self.max_steps} steps x global batch {self.global_batch} "
                f"({self.processes} process(es) x {self.per_device_batch} x {self.accumulation} accumulation) over "
                f"{self.train_rows} training rows (the guide: {MIN_COVERAGE:g}x minimum, "
                f"{OPTIMAL_COVERAGE[0]:g}-{OPTIMAL_COVERAGE[1]:g}x optimal, {MAX_COVERAGE:g}x maximum)")
        if self.passes > MAX_COVERAGE:
            line += f" - WARNING: above the guide's {MAX_COVERAGE:g}x maximum; the model may memorise the set"
        elif self.passes < MIN_COVERAGE:
            line += f" - note: below the guide's {MIN_COVERAGE:g}x minimum"
        if self.warmup_steps >= self.max_steps:
            line += (f" - WARNING: warmup {self.warmup_steps} steps >= the run's {self.max_steps} steps: the learning "
                     "rate never reaches its peak")
        return line


def resolved_warmup_steps(args: Any, max_steps: int) -> int:
    """The warmup steps ``args`` (a TrainingArguments) gives a run of ``max_steps`` steps, as the Trainer resolves
    them (``warmup_steps`` below 1 is a ratio of the run)."""
    warmup = float(getattr(args, "warmup_steps", 0) or 0)
    return int(warmup) if warmup >= 1 else math.ceil(max_steps * warmup)


def check_warmup_for_coverage(args: Any, max_steps: int) -> None:
    """Refuse a fixed warmup that is at least the ``max_steps`` that coverage has just given: the learning rate
    would rise for the whole run and never reach its peak (MyPTInputError naming ``warmup_steps``).

    Only for steps derived from coverage: a step count given by hand (a smoke run of 2 steps) is the user's choice
    and gets the warning of :meth:`Coverage.describe` instead.
    """
    warmup = resolved_warmup_steps(args, max_steps)
    if warmup >= max_steps:
        world = max(1, int(getattr(args, "world_size", 1) or 1))
        global_batch = int(args.per_device_train_batch_size) * int(args.gradient_accumulation_steps) * world
        raise MyPTInputError(
            f"warmup_steps {args.warmup_steps:g} is not below the {max_steps} optimizer steps that coverage "
            f"{args.coverage:g} gives at global batch {global_batch} ({world} process(es)), so the learning rate "
            f"would never reach its peak; give the warmup as a share of the run (e.g. warmup_steps 0.1 = 10 % of "
            f"the steps) or a count below {max_steps}", field="warmup_steps")


def run_coverage(args, train_rows: int) -> Coverage:
    """The coverage of a run with training arguments ``args`` (a TrainingArguments) on ``train_rows`` rows."""
    return Coverage(max_steps=int(args.max_steps), per_device_batch=int(args.per_device_train_batch_size),
                    accumulation=int(args.gradient_accumulation_steps), processes=max(1, int(args.world_size)),
                    train_rows=int(train_rows),
                    warmup_steps=resolved_warmup_steps(args, int(args.max_steps)))


__all__ = ["Coverage", "run_coverage", "resolved_warmup_steps", "check_warmup_for_coverage", "MIN_COVERAGE",
           "OPTIMAL_COVERAGE", "MAX_COVERAGE"]
