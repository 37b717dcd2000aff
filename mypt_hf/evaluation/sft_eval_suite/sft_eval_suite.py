"""MyPT Phase 3a SFT evaluation suite as an ``evaluate`` metric: pure scoring, no generation.

Load it offline with ``evaluate.load("<path>/sft_eval_suite")``. ``evaluate`` copies this file into its
module cache and imports it from there, so it may only import installed libraries: the MyPT tag strings
it needs are duplicated below (a test asserts they equal ``mypt_hf.tokens``) and can be overridden
through ``compute`` keyword arguments.

Inputs (one entry per item):
  predictions  the generated assistant text, as ``mypt_hf.generation.generate_replies`` returns it
               (including the stop tag string when one was emitted: the format check needs to see it)
  references   the expected answer (B, D, E), the forbidden quoted word (C), or "" (A); a C reply is scored
               only when it passes the format check and is made of words (``check_words``), else it fails
  buckets      the bucket name of the item (format_strict, echo_basic, anti_echo, regression_basic,
               operators; the letters A-E are accepted too)

Optional per-item keyword arguments: ``check_types`` (which check scores the item; default from the
bucket name), ``item_names``, ``prompts``, ``operators`` and ``word_counts`` (operator breakdowns).
Optional settings: ``thresholds`` ({bucket: rate}), ``gated`` (bucket names that gate the verdict),
``require_stop_tag`` (format check: a turn that never ends is runaway), ``runaway_chars``,
``tag_strings``, ``forbidden_tags``, ``stop_tags``.

Output: {"passed", "total_passed", "total", "overall_pass_rate", "buckets": {name: {"check", "passed",
"failed", "total", "rate", "threshold", "gated", "verdict", "items": [...], + "collapse_check" (D),
"by_operator"/"by_word_count" (E)}}}.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

import datasets
import evaluate

# Duplicated from mypt_hf.tokens on purpose (see module docstring); tests/test_eval_metric.py
# asserts they are equal so there is still one source of truth.
TAG_STRINGS = (
    "<myPT_system>", "</myPT_system>", "<myPT_user>", "</myPT_user>", "<myPT_assistant>", "</myPT_assistant>",
    "<myPT_user_context>", "</myPT_user_context>", "<myPT_assistant_context>", "</myPT_assistant_context>",
    "<myPT_toolcall>", "</myPT_toolcall>", "<myPT_toolresult>", "</myPT_toolresult>", "<myPT_think>",
    "</myPT_think>", "<myPT_cite>", "</myPT_cite>", "<myPT_eot>",
)
FORBIDDEN_IN_OUTPUT = ("<myPT_system>", "</myPT_system>", "<myPT_user>", "</myPT_user>")
STOP_TAG_STRINGS = ("</myPT_assistant>", "<myPT_eot>")

FORMAT_STRICT = "format_strict"
ECHO_BASIC = "echo_basic"
ANTI_ECHO = "anti_echo"
REGRESSION_BASIC = "regression_basic"
OPERATORS = "operators"
CHECK_TYPES = (FORMAT_STRICT, ECHO_BASIC, ANTI_ECHO, REGRESSION_BASIC, OPERATORS)
BUCKET_LETTERS = {"A": FORMAT_STRICT, "B": ECHO_BASIC, "C": ANTI_ECHO, "D": REGRESSION_BASIC, "E": OPERATORS}

#: The Phase 3a guide's gates (the original code implemented none of them: all-or-nothing).
DEFAULT_THRESHOLDS = {FORMAT_STRICT: 1.0, ECHO_BASIC: 0.8, ANTI_ECHO: 0.8, REGRESSION_BASIC: 0.5, OPERATORS: 0.75}
#: Beyond this many characters an output with no closing tag is runaway (the original's rule).
DEFAULT_RUNAWAY_CHARS = 500
ECHO_TRAILING_PUNCTUATION = ".!?,;:"
COLLAPSE_PREFIX_CHARS = 20

# The "made of words" criterion (``check_words``). It decides whether an anti-echo reply (C) can be scored at all
# and, in mypt_hf.evaluation.red_lines, whether a simple-task reply is garbage: one definition for both.
#: At least this share of a reply's chunks must be word-like. Real answers ("I don't know.", "Berlin", "5 + 7 = 12")
#: are all words; a random or broken model's BPE noise ("stllG\ufffdZ k$am") is about half words at best.
WORDS_MIN_SHARE = 0.8
#: Longer letter runs are glued BPE pieces, not words (German compounds in replies stay well under this).
WORD_MAX_CHARS = 24
#: Longer digit runs are noise ("111111111111"), not an answer.
NUMBER_MAX_CHARS = 10
#: More than this many of one letter in a row ("aaaa"), or a number of one digit repeated more often ("1111"), is a
#: degenerate loop, not a word ("Schifffahrt" and "1000" have three).
CHAR_RUN_MAX = 3
#: A reply of at least this many chunks with under this share of distinct ones is a loop ("genau 11 genau 11 ...").
LOOP_MIN_CHUNKS = 8
LOOP_MAX_DISTINCT_SHARE = 0.3

# Anything that starts like a tag: "<myPT_" or "</myPT_" up to ">" (a complete tag) or to the next "<"
# or the end of the text (an unclosed one).
_TAG_LIKE = re.compile(r"</?myPT_[^<>]*(>|(?=<)|$)")
# Chunks are split on plain whitespace only: control characters (which str.split() also treats as whitespace)
# stay inside a chunk and make it non-word, as they should.
_CHUNK_SPLIT = re.compile(r"[ \t\r\n]+")
_EDGE_PUNCTUATION = "\"'`.,;:!?()[]{}<>|\u00ab\u00bb\u201e\u201c\u201d\u2018\u2019*_~"
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)*%?")
_PUNCTUATION_ONLY = re.compile(r"[!-/:-@\[-`{-~]+")  # ASCII punctuation and math signs: "+", "=", "-", "..."
_CHAR_RUN = re.compile(r"(.)\1{%d,}" % CHAR_RUN_MAX)

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: generated assistant texts.
    references: expected answers / forbidden words ("" for format items).
    buckets: bucket name per item.
    thresholds, gated, check_types, item_names, prompts, operators, word_counts, require_stop_tag,
    runaway_chars, tag_strings, forbidden_tags, stop_tags: see the module docstring.
Returns:
    dict with "passed" (every gated bucket reaches its threshold), per-bucket results and per-item details.
"""


def canonical_bucket(name: str) -> str:
    """Map a bucket letter (A-E) or name to the bucket name."""
    return BUCKET_LETTERS.get(name, name)


def extract_response(text: str, stop_tags: Sequence[str] = STOP_TAG_STRINGS) -> str:
    """The answer text: cut at the first stop tag, whitespace stripped (the original's extract_response)."""
    text = text.strip()
    for tag in stop_tags:
        text = text.split(tag, 1)[0]
    return text.strip()


def check_format(prediction: str, *, tag_strings: Sequence[str] = TAG_STRINGS,
                 forbidden_tags: Sequence[str] = FORBIDDEN_IN_OUTPUT, stop_tags: Sequence[str] = STOP_TAG_STRINGS,
                 require_stop_tag: bool = True, runaway_chars: int = DEFAULT_RUNAWAY_CHARS) -> Dict[str, Any]:
    """A: only known tags, none of the role tags the model must not emit, no unclosed tag, no runaway."""
    valid = set(tag_strings)
    for match in _TAG_LIKE.finditer(prediction):
        tag = match.group(0)
        if not tag.endswith(">"):
            return {"passed": False, "reason": f"unclosed tag {tag!r}"}
        if tag in forbidden_tags:
            return {"passed": False, "reason": f"forbidden tag {tag}"}
        if tag not in valid:
            return {"passed": False, "reason": f"unknown tag {tag}"}
    if not any(tag in prediction for tag in stop_tags):
        if require_stop_tag:
            return {"passed": False, "reason": "runaway: the turn never ends (no stop tag)"}
        if len(prediction) > runaway_chars:
            return {"passed": False, "reason": f"runaway: {len(prediction)} chars without a closing tag"}
    return {"passed": True, "reason": "ok"}


def check_echo(response: str, reference: str) -> Dict[str, Any]:
    """B: equal after trimming trailing punctuation, case-insensitive; a response starting with the target passes."""
    got = response.rstrip(ECHO_TRAILING_PUNCTUATION).strip().lower()
    want = reference.strip().rstrip(ECHO_TRAILING_PUNCTUATION).strip().lower()
    if got == want:
        return {"passed": True, "reason": "exact"}
    if want and got.startswith(want):
        return {"passed": True, "reason": "prefix"}
    return {"passed": False, "reason": "mismatch"}


def _is_word_chunk(chunk: str) -> bool:
    core = chunk.strip(_EDGE_PUNCTUATION)
    if not core:
        return False
    if _NUMBER.fullmatch(core):
        digits = [c for c in core if c.isdigit()]
        return len(core) <= NUMBER_MAX_CHARS and not (len(set(digits)) == 1 and len(digits) > CHAR_RUN_MAX)
    if len(core) > WORD_MAX_CHARS or _CHAR_RUN.search(core):
        return False
    parts = re.split(r"['\u2019-]", core)  # don't, well-known, l'eau
    if not all(part.isalpha() for part in parts):
        return False
    # a capital after a small letter is two BPE pieces glued together ("ibK", "stllGZ"), not a word
    return not any(a.islower() and b.isupper() for a, b in zip(core, core[1:]))


def check_words(response: str, *, tag_strings: Sequence[str] = TAG_STRINGS) -> Dict[str, Any]:
    """Is the reply made of words? The criterion C gates on and the garbage red line counts.

    Known tag strings are removed (tags are the format check's business); the rest is split on plain whitespace.
    Chunks of ASCII punctuation only ("+", "=", "...") are neutral. A chunk is word-like when, without its edge
    punctuation, it is letters (with inner ' or -, at most ``WORD_MAX_CHARS``, no small-then-capital letter inside,
    no letter more than ``CHAR_RUN_MAX`` times in a row) or a number (at most ``NUMBER_MAX_CHARS``, not one digit
    repeated more than ``CHAR_RUN_MAX`` times). The reply is
    made of words when it has a word-like chunk, at least ``WORDS_MIN_SHARE`` of its counted chunks are word-like,
    and it is not a loop (``LOOP_MIN_CHUNKS`` or more chunks with under ``LOOP_MAX_DISTINCT_SHARE`` distinct).
    Returns {"passed", "reason", "word_share", "chunks"}.
    """
    text = response
    for tag in tag_strings:
        text = text.replace(tag, " ")
    chunks = [c for c in _CHUNK_SPLIT.split(text.strip()) if c and not _PUNCTUATION_ONLY.fullmatch(c)]
    if not chunks:
        return {"passed": False, "reason": "no words (empty or punctuation only)", "word_share": 0.0, "chunks": 0}
    words = sum(_is_word_chunk(chunk) for chunk in chunks)
    share = words / len(chunks)
    distinct = len({chunk.strip(_EDGE_PUNCTUATION).lower() for chunk in chunks})
    result = {"passed": False, "word_share": share, "chunks": len(chunks)}
    if share + 1e-12 < WORDS_MIN_SHARE:
        result["reason"] = f"not words ({words}/{len(chunks)} chunks word-like)"
    elif len(chunks) >= LOOP_MIN_CHUNKS and distinct / len(chunks) < LOOP_MAX_DISTINCT_SHARE:
        result["reason"] = f"a loop ({distinct} distinct of {len(chunks)} chunks)"
    else:
        result.update(passed=True, reason="words")
    return result


def check_anti_echo(response: str, forbidden_word: str) -> Dict[str, Any]:
    """C: fails only when the response repeats the quoted gibberish word (case-insensitive)."""
    if forbidden_word and forbidden_word.lower() in response.lower():
        return {"passed": False, "reason": f"repeats {forbidden_word!r}"}
    return {"passed": True, "reason": "ok"}


def check_regression(response: str, reference: str) -> Dict[str, Any]:
    """D: the expected answer occurs case-insensitively as a whole word ("no" does not match "Unknown")."""
    target = reference.strip()
    if target and re.search(r"(?<!\w)" + re.escape(target) + r"(?!\w)", response, flags=re.IGNORECASE):
        return {"passed": True, "reason": "contains"}
    return {"passed": False, "reason": "missing"}


def _strip_one_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def check_operator(response: str, reference: str) -> Dict[str, Any]:
    """E: case-sensitive exact match; one trailing period is allowed on either side."""
    if _strip_one_period(response) == _strip_one_period(reference.strip()):
        return {"passed": True, "reason": "exact"}
    return {"passed": False, "reason": "mismatch"}


def collapse_check(responses: Sequence[str]) -> Dict[str, Any]:
    """Mode collapse: every answer begins with the same 20 lowercase characters (needs >= 2 answers)."""
    prefixes = {response.lower()[:COLLAPSE_PREFIX_CHARS] for response in responses}
    collapsed = len(responses) >= 2 and len(prefixes) <= 1
    return {"collapsed": collapsed, "distinct_prefixes": len(prefixes), "n": len(responses)}


def _breakdown(items: List[Dict[str, Any]], key: str) -> Dict[str, Dict[str, Any]]:
    groups: Dict[str, List[bool]] = {}
    for item in items:
        if item.get(key) is not None:
            groups.setdefault(str(item[key]), []).append(item["passed"])
    return {name: {"passed": sum(flags), "total": len(flags), "rate": sum(flags) / len(flags)}
            for name, flags in sorted(groups.items())}


def _per_item(values: Optional[Sequence[Any]], n: int, name: str) -> List[Any]:
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries, predictions have {n}")
    return values


def score(predictions: Sequence[str], references: Sequence[str], buckets: Sequence[str], *,
          thresholds: Optional[Dict[str, float]] = None, gated: Optional[Sequence[str]] = None,
          check_types: Optional[Sequence[str]] = None, item_names: Optional[Sequence[str]] = None,
          prompts: Optional[Sequence[str]] = None, operators: Optional[Sequence[Optional[str]]] = None,
          word_counts: Optional[Sequence[Optional[int]]] = None, require_stop_tag: bool = True,
          runaway_chars: int = DEFAULT_RUNAWAY_CHARS, tag_strings: Sequence[str] = TAG_STRINGS,
          forbidden_tags: Sequence[str] = FORBIDDEN_IN_OUTPUT,
          stop_tags: Sequence[str] = STOP_TAG_STRINGS) -> Dict[str, Any]:
    """Score every item, group by bucket, and apply the gates. See the module docstring."""
    n = len(predictions)
    references, buckets = _per_item(references, n, "references"), _per_item(buckets, n, "buckets")
    check_types, item_names = _per_item(check_types, n, "check_types"), _per_item(item_names, n, "item_names")
    prompts, operators = _per_item(prompts, n, "prompts"), _per_item(operators, n, "operators")
    word_counts = _per_item(word_counts, n, "word_counts")
    merged_thresholds = dict(DEFAULT_THRESHOLDS)
    merged_thresholds.update({canonical_bucket(k): float(v) for k, v in (thresholds or {}).items()})
    gated_set = None if gated is None else {canonical_bucket(name) for name in gated}

    grouped: Dict[str, List[Dict[str, Any]]] = {}
    bucket_checks: Dict[str, str] = {}
    for index in range(n):
        bucket = canonical_bucket(buckets[index])
        check = check_types[index] or bucket
        if check not in CHECK_TYPES:
            raise ValueError(f"item {index}: unknown check type {check!r} (bucket {bucket!r}); "
                             f"expected one of {CHECK_TYPES}")
        prediction, reference = predictions[index] or "", references[index] or ""
        response = extract_response(prediction, stop_tags)
        if check == FORMAT_STRICT:
            result = check_format(prediction, tag_strings=tag_strings, forbidden_tags=forbidden_tags,
                                  stop_tags=stop_tags, require_stop_tag=require_stop_tag, runaway_chars=runaway_chars)
        elif check == ECHO_BASIC:
            result = check_echo(response, reference)
        elif check == ANTI_ECHO:
            # Not repeating the word only means something in a well-formed reply made of words: a random model's
            # noise never repeats it either (it scored 4/4 here before this gate).
            result = check_format(prediction, tag_strings=tag_strings, forbidden_tags=forbidden_tags,
                                  stop_tags=stop_tags, require_stop_tag=require_stop_tag, runaway_chars=runaway_chars)
            if not result["passed"]:
                result = {"passed": False, "reason": f"format: {result['reason']}"}
            else:
                words = check_words(response, tag_strings=tag_strings)
                result = (check_anti_echo(response, reference) if words["passed"]
                          else {"passed": False, "reason": words["reason"]})
        elif check == REGRESSION_BASIC:
            result = check_regression(response, reference)
        else:
            result = check_operator(response, reference)
        item = {"index": index, "name": item_names[index] or f"{bucket}_{index}", "passed": result["passed"],
                "reason": result["reason"], "prompt": prompts[index], "expected": reference,
                "generated": prediction, "response": response}
        if check == ANTI_ECHO:
            item["forbidden"] = item.pop("expected")
        if operators[index] is not None:
            item["operator"] = operators[index]
        if word_counts[index] is not None:
            item["word_count"] = int(word_counts[index])
        grouped.setdefault(bucket, []).append(item)
        bucket_checks.setdefault(bucket, check)

    results: Dict[str, Dict[str, Any]] = {}
    for bucket, items in grouped.items():
        passed = sum(item["passed"] for item in items)
        total = len(items)
        rate = passed / total
        threshold = merged_thresholds.get(bucket, 1.0)
        is_gated = gated_set is None or bucket in gated_set
        # A tiny epsilon keeps 4/5 >= 0.8 true despite float rounding.
        verdict = "PASS" if rate + 1e-12 >= threshold else "FAIL"
        entry: Dict[str, Any] = {"check": bucket_checks[bucket], "passed": passed, "failed": total - passed,
                                 "total": total, "rate": rate, "threshold": threshold, "gated": is_gated}
        if bucket_checks[bucket] == REGRESSION_BASIC:
            entry["collapse_check"] = collapse_check([item["response"] for item in items])
            if entry["collapse_check"]["collapsed"]:
                verdict = "FAIL"
        if bucket_checks[bucket] == OPERATORS:
            entry["by_operator"] = _breakdown(items, "operator")
            entry["by_word_count"] = _breakdown(items, "word_count")
        entry["verdict"] = verdict
        entry["items"] = items
        results[bucket] = entry

    total_passed = sum(entry["passed"] for entry in results.values())
    return {
        "passed": all(entry["verdict"] == "PASS" for entry in results.values() if entry["gated"]),
        "total_passed": total_passed,
        "total": n,
        "overall_pass_rate": total_passed / n if n else 0.0,
        "buckets": results,
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SftEvalSuite(evaluate.Metric):
    """The Phase 3a gate (buckets A-E) as an ``evaluate`` metric."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Value("string"),
                "references": datasets.Value("string"),
                "buckets": datasets.Value("string"),
            }),
        )

    def _compute(self, predictions, references, buckets, **kwargs) -> Dict[str, Any]:
        return score(predictions, references, buckets, **kwargs)
