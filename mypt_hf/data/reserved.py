"""Payloads and templates reserved for the evaluation suite's operator bucket (and its anti-echo words), and the
words of the held-out gate sets.

Nothing the generators emit may contain them: the gate must measure copying of payloads and
phrasings the model never saw (the original eval leaked 13 of its 30 payloads into training).
The generators reject any payload that contains a reserved content word, and tests check every
generated message against ``RESERVED_CONTENT_WORDS``.
"""

from __future__ import annotations

import re
from typing import Dict, FrozenSet, Tuple

#: Eval payloads: 15 one-word, 9 two-word, 6 three-word, 6 four-word.
RESERVED_OPERATOR_PAYLOADS: Tuple[str, ...] = (
    "xylophone", "quasar", "nebula", "twilight", "cascade", "phoenix", "marble", "crystal", "emerald",
    "dragon", "zenith", "horizon", "saffron", "obsidian", "tundra",
    "amber lagoon", "silent canyon", "frozen meteor", "crimson tundra", "distant quasar", "misty dawn",
    "hollow cave", "ancient gate", "hazy nebula",
    "misty canyon dawn", "ancient amber gate", "crimson meteor shower", "silent frozen lagoon",
    "distant emerald isle", "hollow obsidian cave",
    "the lagoon and canyon", "amber dawn over tundra", "frozen meteor of twilight", "a silent crimson dawn",
    "the phoenix and dragon", "misty dawn in canyon",
)

#: Eval templates per operator ({payload} marks the payload); disjoint from the generator's
#: TRAIN_TEMPLATES and VAL_TEMPLATES (tested).
RESERVED_OPERATOR_TEMPLATES: Dict[str, Tuple[str, ...]] = {
    "COPY": (
        "Give back: `{payload}`", "Send this unchanged: '{payload}'", "What I say is |{payload}|",
        "Relay: `{payload}`", "Pass through '{payload}'", "Transmit exactly: `{payload}`",
        "Feed back |{payload}|", "Bounce back: '{payload}'", "Return unchanged `{payload}`",
        "Spit out |{payload}|",
    ),
    "WRAP": (
        "Frame with brackets: `{payload}`", "Box this in []: '{payload}'",
        "Sandwich between [ and ]: |{payload}|", "Place brackets on `{payload}`",
        "Give me '{payload}' with [] around it", "Package in brackets `{payload}`",
        "Return |{payload}| inside []", "Bookend with []: '{payload}'", "`{payload}` but in brackets",
        "I need |{payload}| wrapped in []",
    ),
    "EXTRACT": (
        'Strip the quotes from "{payload}"', 'Unquote: "{payload}"', 'Remove quotation marks from "{payload}"',
        'Give me just the word in "{payload}"', 'Dequote "{payload}"', 'Take off the quotes: "{payload}"',
        'Peel away the quotes from "{payload}"', 'The quoted text in "{payload}" is?',
        'Without quotes: "{payload}"', 'Bare text from "{payload}"',
    ),
}

#: Made-up words the eval's anti-echo bucket asks about; the echo generator never uses them.
RESERVED_ANTI_ECHO_WORDS: Tuple[str, ...] = (
    "Blurpix", "Zanthor", "Quexling", "Flimzap", "Vorplex", "Snarfle", "Glimbo", "Troxan",
)

#: Words of the held-out gate sets (mypt_hf.evaluation.held_out): real words no generator pool holds (echo and
#: operator payloads) and made-up words no generator emits (anti-echo). Reserved like the suite's payloads, so a
#: held-out rate measures generalisation, not recall.
HELD_OUT_PAYLOAD_WORDS: Tuple[str, ...] = (
    # the first held-out sets (benchmarks/held_out_gates.py, 24 echo + 18 operator items)
    "Pineapple", "crooked", "antler", "Marmalade", "rusty", "hinge", "Sunflower", "Walrus", "Porcupine", "brass",
    "thimble", "Quokka", "Sonnenblume", "Tangerine", "dusk", "Hazelnut", "juniper", "thistle", "Lobster", "nutmeg",
    "waffle", "Pelican", "rhubarb", "Wombat", "Zeppelin", "Badger", "Pistazie", "ember", "goblet", "birch", "harp",
    "cobalt", "glimmer", "brisk", "ferret", "bog", "gloomy", "fjord",
    # added to reach 60+ items a bucket
    "Armadillo", "Toucan", "Meerkat", "Platypus", "Narwhal", "Iguana", "Chinchilla", "Mongoose", "Pangolin",
    "Sardine", "Parsnip", "Artichoke", "Kumquat", "Lychee", "Papaya", "Nectarine", "Quill", "Anvil", "Trowel",
    "Spindle", "Ladle", "Whisk", "Doorknob", "Sextant", "Abacus", "Metronome", "Ukulele", "Bassoon", "tweed",
    "pewter", "pickled", "woolly", "speckled", "Pretzel", "Gherkin", "Haddock", "Mackerel", "Kestrel", "Heron",
)
HELD_OUT_MADE_UP_WORDS: Tuple[str, ...] = (
    "Drumblix", "Skorvane", "Velmorph", "Plonkrat", "Gribbet", "Zuvanto", "Heptolin", "Knurzel",
    "Frazzik", "Ombrelt", "Quiddle", "Thrasket", "Yovrin", "Glunder", "Praxwell", "Snorvik", "Bexhalt", "Crumvet",
    "Dwindax", "Elphrin", "Fizgrove", "Gastrule", "Hobrax", "Ixmundo", "Jorvette", "Klumbrish", "Lazmorp",
    "Mervolt", "Nibsket", "Oxtrandle", "Pelvorn", "Quonzik", "Rastwick", "Sprindle", "Torvex", "Umbrisk",
    "Vantrice", "Wexlom", "Yarbolt", "Zindrel", "Brovnik", "Clestrum", "Dravolin", "Fenstrix", "Glomvar", "Hurzel",
    "Jestrim", "Korbalt", "Lunvex", "Mardrip", "Nostrel", "Pliskor", "Rombix", "Skelvane", "Trudmor", "Vexlirn",
    "Wombrel", "Zarquint", "Blintor", "Crovash", "Dulmext", "Flenskar", "Grottix", "Humbrel",
)

_STOP_WORDS = frozenset({"the", "a", "and", "of", "over", "in"})

#: Every non-stop word of the reserved payloads, lowercase (never generated anywhere).
RESERVED_CONTENT_WORDS: FrozenSet[str] = frozenset(
    word for payload in RESERVED_OPERATOR_PAYLOADS for word in payload.lower().split() if word not in _STOP_WORDS
) | frozenset(word.lower() for word in RESERVED_ANTI_ECHO_WORDS + HELD_OUT_PAYLOAD_WORDS + HELD_OUT_MADE_UP_WORDS)

_WORD_RE = re.compile(r"[A-Za-z]+")


def contains_reserved(text: str) -> bool:
    """True when ``text`` contains a reserved content word as a whole word (case-insensitive)."""
    return any(match.group(0).lower() in RESERVED_CONTENT_WORDS for match in _WORD_RE.finditer(text))


__all__ = [
    "RESERVED_OPERATOR_PAYLOADS", "RESERVED_OPERATOR_TEMPLATES", "RESERVED_ANTI_ECHO_WORDS",
    "HELD_OUT_PAYLOAD_WORDS", "HELD_OUT_MADE_UP_WORDS", "RESERVED_CONTENT_WORDS", "contains_reserved",
]
