"""Letter-level made-up words: payloads a model cannot have memorised, so it can only answer by copying.

Every letter occurs (onsets include all consonants and common clusters, vowels include digraphs), so a made-up
word splits into the same kind of token pieces (single letters and short merges) as a real word the model has
never seen. Used by the operator generator (``novel_word_share``) and the echo generator (``gibberish_letters``).
"""

from __future__ import annotations

import random

_ONSETS = tuple("b c d f g h j k l m n p r s t v w y z bl br ch cl cr dr fl fr gl gr kn ph pl pr qu sc sh sk sl "
                "sm sn sp st sw th tr tw wh wr".split())
_VOWELS = tuple("a e i o u y a e i o ai ea ee ie oa oo ou".split())
_CODAS = ("",) * 6 + tuple("n r s t l m d x ck ng nt st ll ss rk mp th".split())


def made_up_word(rng: random.Random, max_syllables: int = 3) -> str:
    """A made-up word of 1..``max_syllables`` letter-level syllables, lowercase or (a quarter) capitalised."""
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                   for _ in range(rng.randint(1, max_syllables)))
    return word.capitalize() if rng.random() < 0.25 else word


__all__ = ["made_up_word"]
