"""Echo episodes (the original ``generate_echo_dataset.py``): "{prefix} {payload}" → the payload verbatim,
BPE-safe gibberish, anti-echo questions and contrast groups.

Differences from the original, on purpose (reference §4, §14.14):
- ``anti_echo_ratio`` and ``contrast_ratio`` are shares of the output rows (0.2 → 20% of rows),
  not caps; ``max_examples`` shrinks every part in proportion so the shares still hold.
- anti-echo rows exist in every mode (their gibberish word is only ever quoted, never echoed), so
  the β mix trains the behaviour its gate checks; in ``exclude`` mode the contrast groups use real
  words (prefix echo + quoted echo) because asking "What is 'Apple'?" → "Unknown." would be false.
- the BPE-safe count is the word's token count as it appears in the prompt: after the prefix,
  with its leading space (the original encoded the word standalone).
- no question appears twice (contrast prefix pairs never duplicate base pairs), each item gets a
  seeded sample of the prefixes instead of all of them (sizes within the guide's ranges), and the
  gibberish pool size is a parameter, not a hard-coded 200.
- every draw uses one ``random.Random(seed)``.
"""

from __future__ import annotations

import random
from typing import Dict, List, Optional, Sequence, Set, Tuple

import datasets

from ..errors import MyPTInputError
from ..tokens import DEFAULT_SYSTEM_PROMPT
from .reserved import contains_reserved
from .schema import EPISODE_FEATURES, make_episode
from . import wordlists as wl
from .made_up import made_up_word

GIBBERISH_MODES = ("include", "exclude", "only")
PLACEHOLDER = "{payload}"

ECHO_PREFIXES_EN: Tuple[str, ...] = (
    "Say:", "Say the word:", "Say the phrase:", "Say exactly:", "Please say:", "Just say:", "Repeat:",
    "Repeat after me:", "Repeat this:", "Repeat exactly:", "Please repeat:", "Please repeat exactly:", "Echo:",
    "Echo this:", "Output:", "Output exactly:", "Output the following:", "Write:", "Write exactly:", "Write out:",
    "Type:", "Type out:", "Respond with:", "Respond with only:", "Reply with:", "Reply with just:", "Give me:",
    "Return:", "Print:",
)
ECHO_PREFIXES_DE: Tuple[str, ...] = (
    "Sage:", "Sag:", "Sag das Wort:", "Sag genau:", "Bitte sage:", "Bitte sag:", "Wiederhole:", "Wiederhole dies:",
    "Wiederhole genau:", "Bitte wiederhole:", "Bitte wiederhole genau:", "Gib aus:", "Gib genau aus:", "Schreibe:",
    "Schreibe genau:", "Antworte mit:", "Antworte nur mit:",
)
QUOTE_TEMPLATES: Tuple[str, ...] = (
    'Say "{payload}"', 'Repeat "{payload}"', 'Echo "{payload}"', 'Output "{payload}"', 'Write "{payload}"',
    'Type "{payload}"', 'Reply with "{payload}"',
)
ANTI_ECHO_TEMPLATES_EN: Tuple[Tuple[str, str], ...] = (
    ('What is "{payload}"?', "Unknown."), ('What does "{payload}" mean?', "Unknown."),
    ('Is "{payload}" a real word?', "No."), ('Is "{payload}" a valid English word?', "No."),
    ('Does "{payload}" have a meaning?', "No."), ('Translate "{payload}" to German.', "Unknown."),
    ('Define "{payload}".', "Unknown."),
)
ANTI_ECHO_TEMPLATES_DE: Tuple[Tuple[str, str], ...] = (
    ('Was bedeutet "{payload}"?', "Unbekannt."), ('Ist "{payload}" ein echtes Wort?', "Nein."),
    ('Hat "{payload}" eine Bedeutung?', "Nein."), ('Übersetze "{payload}" ins Englische.', "Unbekannt."),
)

#: Prefixes sampled per content item (regular pools / gibberish); sized so β lands in 3,000–5,000
#: rows and γ in 2,000–3,000 at the default ratios.
PREFIXES_PER_ITEM = 6
PREFIXES_PER_GIBBERISH = 4
GIBBERISH_COUNT_EN = 300
GIBBERISH_COUNT_DE = 60
#: Reference prefix for the in-prompt BPE count (every prefix ends in ":", so the word's tokens do
#: not depend on which one precedes it).
_BPE_REFERENCE_PREFIX = "Repeat:"

_DE_ONSETS = ("Schn", "Pf", "Tr", "Kr", "Bl", "Gl", "Zw", "Fl", "Br", "Sp", "Kn", "W", "M", "D", "Pl", "Gr")
_DE_VOWELS = ("a", "e", "i", "o", "u", "ö", "ä", "ü", "oe", "ae", "ue", "au", "ei")
_DE_CODAS = ("x", "tz", "rk", "mp", "ll", "ff", "nz", "sch", "rx", "lk", "ng", "rf")


def _real_words() -> Set[str]:
    words: Set[str] = set()
    for pool in (wl.COMMON_WORDS_EN, wl.GERMAN_WORDS, wl.ECHO_WORDS_EN, wl.ECHO_WORDS_DE, wl.ADJECTIVES_EN):
        words.update(w.lower() for w in pool)
    return words


def _gibberish_candidate_en(rng: random.Random) -> str:
    s = wl.SYLLABLES
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(rng.choice(s) for _ in range(rng.randint(1, 2))).capitalize()
    if kind == 1:
        return (rng.choice(s) + rng.choice(s)).capitalize()
    if kind == 2:
        return rng.choice(s).capitalize() + str(rng.randint(0, 9))
    if kind == 3:
        return "".join(rng.choice("ABCDEFGHJKLMNPQRSTVWXYZ") for _ in range(rng.randint(2, 3)))
    return f"{rng.choice(s).capitalize()}{rng.choice(s)}x"


def _gibberish_candidate_de(rng: random.Random) -> str:
    return rng.choice(_DE_ONSETS) + rng.choice(_DE_VOWELS) + rng.choice(_DE_CODAS)


def in_prompt_token_counts(tokenizer, words: Sequence[str]) -> List[int]:
    """Tokens each word takes in an echo prompt: after a prefix, with its leading space (batched)."""
    base = len(tokenizer(_BPE_REFERENCE_PREFIX, add_special_tokens=False)["input_ids"])
    encoded = tokenizer([f"{_BPE_REFERENCE_PREFIX} {w}" for w in words], add_special_tokens=False)["input_ids"]
    return [len(ids) - base for ids in encoded]


def make_gibberish(rng: random.Random, seeds: Sequence[str], count: int, candidate, tokenizer,
                   max_target_tokens: int, taken: Set[str]) -> List[str]:
    """``count`` made-up words: the seed words first, then generated ones; none a real or reserved word,
    none already in ``taken`` (case-insensitive); BPE-safe under ``tokenizer`` when one is given."""
    real = _real_words()
    pool: List[str] = []
    attempts = 0
    pending = list(seeds)
    while len(pool) < count and attempts < count * 40:
        batch: List[str] = []
        while pending:
            batch.append(pending.pop(0))
        while len(batch) < (count - len(pool)) * 2 + 8:
            batch.append(candidate(rng))
            attempts += 1
        fresh = []
        for word in batch:
            key = word.lower()
            if key in taken or key in real or contains_reserved(word):
                continue
            taken.add(key)
            fresh.append(word)
        lengths = in_prompt_token_counts(tokenizer, fresh) if tokenizer is not None and fresh else [0] * len(fresh)
        for word, length in zip(fresh, lengths):
            if length <= max_target_tokens and len(pool) < count:
                pool.append(word)
    return pool


def check_echo_args(gibberish: str, max_target_tokens: int, anti_echo_ratio: float, contrast_ratio: float,
                    max_examples: Optional[int], gibberish_words_en: int = GIBBERISH_COUNT_EN,
                    gibberish_words_de: int = GIBBERISH_COUNT_DE) -> None:
    """Refuse bad echo generator settings (MyPTInputError naming the field) before anything is generated."""
    if gibberish not in GIBBERISH_MODES:
        raise MyPTInputError(f"unknown gibberish mode {gibberish!r} (expected one of {', '.join(GIBBERISH_MODES)})",
                             field="gibberish")
    if not isinstance(max_target_tokens, int) or max_target_tokens < 1:
        raise MyPTInputError(f"max_target_tokens must be a positive integer, got {max_target_tokens!r}",
                             field="max_target_tokens")
    for name, value in (("anti_echo_ratio", anti_echo_ratio), ("contrast_ratio", contrast_ratio)):
        if not 0.0 <= value < 1.0:
            raise MyPTInputError(f"{name} must be in [0, 1), got {value!r}", field=name)
    if anti_echo_ratio + contrast_ratio >= 1.0:
        raise MyPTInputError(f"anti_echo_ratio + contrast_ratio must be below 1 (got {anti_echo_ratio + contrast_ratio}): "
                             "they are shares of the output and echo rows need the rest", field="anti_echo_ratio")
    if max_examples is not None and (not isinstance(max_examples, int) or max_examples < 1):
        raise MyPTInputError(f"max_examples must be a positive integer, got {max_examples!r}", field="max_examples")
    for name, value in (("gibberish_words_en", gibberish_words_en), ("gibberish_words_de", gibberish_words_de)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MyPTInputError(f"{name} must be a non-negative integer, got {value!r}", field=name)


def echo(gibberish: str = "exclude", bpe_safe: bool = True, max_target_tokens: int = 4,
         anti_echo_ratio: float = 0.2, contrast_ratio: float = 0.2, max_examples: Optional[int] = None,
         seed: int = 42, tokenizer=None, system_prompt: Optional[str] = DEFAULT_SYSTEM_PROMPT,
         gibberish_words_en: int = GIBBERISH_COUNT_EN, gibberish_words_de: int = GIBBERISH_COUNT_DE,
         gibberish_letters: bool = False) -> datasets.Dataset:
    """Echo episodes as a Dataset with EPISODE_FEATURES.

    ``gibberish``: "exclude" (real words, phrases, numbers, sentences; guide β), "only" (made-up words
    only; guide γ) or "include" (both). The shares of anti-echo and contrast-group rows in the output
    are ``anti_echo_ratio`` and ``contrast_ratio`` (to within one row). With ``bpe_safe`` every made-up
    word takes at most ``max_target_tokens`` tokens in the prompt under ``tokenizer`` (default: the
    embedded tokenizer). ``gibberish_words_en`` / ``gibberish_words_de`` size the made-up word pools (the
    original's 300 / 60); ``gibberish_letters`` draws the English ones after the seed words from
    :func:`~mypt_hf.data.made_up.made_up_word` (letter-level, longer, far more varied) instead of two-syllable
    combinations — for small models, which otherwise learn to copy only short syllable words.
    """
    check_echo_args(gibberish, max_target_tokens, anti_echo_ratio, contrast_ratio, max_examples, gibberish_words_en,
                gibberish_words_de)
    if bpe_safe and tokenizer is None:
        from ..tokenization_mypt import load_tokenizer

        tokenizer = load_tokenizer()
    if not bpe_safe:
        tokenizer = None
    rng = random.Random(seed)
    taken: Set[str] = set()
    candidate_en = made_up_word if gibberish_letters else _gibberish_candidate_en
    gib_en = make_gibberish(rng, wl.GIBBERISH_SEED_EN, gibberish_words_en, candidate_en, tokenizer,
                            max_target_tokens, taken)
    gib_de = make_gibberish(rng, wl.GIBBERISH_SEED_DE, gibberish_words_de, _gibberish_candidate_de, tokenizer,
                            max_target_tokens, taken)
    if not gib_en:
        raise MyPTInputError(f"no made-up word fits max_target_tokens={max_target_tokens} under the tokenizer",
                             field="max_target_tokens")

    # Base echo rows: (prefix, payload, category, language).
    pools: List[Tuple[Sequence[str], str, str, int]] = []
    if gibberish != "only":
        pools += [(wl.ECHO_WORDS_EN, "echo_word_en", "en", PREFIXES_PER_ITEM),
                  (wl.ECHO_PHRASES_EN, "echo_phrase_en", "en", PREFIXES_PER_ITEM),
                  (wl.ECHO_NUMBERS_AND_CODES, "echo_number", "en", PREFIXES_PER_ITEM),
                  (wl.ECHO_SENTENCES_EN, "echo_sentence_en", "en", PREFIXES_PER_ITEM),
                  (wl.ECHO_WORDS_DE, "echo_word_de", "de", PREFIXES_PER_ITEM),
                  (wl.ECHO_PHRASES_DE, "echo_phrase_de", "de", PREFIXES_PER_ITEM),
                  (wl.ECHO_SENTENCES_DE, "echo_sentence_de", "de", PREFIXES_PER_ITEM)]
    if gibberish != "exclude":
        pools += [(gib_en, "echo_gibberish_en", "en", PREFIXES_PER_GIBBERISH),
                  (gib_de, "echo_gibberish_de", "de", PREFIXES_PER_GIBBERISH)]
    base: List[Tuple[str, str, str, str]] = []
    used_prefixes: Dict[str, Set[str]] = {}
    for items, category, language, k in pools:
        prefixes = ECHO_PREFIXES_EN if language == "en" else ECHO_PREFIXES_DE
        for item in items:
            chosen = rng.sample(prefixes, min(k, len(prefixes)))
            used_prefixes.setdefault(item, set()).update(chosen)
            base += [(p, item, category, language) for p in chosen]

    total = round(len(base) / (1.0 - anti_echo_ratio - contrast_ratio))
    if max_examples is not None and max_examples < total:
        total = max_examples
    n_anti, n_contrast = round(total * anti_echo_ratio), round(total * contrast_ratio)
    n_base = total - n_anti - n_contrast
    if n_base < len(base):
        base = [base[i] for i in sorted(rng.sample(range(len(base)), n_base))]

    rows: List[dict] = []
    seen_questions: Set[str] = set()

    def add(template: str, payload: str, answer: str, category: str, language: str, group: Optional[str] = None) -> bool:
        question = template.replace(PLACEHOLDER, payload)
        if question in seen_questions:
            return False
        seen_questions.add(question)
        rows.append(make_episode(question, answer, system=system_prompt, source="echo", category=category,
                                 language=language, payload=payload, expected=answer, template=template, group=group))
        return True

    for prefix, item, category, language in base:
        add(f"{prefix} {PLACEHOLDER}", item, item, category, language)

    # Contrast groups: the same payload as prefix echo, quoted echo and (made-up words only) anti-echo.
    if gibberish == "exclude":
        group_payloads = [(w, False) for w in wl.ECHO_WORDS_EN]
    elif gibberish == "only":
        group_payloads = [(w, True) for w in gib_en]
    else:
        words, gibs = list(wl.ECHO_WORDS_EN), list(gib_en)
        group_payloads = [pair for i in range(max(len(words), len(gibs)))
                          for pair in ((gibs[i], True) if i < len(gibs) else None,
                                       (words[i], False) if i < len(words) else None) if pair]
    rng.shuffle(group_payloads)
    added, group_index, stall = 0, 0, 0
    while added < n_contrast and stall < 3 * len(group_payloads):
        payload, is_gibberish = group_payloads[group_index % len(group_payloads)]
        group = f"contrast_{group_index:05d}"
        group_index += 1
        progress = False
        free = [p for p in ECHO_PREFIXES_EN if p not in used_prefixes.get(payload, set())]
        members = []
        if free:
            prefix = rng.choice(free)
            used_prefixes.setdefault(payload, set()).add(prefix)
            members.append((f"{prefix} {PLACEHOLDER}", payload, "contrast_echo_prefix"))
        members.append((rng.choice(QUOTE_TEMPLATES), payload, "contrast_echo_quote"))
        if is_gibberish:
            template, answer = rng.choice(ANTI_ECHO_TEMPLATES_EN)
            members.append((template, answer, "contrast_anti_echo"))
        for template, answer, category in members:
            if added >= n_contrast:
                break
            if add(template, payload, answer, category, "en", group):
                added += 1
                progress = True
        stall = 0 if progress else stall + 1

    # Anti-echo: questions about a made-up word whose answer does not repeat it.
    combos = ([(w, t, "en") for w in gib_en for t in ANTI_ECHO_TEMPLATES_EN]
              + [(w, t, "de") for w in gib_de for t in ANTI_ECHO_TEMPLATES_DE])
    rng.shuffle(combos)
    added = 0
    for word, (template, answer), language in combos:
        if added >= n_anti:
            break
        if add(template, word, answer, f"anti_echo_{language}", language):
            added += 1

    rng.shuffle(rows)
    for index, row in enumerate(rows):
        row["_meta"]["episode_id"] = f"echo_{index:05d}"
    return datasets.Dataset.from_list(rows, features=EPISODE_FEATURES)


__all__ = ["GIBBERISH_MODES", "ECHO_PREFIXES_EN", "ECHO_PREFIXES_DE", "QUOTE_TEMPLATES", "ANTI_ECHO_TEMPLATES_EN",
           "ANTI_ECHO_TEMPLATES_DE", "in_prompt_token_counts", "make_gibberish", "echo"]
