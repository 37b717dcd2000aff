"""Coverage: how many times a run reads its training data, as the guide counts it.

The guide sizes a phase by coverage, passes over the training episodes: 2x minimum, 3-3.5x optimal, 5x maximum
(more over-fits the small SFT sets). The original train.py printed it at start. A run's coverage is
``max_steps x global batch / training rows``, where the global batch is per-device batch x gradient
accumulation x processes; for packed data a row is a block of whole episodes, so passes over the rows are passes
over the episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        return line


def run_coverage(args, train_rows: int) -> Coverage:
    """The coverage of a run with training arguments ``args`` (a TrainingArguments) on ``train_rows`` rows."""
    return Coverage(max_steps=int(args.max_steps), per_device_batch=int(args.per_device_train_batch_size),
                    accumulation=int(args.gradient_accumulation_steps), processes=max(1, int(args.world_size)),
                    train_rows=int(train_rows))


__all__ = ["Coverage", "run_coverage", "MIN_COVERAGE", "OPTIMAL_COVERAGE", "MAX_COVERAGE"]
