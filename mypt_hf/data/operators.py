"""The COPY / WRAP / EXTRACT operator episodes (the original ``generate_operator_dataset.py``).

Differences from the original, on purpose (see the reference §5 and §14):
- ``n_train`` / ``n_val`` count episodes, and every episode has its own payload: payloads are unique
  (case-sensitive) within and across the splits, so validation measures unseen payloads.
- The word-count mix is allocated exactly (largest remainder), so the realised distribution equals
  ``word_dist`` to within one episode instead of drifting (the original's 22/30/26/22%).
- Templates are rendered by replacing ``{payload}``; a template that wants literal braces writes
  them around the placeholder (``{{payload}}`` renders as ``{X}``), so nothing renders double braces.
- Payloads are checked against ``max_tokens`` with the given tokenizer, encoded standalone (the
  form the assistant must emit), in batches.
- No payload contains a word reserved for the evaluation suite (``reserved.py``).
"""

from __future__ import annotations

import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import datasets

from ..errors import MyPTInputError
from ..tokens import OPERATOR_SYSTEM_PROMPT_DE, OPERATOR_SYSTEM_PROMPT_EN
from .made_up import made_up_word
from .reserved import RESERVED_OPERATOR_PAYLOADS, contains_reserved
from .schema import EPISODE_FEATURES, make_episode
from .wordlists import ADJECTIVES_EN, COMMON_WORDS_EN, GERMAN_WORDS, PLACE_NOUNS, SYLLABLES

OPERATORS: Tuple[str, ...] = ("COPY", "WRAP", "EXTRACT")
PLACEHOLDER = "{payload}"
#: Share of episodes that use the German templates and system prompt when ``german`` is on
#: (the original's n_train // 10 German payloads).
GERMAN_SHARE = 0.1
MAX_WORDS_LIMIT = 4

# Train and validation phrasings are disjoint, and both are disjoint from the eval suite's reserved
# templates; the payload sits at the end, in the middle, and behind several delimiters so the model
# learns the operation rather than one surface form.
TRAIN_TEMPLATES_BY_LANGUAGE: Dict[str, Dict[str, List[str]]] = {
    "COPY": {
        "en": [
            "Repeat exactly: `{payload}`", "Copy: `{payload}`", "Echo `{payload}`", "Say this back: '{payload}'",
            "Output: '{payload}'", "Just say '{payload}'", "Repeat exactly |{payload}|", "Copy |{payload}|",
            "Echo: {{payload}}", "Say back {{payload}}", "Repeat after me: `{payload}`",
            "Write back '{payload}' exactly", "Copy this text: |{payload}|", "Return `{payload}` as it is",
            "Type '{payload}' again", "Duplicate: `{payload}`", "Echo back |{payload}|",
            "Output the text `{payload}` unchanged", "Repeat: {{payload}}", "Say '{payload}' back to me",
            "Copy exactly: '{payload}'", "Write out |{payload}| verbatim",
        ],
        "de": [
            "Wiederhole genau: `{payload}`", "Sage das zurueck: '{payload}'", "Kopiere: |{payload}|",
            "Gib aus: `{payload}`", "Schreibe '{payload}' noch einmal", "Wiederhole |{payload}|",
        ],
    },
    "WRAP": {
        "en": [
            "Wrap in brackets: `{payload}`", "Surround with []: `{payload}`", "Bracket `{payload}`",
            "Put square brackets around: '{payload}'", "Add brackets around '{payload}'",
            "Wrap in brackets |{payload}|", "Add [] to |{payload}|", "Enclose in []: {{payload}}",
            "Put '{payload}' in square brackets", "Wrap `{payload}` with [ and ]",
            "Enclose |{payload}| in brackets", "Square-bracket this: '{payload}'",
            "Write `{payload}` inside []", "Bracket the text |{payload}|", "Add square brackets: `{payload}`",
            "Wrap this in []: '{payload}'", "Surround '{payload}' with brackets", "Put [] around {{payload}}",
            "Enclose in square brackets: `{payload}`", "Wrap |{payload}| in square brackets",
        ],
        "de": [
            "Setze in Klammern: `{payload}`", "Umgib mit []: '{payload}'", "Klammere: |{payload}|",
            "Setze '{payload}' in eckige Klammern", "Schreibe `{payload}` in []",
        ],
    },
    "EXTRACT": {
        "en": [
            'Return only the text between quotes: "{payload}"', 'Extract the quoted part: "{payload}"',
            'Get what\'s in quotes: "{payload}"', 'What is inside "{payload}"?', 'Extract "{payload}"',
            'Return the content of "{payload}"', 'Pull out "{payload}"', 'Drop the quotes: "{payload}"',
            'Give the words inside the quotes: "{payload}"', 'Take "{payload}" out of its quotes',
            'Output the text in quotes: "{payload}"', 'Show what is quoted: "{payload}"',
            'Remove the quotes around "{payload}"', 'Which text is in the quotes "{payload}"?',
            'Extract the quoted text from: "{payload}"', 'Return "{payload}" without the quotes',
            'Print only what is between the quotes: "{payload}"', 'Get the quoted words: "{payload}"',
        ],
        "de": [
            'Gib nur den Text in Anfuehrungszeichen aus: "{payload}"', 'Extrahiere das Zitat: "{payload}"',
            'Was steht in "{payload}"?', 'Entferne die Anfuehrungszeichen: "{payload}"',
        ],
    },
}

VAL_TEMPLATES_BY_LANGUAGE: Dict[str, Dict[str, List[str]]] = {
    "COPY": {
        "en": ["Parrot this: `{payload}`", "Return verbatim: '{payload}'", "Parrot |{payload}|", "Mirror `{payload}`",
               "Reproduce '{payload}'", "Output exactly |{payload}|"],
        "de": ["Gib genau zurueck: '{payload}'", "Wiederhole woertlich: |{payload}|"],
    },
    "WRAP": {
        "en": ["Put in square brackets: `{payload}`", "Wrap with []: '{payload}'", "Add [] around |{payload}|",
               "Put brackets around `{payload}`"],
        "de": ["Klammere ein: `{payload}`", "Setze [] um '{payload}'"],
    },
    "EXTRACT": {
        "en": ['Output the quoted content: "{payload}"', 'What\'s inside "{payload}"?', 'Get the text from "{payload}"',
               'Return what\'s in "{payload}"'],
        "de": ['Gib den zitierten Text aus: "{payload}"', 'Was ist in "{payload}" zitiert?'],
    },
}

# Optional extra training phrasings (``bracket_contrast``). In the lists above COPY and WRAP differ by their verbs
# as much as by the brackets, and a small model keys on the verb: on unseen COPY verbs ("Parrot", "Mirror",
# "Reproduce") it answered with brackets (0-37 % exact on those validation templates). Here WRAP reuses the COPY
# verbs with a bracket clause and COPY gains new plain verbs that also appear bracketed, so only the mention of
# brackets tells WRAP from COPY. Disjoint from the validation and reserved eval templates (tested).
CONTRAST_TEMPLATES_BY_LANGUAGE: Dict[str, Dict[str, List[str]]] = {
    "COPY": {
        "en": [
            "Print `{payload}`", "State '{payload}'", "Read out |{payload}|", "Restate: `{payload}`",
            "Write '{payload}'", "Show |{payload}| as written", "Recite `{payload}`", "Retype '{payload}'",
            "Render |{payload}|", "Say it again: `{payload}`",
        ],
        "de": ["Drucke `{payload}`", "Nenne '{payload}'", "Schreibe |{payload}| ab"],
    },
    "WRAP": {
        "en": [
            "Repeat exactly, in brackets: `{payload}`", "Copy into []: `{payload}`", "Echo `{payload}` in square brackets",
            "Say this back in brackets: '{payload}'", "Output in []: '{payload}'", "Just say '{payload}' in brackets",
            "Repeat |{payload}| between brackets", "Copy |{payload}| and add []", "Echo in brackets: {{payload}}",
            "Say back {{payload}} with [ and ]", "Write back '{payload}' in []",
            "Return `{payload}` in square brackets", "Type '{payload}' again with brackets",
            "Duplicate inside []: `{payload}`", "Echo back |{payload}| in brackets",
            "Print `{payload}` in brackets", "State '{payload}' inside []", "Read out |{payload}| in square brackets",
            "Restate in []: `{payload}`", "Write '{payload}' between brackets", "Show |{payload}| in brackets",
            "Recite `{payload}` with [ and ]", "Retype '{payload}' in []", "Render in brackets: |{payload}|",
        ],
        "de": ["Wiederhole in Klammern: `{payload}`", "Kopiere in []: |{payload}|",
               "Drucke '{payload}' in eckigen Klammern", "Nenne `{payload}` in []"],
    },
    "EXTRACT": {"en": [], "de": []},
}

def by_operator(templates_by_language: Dict[str, Dict[str, List[str]]]) -> Dict[str, List[str]]:
    """operator -> every template of ``operator -> language -> templates``, English first, then German."""
    return {op: by_lang["en"] + by_lang["de"] for op, by_lang in templates_by_language.items()}


#: operator -> every train / validation / contrast template (English first, then German), as the contract names them.
TRAIN_TEMPLATES: Dict[str, List[str]] = by_operator(TRAIN_TEMPLATES_BY_LANGUAGE)
VAL_TEMPLATES: Dict[str, List[str]] = by_operator(VAL_TEMPLATES_BY_LANGUAGE)
CONTRAST_TEMPLATES: Dict[str, List[str]] = by_operator(CONTRAST_TEMPLATES_BY_LANGUAGE)


def render(template: str, payload: str) -> str:
    """The user message: ``{payload}`` replaced literally (no str.format, so braces stay as written)."""
    return template.replace(PLACEHOLDER, payload)


def expected_output(operator: str, payload: str) -> str:
    """The exact assistant answer for an operator and payload."""
    if operator == "WRAP":
        return f"[{payload}]"
    if operator in ("COPY", "EXTRACT"):
        return payload
    raise MyPTInputError(f"unknown operator {operator!r} (expected one of {', '.join(OPERATORS)})", field="operator")


# ---------------------------------------------------------------------------------------------
# Payload strategies: (generator, size of its space). The sizes bound what can be drawn uniquely.

def _w(rng: random.Random) -> str:
    return rng.choice(COMMON_WORDS_EN)


def _g(rng: random.Random) -> str:
    return rng.choice(GERMAN_WORDS)


def _syl_word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


_NW, _NG, _NS, _NA = len(COMMON_WORDS_EN), len(GERMAN_WORDS), len(SYLLABLES), len(ADJECTIVES_EN)
_Strategy = Tuple[Callable[[random.Random], str], int]

_STRATEGIES: Dict[int, List[_Strategy]] = {
    1: [
        (_w, _NW),
        (_g, _NG),
        (_syl_word, _NS ** 2 + _NS ** 3),
        (lambda r: f"{_w(r)}{r.randint(10, 99)}", _NW * 90),
        (lambda r: _w(r).upper(), _NW),
        (lambda r: _w(r).capitalize(), _NW),
        (lambda r: str(r.randint(100, 9999)), 9900),
        (lambda r: _syl_word(r).capitalize(), _NS ** 2 + _NS ** 3),
    ],
    2: [
        (lambda r: f"{_w(r)} {_w(r)}", _NW ** 2),
        (lambda r: f"{_w(r)} {r.randint(1, 100)}", _NW * 100),
        (lambda r: f"{_g(r)} {_g(r)}", _NG ** 2),
        (lambda r: f"{_w(r).upper()} {_w(r)}", _NW ** 2),
        (lambda r: f"{_syl_word(r)} {_w(r)}", (_NS ** 2 + _NS ** 3) * _NW),
        (lambda r: f"the {_w(r)}", _NW),
        (lambda r: f"{r.choice(ADJECTIVES_EN)} {_w(r)}", _NA * _NW),
        (lambda r: f"{_w(r).capitalize()} {_w(r).capitalize()}", _NW ** 2),
    ],
    3: [
        (lambda r: f"{_w(r)} {_w(r)} {_w(r)}", _NW ** 3),
        (lambda r: f"the {_w(r)} {_w(r)}", _NW ** 2),
        (lambda r: f"{_w(r)} and {_w(r)}", _NW ** 2),
        (lambda r: f"{r.choice(ADJECTIVES_EN)} {_w(r)} {r.randint(1, 99)}", _NA * _NW * 99),
        (lambda r: f"{_g(r)} {_g(r)} {_g(r)}", _NG ** 3),
        (lambda r: f"a {_w(r)} {r.choice(PLACE_NOUNS)}", _NW * len(PLACE_NOUNS)),
    ],
    4: [
        (lambda r: f"{_w(r)} {_w(r)} {_w(r)} {_w(r)}", _NW ** 4),
        (lambda r: f"the {_w(r)} {r.choice(('and', 'or', 'with'))} {_w(r)}", _NW ** 2 * 3),
        (lambda r: f"{_w(r)} {_w(r)} {_w(r)} {r.randint(1, 999)}", _NW ** 3 * 999),
        (lambda r: f"a {r.choice(ADJECTIVES_EN)} {_w(r)} {_w(r)}", _NA * _NW ** 2),
        (lambda r: f"{_g(r)} {_g(r)} und {_g(r)}", _NG ** 3),
    ],
}


def _novel_payload(rng: random.Random, word_count: int) -> str:
    """``word_count`` words, each made up with probability 0.75, else a common word."""
    return " ".join(made_up_word(rng) if rng.random() < 0.75 else _w(rng) for _ in range(word_count))


def payload_capacity(word_count: int) -> int:
    """An upper bound on the distinct payloads of ``word_count`` words the strategies can produce."""
    return sum(size for _, size in _STRATEGIES[word_count])


def parse_word_dist(word_dist: str | Sequence[float], max_words: int) -> List[float]:
    """Parse "0.35,0.30,0.20,0.15" into ``max_words`` shares summing to 1 (zero-padded, then cut,
    as the original does). Raises MyPTInputError on anything unparseable or degenerate."""
    if not isinstance(max_words, int) or not 1 <= max_words <= MAX_WORDS_LIMIT:
        raise MyPTInputError(f"max_words must be an integer in 1..{MAX_WORDS_LIMIT}, got {max_words!r}",
                             field="max_words")
    if isinstance(word_dist, str):
        try:
            values = [float(part) for part in word_dist.split(",") if part.strip()]
        except ValueError:
            raise MyPTInputError(f"cannot parse word_dist {word_dist!r}: expected comma-separated numbers "
                                 "such as '0.35,0.30,0.20,0.15'", field="word_dist") from None
    else:
        values = [float(v) for v in word_dist]
    if not values:
        raise MyPTInputError(f"word_dist {word_dist!r} holds no numbers", field="word_dist")
    if any(v != v or v < 0 or v == float("inf") for v in values):
        raise MyPTInputError(f"word_dist {word_dist!r} must hold finite non-negative numbers", field="word_dist")
    values = (values + [0.0] * max_words)[:max_words]
    total = sum(values)
    if total <= 0:
        raise MyPTInputError(f"word_dist {word_dist!r} has no mass within max_words={max_words}", field="word_dist")
    return [v / total for v in values]


def allocate(total: int, shares: Sequence[float]) -> List[int]:
    """Split ``total`` into integer counts proportional to ``shares`` (floor, then largest remainder,
    ties to the earlier entry), so the counts sum exactly to ``total``."""
    raw = [total * s for s in shares]
    counts = [int(x) for x in raw]
    order = sorted(range(len(shares)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _token_lengths(tokenizer, texts: List[str]) -> List[int]:
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in encoded]


def _draw_payloads(rng: random.Random, counts: Sequence[int], exclude: set, tokenizer,
                   max_tokens: int, split: str, novel_word_share: float = 0.0) -> List[str]:
    """Unique payloads, ``counts[k-1]`` of k words each, none in ``exclude``, none reserved, each at
    most ``max_tokens`` tokens standalone; returned shuffled. A ``novel_word_share`` of the candidates
    are mostly made-up words (see :func:`_novel_payload`)."""
    seen = set(exclude)
    payloads: List[str] = []
    for word_count, need in enumerate(counts, start=1):
        strategies = _STRATEGIES[word_count]
        accepted: List[str] = []
        attempts, limit = 0, need * 30 + 1000
        while len(accepted) < need:
            batch: List[str] = []
            want = int((need - len(accepted)) * 1.2) + 16
            while len(batch) < want and attempts < limit:
                attempts += 1
                if novel_word_share and rng.random() < novel_word_share:
                    candidate = _novel_payload(rng, word_count)
                else:
                    candidate = rng.choice(strategies)[0](rng)
                if candidate in seen or contains_reserved(candidate):
                    continue
                seen.add(candidate)
                batch.append(candidate)
            if not batch:
                raise MyPTInputError(
                    f"the payload space ran out: {split} needs {need} unique {word_count}-word payloads of at most "
                    f"{max_tokens} tokens, found {len(accepted)}; lower n_train/n_val, raise max_tokens or change "
                    "word_dist", field="n_train")
            lengths = _token_lengths(tokenizer, batch) if tokenizer is not None else [0] * len(batch)
            for candidate, length in zip(batch, lengths):
                if length <= max_tokens and len(accepted) < need:
                    accepted.append(candidate)
        payloads.extend(accepted)
    rng.shuffle(payloads)
    return payloads


def _build_split(rng: random.Random, payloads: List[str], templates: Dict[str, Dict[str, List[str]]],
                 german: bool, split: str, system_prompt: Optional[str]) -> datasets.Dataset:
    n = len(payloads)
    n_german = int(round(n * GERMAN_SHARE)) if german else 0
    order = list(range(n))
    rng.shuffle(order)
    german_rows = set(order[:n_german])
    rows = []
    for index, payload in enumerate(payloads):
        operator = OPERATORS[index % len(OPERATORS)]
        language = "de" if index in german_rows else "en"
        template = rng.choice(templates[operator][language])
        expected = expected_output(operator, payload)
        system = system_prompt or (OPERATOR_SYSTEM_PROMPT_DE if language == "de" else OPERATOR_SYSTEM_PROMPT_EN)
        rows.append(make_episode(
            render(template, payload), expected, system=system, source="operators",
            episode_id=f"operator_{split}_{index:06d}", category=f"operator_{operator.lower()}", language=language,
            operator=operator, payload=payload, expected=expected, template=template))
    return datasets.Dataset.from_list(rows, features=EPISODE_FEATURES)


def training_templates(bracket_contrast: bool = False) -> Dict[str, Dict[str, List[str]]]:
    """operator -> language -> training phrasings: ``TRAIN_TEMPLATES_BY_LANGUAGE``, plus
    ``CONTRAST_TEMPLATES_BY_LANGUAGE`` when ``bracket_contrast`` is on."""
    if not bracket_contrast:
        return TRAIN_TEMPLATES_BY_LANGUAGE
    return {op: {lang: templates + CONTRAST_TEMPLATES_BY_LANGUAGE[op][lang] for lang, templates in by_lang.items()}
            for op, by_lang in TRAIN_TEMPLATES_BY_LANGUAGE.items()}


def _default_tokenizer():
    from ..tokenization_mypt import load_tokenizer

    return load_tokenizer()


def check_operator_args(n_train: int, n_val: int, max_words: int, max_tokens: int, word_dist,
                        seed_train: int, seed_val: int, novel_word_share: float = 0.0) -> List[float]:
    """Validate the arguments before any work; returns the parsed word distribution."""
    if not isinstance(novel_word_share, (int, float)) or not 0.0 <= float(novel_word_share) <= 1.0:
        raise MyPTInputError(f"novel_word_share must be a number in 0..1, got {novel_word_share!r}",
                             field="novel_word_share")
    for name, value in (("n_train", n_train), ("n_val", n_val)):
        # an empty split cannot be written as a datasets split with the other's features ("Keys mismatch")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise MyPTInputError(f"{name} must be a positive integer (each split needs an episode), got {value!r}",
                                 field=name)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise MyPTInputError(f"max_tokens must be a positive integer, got {max_tokens!r}", field="max_tokens")
    if seed_train == seed_val:
        raise MyPTInputError(f"seed_val must differ from seed_train (both {seed_train}): equal seeds draw the "
                             "same payload sequence for both splits", field="seed_val")
    shares = parse_word_dist(word_dist, max_words)
    for word_count, (need_train, need_val) in enumerate(zip(allocate(n_train, shares), allocate(n_val, shares)), 1):
        capacity = payload_capacity(word_count)
        if need_train + need_val > capacity:
            raise MyPTInputError(
                f"n_train + n_val asks for {need_train + need_val} unique {word_count}-word payloads, but the payload "
                f"space holds at most {capacity}", field="n_train")
    return shares


def operators(n_train: int = 5000, n_val: int = 500, max_words: int = 4, max_tokens: int = 12,
              word_dist: str = "0.35,0.30,0.20,0.15", seed_train: int = 42, seed_val: int = 12345,
              german: bool = True, tokenizer=None, system_prompt: Optional[str] = None,
              novel_word_share: float = 0.0, bracket_contrast: bool = False) -> datasets.DatasetDict:
    """COPY / WRAP / EXTRACT episodes as ``DatasetDict(train=..., validation=...)``.

    ``n_train`` / ``n_val`` count episodes; each episode has its own payload, unique across both
    splits; operators are balanced (±1), ``GERMAN_SHARE`` of the episodes use German templates and
    the German system prompt when ``german`` is on. Validation uses ``VAL_TEMPLATES`` only.
    ``tokenizer`` (default: the embedded one) checks ``max_tokens``. ``system_prompt`` overrides
    the EN/DE operator prompts. ``novel_word_share`` (0..1, default 0 = the original's word pools) is the
    share of payloads drawn mostly from made-up words, in both splits: a model that has not memorised a
    payload's spelling can only answer by copying it, which is what the operators are meant to teach.
    ``bracket_contrast`` adds ``CONTRAST_TEMPLATES_BY_LANGUAGE`` to the training phrasings (validation
    is unchanged): COPY verbs recur bracketed in WRAP, so only the brackets decide between them.
    """
    shares = check_operator_args(n_train, n_val, max_words, max_tokens, word_dist, seed_train, seed_val,
                                 novel_word_share)
    if tokenizer is None:
        tokenizer = _default_tokenizer()
    rng_train, rng_val = random.Random(seed_train), random.Random(seed_val)
    reserved = set(RESERVED_OPERATOR_PAYLOADS)
    train_payloads = _draw_payloads(rng_train, allocate(n_train, shares), reserved, tokenizer, max_tokens, "train",
                                    novel_word_share)
    val_payloads = _draw_payloads(rng_val, allocate(n_val, shares), reserved | set(train_payloads), tokenizer,
                                  max_tokens, "validation", novel_word_share)
    return datasets.DatasetDict({
        "train": _build_split(rng_train, train_payloads, training_templates(bracket_contrast), german, "train",
                              system_prompt),
        "validation": _build_split(rng_val, val_payloads, VAL_TEMPLATES_BY_LANGUAGE, german, "val", system_prompt),
    })


__all__ = [
    "OPERATORS", "TRAIN_TEMPLATES", "VAL_TEMPLATES", "TRAIN_TEMPLATES_BY_LANGUAGE", "VAL_TEMPLATES_BY_LANGUAGE",
    "CONTRAST_TEMPLATES_BY_LANGUAGE", "CONTRAST_TEMPLATES", "training_templates", "by_operator", "GERMAN_SHARE", "render", "expected_output", "operators",
    "parse_word_dist", "allocate", "payload_capacity", "check_operator_args",
]
