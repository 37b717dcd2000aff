"""Held-out gate sets: buckets B-E asked with words, phrasings and templates that no generator emits.

The suite's buckets B-D reuse prompts close to the training data (e.g. "Say Hello." while α trains on
"Say hello."), so a pass can be recall. These sets ask the same kinds of questions otherwise, large enough
(at least 60 items a bucket) that a verdict does not move with the seed alone:

- B (echo): held-out echo prefixes and phrasings × real words no generator pool holds;
- C (anti-echo): held-out question forms × made-up words no generator emits;
- D (regression): held-out phrasings of the facts and sums 3a-2 teaches (the facts are the training's: a held-out
  set of unknown facts would test knowledge the phase never gives, the phrasing is what must generalise);
- E (operators): operator templates outside the train, validation, contrast and reserved sets × held-out payloads.

The words are reserved in :mod:`mypt_hf.data.reserved` (the generators refuse them, as they refuse the suite's
payloads); :func:`held_out_overlaps` checks every word, prefix, template and prompt against what the generators
emit (tests/test_held_out.py asserts it finds nothing). The items are fixed: built with a fixed seed, the same
on every machine. Scored with the suite's own metric (:func:`~mypt_hf.evaluation.suite.score_items`), so a
held-out rate compares directly with a gate rate.
"""

from __future__ import annotations

import random
import re
from typing import Dict, List, Sequence, Tuple

from ..data.reserved import HELD_OUT_MADE_UP_WORDS, HELD_OUT_PAYLOAD_WORDS
from ..tokens import OPERATOR_SYSTEM_PROMPT_EN
from .sft_eval_suite import sft_eval_suite as metric
from .suite import OPERATOR_NAMES, EvalItem

SEED = 20261203
MIN_ITEMS = 60

# ---- B: echo ----------------------------------------------------------------------------------------------
#: The first held-out set's items, kept as they were (prompt, expected echo).
FIRST_ECHO: Tuple[Tuple[str, str], ...] = (
    ("Parrot: Pineapple", "Pineapple"), ("Say it back: crooked antler", "crooked antler"),
    ("Copy this word: Marmalade", "Marmalade"), ("Mirror: rusty hinge", "rusty hinge"), ("Read aloud: Sunflower", "Sunflower"),
    ("Just type Walrus.", "Walrus"), ("Repeat the word Porcupine.", "Porcupine"), ("Kindly echo: brass thimble", "brass thimble"),
    ("Write back: 73", "73"), ("Say after me: Quokka", "Quokka"), ("Wiederhole das Wort: Sonnenblume", "Sonnenblume"),
    ("Copy: Tangerine dusk", "Tangerine dusk"), ("Duplicate: Hazelnut", "Hazelnut"), ("Send back: juniper thistle", "juniper thistle"),
    ("Repeat back: Lobster", "Lobster"), ("Tell me back: nutmeg waffle", "nutmeg waffle"), ("Parrot this: Pelican", "Pelican"),
    ("Return exactly: rhubarb", "rhubarb"), ("Mimic: Wombat", "Wombat"), ("Please echo: 58", "58"),
    ("Write the word Zeppelin.", "Zeppelin"), ("Echo back: Badger", "Badger"), ("Sag nach: Pistazie", "Pistazie"),
    ("Copy exactly: ember goblet", "ember goblet"),
)
#: Echo phrasings none of the echo generator's prefixes or quote templates, nor format lock's "Say X." forms.
ECHO_FORMS: Tuple[str, ...] = (
    "Parrot: {x}", "Say it back: {x}", "Copy this word: {x}", "Mirror: {x}", "Read aloud: {x}", "Just type {x}.",
    "Repeat the word {x}.", "Kindly echo: {x}", "Write back: {x}", "Say after me: {x}", "Copy: {x}", "Duplicate: {x}",
    "Send back: {x}", "Repeat back: {x}", "Tell me back: {x}", "Parrot this: {x}", "Return exactly: {x}",
    "Mimic: {x}", "Write the word {x}.", "Echo back: {x}", "Copy exactly: {x}", "Sag nach: {x}",
)
_NEW_ECHO_PAYLOADS: Tuple[str, ...] = (
    "Armadillo", "Toucan", "Meerkat", "Platypus", "Narwhal", "Iguana", "Chinchilla", "Mongoose", "Pangolin",
    "Sardine", "Parsnip", "Artichoke", "Kumquat", "Lychee", "Papaya", "Nectarine", "Quill", "Anvil", "Trowel",
    "Spindle", "Ladle", "Whisk", "Doorknob", "Sextant", "Abacus", "Metronome", "Ukulele", "Bassoon",
    "tweed anvil", "pewter ladle", "pickled parsnip", "woolly meerkat", "speckled heron", "Pretzel", "Gherkin",
    "Haddock", "Mackerel", "Kestrel", "91", "64",
)

# ---- C: anti-echo -----------------------------------------------------------------------------------------
#: Question forms none of the echo generator's anti-echo templates; the first 8 are the first set's.
ANTI_ECHO_FORMS: Tuple[str, ...] = (
    'Explain "{x}".', 'Tell me about "{x}".', 'Is "{x}" a word?', 'What is the meaning of "{x}"?',
    'Have you heard of "{x}"?', 'What language is "{x}"?', 'Can you define "{x}"?', 'Was heißt "{x}"?',
    'Where does "{x}" come from?', 'Is "{x}" English?', 'What kind of thing is "{x}"?', 'Kennst du das Wort "{x}"?',
    'Who invented "{x}"?', 'What is "{x}" used for?', 'Is "{x}" an animal?', 'Describe "{x}".',
)
FIRST_ANTI_ECHO_ITEMS = 8

# ---- D: regression ----------------------------------------------------------------------------------------
#: The first set's items, kept as they were, less two that format lock full trains on ("Add 4 and 3.",
#: "Subtract 3 from 10.": its forms "Add {a} and {b}." and "Subtract {b} from {a}."), which the overlap check found.
FIRST_REGRESSION: Tuple[Tuple[str, str], ...] = (
    ("How much is 6 + 3?", "9"), ("Compute 8 + 5.", "13"), ("What do you get from 9 - 4?", "5"),
    ("Calculate 12 - 7.", "5"), ("Which city is the capital of Italy?", "Rome"), ("Germany's capital?", "Berlin"),
    ("Is snow cold?", "Yes"), ("Can stones swim?", "No"),
    ("Sum of 5 and 6?", "11"), ("What is 2 plus 2?", "4"),
    ("Name the capital of Spain.", "Madrid"), ("The capital city of France is?", "Paris"),
    ("Do fish live in water?", "Yes"), ("Can a cat fly?", "No"),
)
#: Phrasings of the capitals format lock teaches (its forms: "Capital of X?", "What is the capital of X?",
#: "X capital?") and of its sums and differences (its forms: "What is a + b?", "a plus b?", "a + b?",
#: "Add a and b.", and the same with "-", "minus", "Subtract b from a.").
CAPITAL_FORMS: Tuple[str, ...] = (
    "Which city is the capital of {c}?", "{c}'s capital?", "Name the capital of {c}.", "The capital city of {c} is?",
    "Tell me the capital of {c}.", "Capital city of {c}?",
)
#: Country → capital pairs that format lock's capital questions teach (checked by the tests).
TAUGHT_CAPITALS: Tuple[Tuple[str, str], ...] = (
    ("Germany", "Berlin"), ("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
    ("Austria", "Vienna"), ("Poland", "Warsaw"), ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Sweden", "Stockholm"),
    ("Norway", "Oslo"), ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("China", "Beijing"), ("Russia", "Moscow"),
)
SUM_FORMS: Tuple[str, ...] = ("How much is {a} + {b}?", "Compute {a} + {b}.", "Calculate {a} plus {b}.",
                              "Sum of {a} and {b}?", "What is {a} plus {b}?", "What do you get from {a} + {b}?")
DIFFERENCE_FORMS: Tuple[str, ...] = ("What do you get from {a} - {b}?", "Calculate {a} - {b}.",
                                     "How much is {a} - {b}?", "Compute {a} minus {b}.")

# ---- E: operators -----------------------------------------------------------------------------------------
#: The first set's items (operator, template, payload), kept as they were.
FIRST_OPERATORS: Tuple[Tuple[str, str, str], ...] = (
    ("COPY", "Hand it back as is: `{payload}`", "birch harp"), ("COPY", "Say the same thing: '{payload}'", "walrus"),
    ("COPY", "Verbatim please |{payload}|", "cobalt glimmer"), ("COPY", "Reply with exactly `{payload}`", "porcupine"),
    ("COPY", "Give it back word for word: '{payload}'", "brisk ferret bog"), ("COPY", "Echo it: |{payload}|", "tangerine"),
    ("WRAP", "Bracket it up: `{payload}`", "gloomy harp"), ("WRAP", "Wrap '{payload}' in square brackets", "quokka"),
    ("WRAP", "Surround |{payload}| with [ ]", "cobalt"), ("WRAP", "Add [ and ] around `{payload}`", "brass walrus"),
    ("WRAP", "Square brackets around '{payload}', please", "marmalade jar"), ("WRAP", "Bracket: |{payload}|", "pineapple"),
    ("EXTRACT", 'Only the quoted part, please: "{payload}"', "cobalt fjord"),
    ("EXTRACT", 'Inside the quotes of "{payload}" is?', "harp"), ("EXTRACT", 'Lose the quotes: "{payload}"', "brisk walrus"),
    ("EXTRACT", 'Quote contents of "{payload}"', "sunflower"), ("EXTRACT", 'What is quoted here: "{payload}"', "brass glimmer"),
    ("EXTRACT", 'No quotes: "{payload}"', "porcupine"),
)
OPERATOR_TEMPLATES: Dict[str, Tuple[str, ...]] = {
    "COPY": ("Mirror back: `{payload}`", "Copy it out: '{payload}'", "Give me the same: |{payload}|",
             "Write it again: '{payload}'", "Same again please: |{payload}|", "Type it back unchanged: `{payload}`",
             "Hand back exactly: '{payload}'"),
    "WRAP": ("Put [ ] around `{payload}`", "Enclose '{payload}' in square brackets", "Bracket this text: |{payload}|",
             "In brackets, please: '{payload}'", "Add brackets to |{payload}|", "Show `{payload}` in [ ]",
             "Square-bracket it: '{payload}'"),
    "EXTRACT": ('Shed the quotes: "{payload}"', 'Just the text inside "{payload}"', 'Quoted word only: "{payload}"',
                'What is between the quotes in "{payload}"?', 'Give the unquoted text of "{payload}"',
                'Minus the quotes: "{payload}"', 'Only what is in quotes: "{payload}"'),
}
#: Payload words for E (lowercase, as the operator generator writes payloads); every one is reserved.
_OPERATOR_PAYLOAD_WORDS: Tuple[str, ...] = tuple(
    w.lower() for w in HELD_OUT_PAYLOAD_WORDS if w.isalpha() and w.lower() not in {"sonnenblume", "pistazie"})
OPERATOR_ITEMS_PER_TEMPLATE = 2


def _echo_items(rng: random.Random) -> List[EvalItem]:
    pairs = list(FIRST_ECHO) + [(rng.choice(ECHO_FORMS).format(x=payload), payload) for payload in _NEW_ECHO_PAYLOADS]
    return [EvalItem(metric.ECHO_BASIC, f"held_out_echo_{i:02d}", user, target) for i, (user, target) in enumerate(pairs)]


def _anti_echo_items(rng: random.Random) -> List[EvalItem]:
    first = FIRST_ANTI_ECHO_ITEMS  # the first set asked its words with the first forms, in order
    pairs = [(ANTI_ECHO_FORMS[i].format(x=word), word) for i, word in enumerate(HELD_OUT_MADE_UP_WORDS[:first])]
    pairs += [(rng.choice(ANTI_ECHO_FORMS).format(x=word), word) for word in HELD_OUT_MADE_UP_WORDS[first:]]
    return [EvalItem(metric.ANTI_ECHO, f"held_out_anti_echo_{i:02d}", user, word) for i, (user, word) in enumerate(pairs)]


def _regression_items(rng: random.Random) -> List[EvalItem]:
    pairs = list(FIRST_REGRESSION)
    for index, (country, city) in enumerate(TAUGHT_CAPITALS):
        for form in rng.sample(CAPITAL_FORMS, 2):
            pairs.append((form.format(c=country), city))
    while len(pairs) < MIN_ITEMS + 4:
        a, b = rng.randint(2, 12), rng.randint(1, 9)
        if rng.random() < 0.6:
            pairs.append((rng.choice(SUM_FORMS).format(a=a, b=b), str(a + b)))
        else:
            a = max(a, b + 1)
            pairs.append((rng.choice(DIFFERENCE_FORMS).format(a=a, b=b), str(a - b)))
    unique = list(dict.fromkeys(pairs))  # a repeated prompt would count twice
    return [EvalItem(metric.REGRESSION_BASIC, f"held_out_regression_{i:02d}", user, target)
            for i, (user, target) in enumerate(unique)]


def _operator_items(rng: random.Random) -> List[EvalItem]:
    from ..data.operators import expected_output, render

    triples = list(FIRST_OPERATORS)
    for op in OPERATOR_NAMES:
        for template in OPERATOR_TEMPLATES[op]:
            for _ in range(OPERATOR_ITEMS_PER_TEMPLATE):
                words = rng.randint(1, 4)
                triples.append((op, template, " ".join(rng.sample(_OPERATOR_PAYLOAD_WORDS, words))))
    return [EvalItem(metric.OPERATORS, f"held_out_{op.lower()}_{i:02d}", render(template, payload),
                     expected_output(op, payload), system=OPERATOR_SYSTEM_PROMPT_EN, operator=op, payload=payload,
                     word_count=len(payload.split()), template=template)
            for i, (op, template, payload) in enumerate(triples)]


def held_out_items(buckets: Sequence[str] = (metric.ECHO_BASIC, metric.ANTI_ECHO, metric.REGRESSION_BASIC,
                                             metric.OPERATORS)) -> List[EvalItem]:
    """The held-out items of ``buckets`` (B-E), the same on every call (fixed seed per bucket)."""
    builders = {metric.ECHO_BASIC: _echo_items, metric.ANTI_ECHO: _anti_echo_items,
                metric.REGRESSION_BASIC: _regression_items, metric.OPERATORS: _operator_items}
    items: List[EvalItem] = []
    for offset, bucket in enumerate(builders):
        if bucket in buckets:
            items += builders[bucket](random.Random(SEED + offset))
    return items


def format_items(items: Sequence[EvalItem]) -> List[EvalItem]:
    """Every held-out prompt again as a bucket-A (format) item: the reply must be well formed whatever it asks."""
    return [EvalItem(metric.FORMAT_STRICT, f"format_{item.name}", item.user, "", system=item.system) for item in items]


def held_out_overlaps() -> List[str]:
    """What the held-out sets share with what the generators emit or the suite asks (empty = disjoint).

    Checked: payload and made-up words against every word list of the generators; echo and anti-echo forms
    against the echo generator's prefixes and templates; operator templates against the train, validation,
    contrast and reserved ones; every held-out prompt against every user prompt of format lock (full, with math),
    echo (β and γ), the knowledge paraphrases (3a-2) and the operator generator's train and validation templates, and
    against the suite's prompts; the regression forms against the paraphrases' forms.
    """
    from ..data import echo, format_lock, operators, paraphrases, wordlists
    from ..data.reserved import RESERVED_OPERATOR_TEMPLATES
    from . import suite

    problems: List[str] = []
    pools = set()
    for module in (wordlists, echo, format_lock, operators):
        for value in vars(module).values():
            if isinstance(value, (tuple, list)) and value and all(isinstance(v, str) for v in value):
                for text in value:
                    pools.update(w.lower() for w in re.findall(r"[A-Za-zÄÖÜäöüß]+", text))
            elif isinstance(value, tuple) and value and all(isinstance(v, tuple) for v in value):
                for pair in value:
                    for text in pair:
                        if isinstance(text, str):
                            pools.update(w.lower() for w in re.findall(r"[A-Za-zÄÖÜäöüß]+", text))
    for word in HELD_OUT_PAYLOAD_WORDS + HELD_OUT_MADE_UP_WORDS:
        if word.lower() in pools:
            problems.append(f"word {word!r} is in a generator's word list")
    echo_forms = {p.lower() for p in echo.ECHO_PREFIXES_EN + echo.ECHO_PREFIXES_DE} | {
        t.lower() for t in echo.QUOTE_TEMPLATES}
    for form in ECHO_FORMS:
        head = form.split("{x}")[0].strip().lower()
        if head in echo_forms or form.replace("{x}", "{payload}").lower() in echo_forms:
            problems.append(f"echo form {form!r} is the echo generator's")
    anti = {t for t, _ in echo.ANTI_ECHO_TEMPLATES_EN + echo.ANTI_ECHO_TEMPLATES_DE}
    for form in ANTI_ECHO_FORMS:
        if form.replace("{x}", "{payload}") in anti:
            problems.append(f"anti-echo form {form!r} is the echo generator's")
    known_templates = {t for op in operators.TRAIN_TEMPLATES for t in operators.TRAIN_TEMPLATES[op]
                       + operators.VAL_TEMPLATES[op] + operators.CONTRAST_TEMPLATES[op]}
    known_templates |= {t for templates in RESERVED_OPERATOR_TEMPLATES.values() for t in templates}
    for op, template, _ in FIRST_OPERATORS:
        if template in known_templates:
            problems.append(f"operator template {template!r} is a generator's or the suite's")
    for op, templates in OPERATOR_TEMPLATES.items():
        for template in templates:
            if template in known_templates:
                problems.append(f"operator template {template!r} is a generator's or the suite's")
    taught_forms = set(paraphrases.CAPITAL_FORMS + paraphrases.SUM_FORMS + paraphrases.DIFFERENCE_FORMS)
    for form in CAPITAL_FORMS + SUM_FORMS + DIFFERENCE_FORMS:
        if form in taught_forms:
            problems.append(f"regression form {form!r} is a knowledge paraphrase the training asks")
    # every prompt against the prompts the generators write and the suite asks
    seen = {item.user for item in suite.build_items()}
    for dataset in (format_lock.format_lock(mode="full", math="include"), format_lock.format_lock(mode="minimal", math="exclude"),
                    echo.echo(gibberish="exclude"), echo.echo(gibberish="only", bpe_safe=False),
                    paraphrases.knowledge_paraphrases()):
        seen.update(m["content"] for messages in dataset["messages"] for m in messages if m["role"] == "user")
    for item in held_out_items():
        if item.user in seen:
            problems.append(f"held-out prompt {item.user!r} is asked by a generator or the suite")
    return problems


__all__ = ["SEED", "MIN_ITEMS", "held_out_items", "format_items", "held_out_overlaps", "TAUGHT_CAPITALS"]
