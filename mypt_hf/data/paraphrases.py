"""Knowledge paraphrases: the capitals and sums format lock full teaches, asked in other words.

Format lock full (kept at parity with the original) asks each capital in three forms ("Capital of X?", "What is
the capital of X?", "X capital?") and each sum or difference in four. A small model learns those forms, not the
question: asked "Name the capital of Spain." it answers "Spain." (it copies instead of recalling). This generator
asks the same facts with the same answers in more forms, so recall is tied to the fact rather than to three
phrasings. Its forms are neither format lock's nor the held-out sets' (:mod:`mypt_hf.evaluation.held_out` checks
both, and the held-out prompts against these episodes), so the held-out D rate still measures phrasings the model
never saw. The answers are format lock's ("Madrid.", "11.").
"""

from __future__ import annotations

import random
from typing import List, Optional, Tuple

import datasets

from ..tokens import DEFAULT_SYSTEM_PROMPT
from .format_lock import CAPITALS
from .schema import EPISODE_FEATURES, make_episode

#: Capital questions in forms format lock and the held-out sets do not use.
CAPITAL_FORMS: Tuple[str, ...] = (
    "What's the capital of {c}?", "Give the capital of {c}.", "What city is {c}'s capital?", "{c}: capital city?",
    "Say the capital of {c}.", "Capital of {c}, please.", "Which is the capital of {c}?", "The capital of {c}?",
    "I need the capital of {c}.", "{c} has which capital?",
)
#: Sum questions (a + b) in forms format lock and the held-out sets do not use.
SUM_FORMS: Tuple[str, ...] = (
    "What's {a} + {b}?", "{a} + {b} equals?", "Work out {a} + {b}.", "Find {a} plus {b}.", "Total of {a} and {b}?",
    "Please add {a} and {b}.", "{a} and {b} added together?", "Solve {a} + {b}.", "Add up {a} and {b}.",
)
#: Difference questions (a - b) in forms format lock and the held-out sets do not use.
DIFFERENCE_FORMS: Tuple[str, ...] = (
    "What's {a} - {b}?", "{a} - {b} equals?", "Work out {a} minus {b}.", "Take {b} from {a}.", "Find {a} - {b}.",
    "Solve {a} minus {b}.", "Difference of {a} and {b}?",
)
#: Operand ranges: the small sums the eval suite and the held-out sets ask (format lock full goes to 50 + 20).
SUM_RANGE = (20, 10)


def knowledge_paraphrases(seed: int = 42, system_prompt: Optional[str] = DEFAULT_SYSTEM_PROMPT) -> datasets.Dataset:
    """Every capital of format lock in every :data:`CAPITAL_FORMS` form, and every sum and difference in
    :data:`SUM_RANGE` in every sum/difference form, shuffled with ``random.Random(seed)``."""
    rows: List[Tuple[str, str, str]] = []
    for country, city in CAPITALS:
        rows += [(form.format(c=country), f"{city}.", "capital") for form in CAPITAL_FORMS]
    top_a, top_b = SUM_RANGE
    for a in range(top_a + 1):
        for b in range(top_b + 1):
            rows += [(form.format(a=a, b=b), f"{a + b}.", "math_add") for form in SUM_FORMS]
            if b <= a:  # results stay >= 0, as format lock's
                rows += [(form.format(a=a, b=b), f"{a - b}.", "math_sub") for form in DIFFERENCE_FORMS]
    random.Random(seed).shuffle(rows)
    episodes = [make_episode(question, answer, system=system_prompt, source="knowledge_paraphrases",
                             episode_id=f"knowledge_paraphrases_{i:05d}", category=category, language="en",
                             expected=answer)
                for i, (question, answer, category) in enumerate(rows)]
    return datasets.Dataset.from_list(episodes, features=EPISODE_FEATURES)


__all__ = ["CAPITAL_FORMS", "SUM_FORMS", "DIFFERENCE_FORMS", "SUM_RANGE", "knowledge_paraphrases"]
