"""The tiny base's gate: does the model copy phrases it has never seen from its context?

Held-out phrases of made-up words (their own RNG stream, not the copy-pretraining data's) are given as
``phrase + " ->"``; the model continues greedily, and an item passes when its first tokens are exactly the
phrase's tokens, with or without the leading space (the copy-pretraining data also teaches copies whose first
word is re-tokenized without the space, as a chat reply's is). The result is a report in the eval suite's shape
(one bucket, ``copy``), so the phase runner's gate table, ``gates.png``, the model card and the chain summary show it.
"""

from __future__ import annotations

import datetime as _dt
import random
from typing import Any, Dict, List, Sequence

from ..data.made_up import made_up_word

COPY_BUCKET = "copy"
PROBE_SEPARATOR = " ->"


def copy_probe_phrases(n: int = 100, seed: int = 12345) -> List[str]:
    """``n`` held-out phrases of 2-4 made-up words, each with its leading space."""
    rng = random.Random(seed)
    return [" " + " ".join(made_up_word(rng) for _ in range(rng.randint(2, 4))) for _ in range(n)]


def copy_probe(model: Any, tokenizer: Any, phrases: Sequence[str], threshold: float = 0.8) -> Dict[str, Any]:
    """Greedy copy of each phrase after ``phrase + " ->"``; a report with one gated bucket, ``copy``."""
    import torch

    items = []
    device = next(model.parameters()).device
    separator = tokenizer.encode(PROBE_SEPARATOR, add_special_tokens=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for index, phrase in enumerate(phrases):
                target = tokenizer.encode(phrase, add_special_tokens=False)
                bare = tokenizer.encode(phrase.lstrip(), add_special_tokens=False)
                prompt = target + separator
                budget = max(len(target), len(bare))
                out = model.generate(torch.tensor([prompt], device=device), max_new_tokens=budget,
                                     min_new_tokens=budget, do_sample=False, pad_token_id=tokenizer.pad_token_id)
                got = out[0, len(prompt):].tolist()
                copied = next((form for form in (target, bare) if got[:len(form)] == form), None)
                items.append({"index": index, "name": f"copy_{index:03d}", "prompt": phrase + PROBE_SEPARATOR,
                              "expected": phrase, "generated": tokenizer.decode(got[:len(copied or target)]),
                              "passed": copied is not None, "reason": "exact" if copied else "mismatch"})
    finally:
        model.train(was_training)
    passed = sum(item["passed"] for item in items)
    rate = passed / max(1, len(items))
    verdict = "PASS" if rate >= threshold else "FAIL"
    bucket = {"check": COPY_BUCKET, "passed": passed, "failed": len(items) - passed, "total": len(items),
              "rate": rate, "threshold": threshold, "gated": True, "verdict": verdict, "items": items}
    return {"buckets": {COPY_BUCKET: bucket}, "passed": verdict == "PASS", "gated_buckets": [COPY_BUCKET],
            "total_passed": passed, "total": len(items),
            "settings": {"decoding": "greedy", "separator": PROBE_SEPARATOR, "phrases": len(items)},
            "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


__all__ = ["COPY_BUCKET", "copy_probe", "copy_probe_phrases"]
