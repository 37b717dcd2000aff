"""The Phase 3a guide's red lines: the failures after a phase that mean *restart*, not *train more*.

The guide ("Troubleshooting & Red Lines") lists six; everything else (generalisation gaps, occasional wrong answers,
loss decreasing slowly, a weak anti-echo bucket) is trainable and is *not* a red line. Each is detected from what a
phase run already has: the eval-suite report (``run_eval_suite`` or ``copy_probe``), the trainer's
``state.log_history``, the tokenizer, the trained model and the model the phase started from.

======================  ===========================================================================================
name                    red when (thresholds are the module constants below)
======================  ===========================================================================================
garbage_output          more than ``GARBAGE_MAX_SHARE`` of the simple-task replies (buckets A-D) are not made of
                        words (``sft_eval_suite.check_words``: the criterion bucket C also gates on)
loss_stuck_high         the last ``LOSS_WINDOW`` training losses end at or above the stuck level (``LOSS_STUCK_AT``,
                        lowered to ``ln(vocab) - LOSS_CHANCE_MARGIN`` for a small vocabulary) and the later half of
                        the window is not ``LOSS_MIN_RELATIVE_DROP`` below the earlier half
broken_special_tokens   more than ``BROKEN_TAGS_MAX_FAIL_SHARE`` of the format bucket's (A) replies fail the format
                        check (missing stop tag, unknown / forbidden / unclosed tag), or a tag is not one token of
                        the tokenizer or has no embedding row in the model
mode_collapse           one normalized reply is ``COLLAPSE_MIN_SHARE`` or more of all the report's replies (at
                        least ``COLLAPSE_MIN_REPLIES`` of them)
embedding_corruption    the model's perplexity on ``PLAIN_TEXT_PROBE`` is over ``EMBEDDING_MAX_PPL_RATIO`` times
                        the base model's; without a tokenizer, the input embeddings moved more than
                        ``EMBEDDING_MAX_DRIFT`` (relative Frobenius distance) from the base's; skipped, and said so,
                        without a base model
every_bucket_failing    every bucket of the report (at least two) has verdict FAIL
======================  ===========================================================================================

API (for the gate report, the model card and the chain summary)::

    from mypt_hf.evaluation.red_lines import detect_red_lines, check_red_lines, format_red_lines, red_lines_summary

    checks = check_red_lines(report, log_history=trainer.state.log_history, tokenizer=tokenizer,
                             model=model, base_model=init_model)      # all six, each "RED" / "clear" / "skipped"
    red = detect_red_lines(report, log_history=..., ...)              # only the RED ones, as RedLine
    print(format_red_lines(red))          # "RED LINE: <name> — <evidence>. <advice> (restart from the previous phase)"
    report["red_lines"] = red_lines_summary(checks)                   # JSON: {"red": [...names], "checks": [...]}

Every argument is optional; a check whose input is missing is "skipped" with the reason as its evidence. Nothing
here changes a bucket's verdict: a red line says *why* a failed gate needs a restart.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .sft_eval_suite import sft_eval_suite as metric_module

GARBAGE_OUTPUT = "garbage_output"
LOSS_STUCK_HIGH = "loss_stuck_high"
BROKEN_SPECIAL_TOKENS = "broken_special_tokens"
MODE_COLLAPSE = "mode_collapse"
EMBEDDING_CORRUPTION = "embedding_corruption"
EVERY_BUCKET_FAILING = "every_bucket_failing"
#: The guide's order.
RED_LINE_NAMES = (GARBAGE_OUTPUT, LOSS_STUCK_HIGH, BROKEN_SPECIAL_TOKENS, MODE_COLLAPSE, EMBEDDING_CORRUPTION,
                  EVERY_BUCKET_FAILING)

#: What to do, one line each, from the guide's troubleshooting section ("Common Issues", "High Initial Loss").
ADVICE = {
    GARBAGE_OUTPUT: "Check the data and the coverage (over 3x gave '111111...' garbage in the guide's runs) and "
                    "retrain at 2-3.5x",
    LOSS_STUCK_HIGH: "Check that the dataset matches the episode schema, the tags are in the vocabulary and loss "
                     "masking is on",
    BROKEN_SPECIAL_TOKENS: "Check the tags in the tokenizer, the embedding and the chat template, and retrain the "
                           "format lock (3a-1 alpha) first",
    MODE_COLLAPSE: "Add data diversity (anti-echo and contrast pairs) and stop earlier (2-3x coverage)",
    EMBEDDING_CORRUPTION: "Lower the learning rate or freeze the embeddings, and check the init model is the "
                          "previous phase's",
    EVERY_BUCKET_FAILING: "Check the init model, the tokenizer and the data: the phase taught nothing",
}

#: Buckets whose prompts are the guide's "simple tasks" (say X, echo, a made-up word, 2 + 2): a reply there that is
#: not words is garbage. E is left out: its payloads are not always words a reply can be judged by.
SIMPLE_TASK_BUCKETS = (metric_module.FORMAT_STRICT, metric_module.ECHO_BASIC, metric_module.ANTI_ECHO,
                       metric_module.REGRESSION_BASIC)
#: Garbage is the *majority* of the simple replies: a few broken replies are a weak model, not a broken one.
GARBAGE_MAX_SHARE = 0.5

#: The guide's "loss stuck at ~10+". On GPT-2's vocabulary uniform guessing is ln(50304) = 10.8, so ~10 is a model
#: that learned nothing.
LOSS_STUCK_AT = 10.0
#: For a small vocabulary (the tiny embedded tokenizer: ln(576) = 6.4) "~10" is unreachable; there the stuck level is
#: half a nat below uniform guessing, the same "learned nothing" point.
LOSS_CHANCE_MARGIN = 0.5
#: Training-loss logs looked at, and the fewest that can show a trend.
LOSS_WINDOW = 5
LOSS_MIN_LOGS = 3
#: "Decreasing" is the later half of the window at least 1% below the earlier half: the guide says a loss that
#: decreases slowly is *not* a restart, so any real drop clears it; loss noise is well under 1% at ~10.
LOSS_MIN_RELATIVE_DROP = 0.01

#: A needs 100%: one miss is a weak bucket. Broken tags are *most* format replies failing.
BROKEN_TAGS_MAX_FAIL_SHARE = 0.5

#: "Same output regardless of input": one reply for well over half the prompts. Over half alone would flag a healthy
#: model asked only a few similar prompts ("Say OK.", "Status?", "Ready?" all answered "OK").
COLLAPSE_MIN_SHARE = 0.6
COLLAPSE_MIN_REPLIES = 10

#: SFT on short chat replies raises plain-text perplexity somewhat; lost language ability raises it by orders of
#: magnitude (scrambled embeddings: near the vocabulary size). A ratio of 4 (+1.4 nats a token) is between the two.
EMBEDDING_MAX_PPL_RATIO = 4.0
#: Without a tokenizer: SFT at the guide's learning rates moves the embedding matrix by a few percent; a scrambled
#: or re-initialised one is ~100-140% away.
EMBEDDING_MAX_DRIFT = 0.5
#: Plain English the model must still be able to read after SFT (the base saw text like it in pre-training).
PLAIN_TEXT_PROBE = (
    "The sun rises in the east and sets in the west.",
    "Water boils at one hundred degrees at sea level.",
    "She opened the window because the room was too warm.",
    "Most people sleep for about eight hours every night.",
    "The train to the city leaves the station at nine in the morning.",
)

RED, CLEAR, SKIPPED = "RED", "clear", "skipped"


@dataclass(frozen=True)
class RedLine:
    """A red line crossed: ``name`` (one of ``RED_LINE_NAMES``), one line of ``evidence``, one line of ``advice``."""

    name: str
    evidence: str
    advice: str


@dataclass(frozen=True)
class RedLineCheck:
    """One red line's outcome: ``verdict`` RED, clear or skipped (an input was missing); ``evidence`` says why."""

    name: str
    verdict: str
    evidence: str

    @property
    def red(self) -> bool:
        return self.verdict == RED

    def red_line(self) -> RedLine:
        """This check as a ``RedLine`` (with the guide's advice)."""
        return RedLine(self.name, self.evidence, ADVICE[self.name])


def _buckets(report: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    return (report or {}).get("buckets") or {}


def _reply(item: Mapping[str, Any]) -> str:
    """The answer text of a report item: the suite's ``response``, else the stop-cut ``generated`` text."""
    if item.get("response") is not None:
        return item["response"]
    return metric_module.extract_response(item.get("generated") or "")


def _quote(text: str, limit: int = 40) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def check_garbage(report: Optional[Mapping[str, Any]]) -> RedLineCheck:
    """Red line 1: most simple-task replies (A-D) are not made of words (``sft_eval_suite.check_words``)."""
    replies = [_reply(item) for name in SIMPLE_TASK_BUCKETS for item in _buckets(report).get(name, {}).get("items", [])]
    if not replies:
        return RedLineCheck(GARBAGE_OUTPUT, SKIPPED, "the report has no simple-task replies (buckets A-D)")
    results = [(reply, metric_module.check_words(reply)) for reply in replies]
    bad = [(reply, result) for reply, result in results if not result["passed"]]
    share = len(bad) / len(replies)
    evidence = f"{len(bad)}/{len(replies)} simple-task replies are not made of words"
    if bad:
        evidence += f" (e.g. {_quote(bad[0][0])}: {bad[0][1]['reason']})"
    return RedLineCheck(GARBAGE_OUTPUT, RED if share > GARBAGE_MAX_SHARE else CLEAR, evidence)


def stuck_loss_level(vocab_size: Optional[int] = None) -> float:
    """The loss at or above which training learned nothing: ``LOSS_STUCK_AT``, or for a vocabulary so small that
    uniform guessing is below it, ``ln(vocab_size) - LOSS_CHANCE_MARGIN``."""
    if not vocab_size or vocab_size < 2:
        return LOSS_STUCK_AT
    return min(LOSS_STUCK_AT, math.log(vocab_size) - LOSS_CHANCE_MARGIN)


def check_loss_stuck(log_history: Optional[Sequence[Mapping[str, Any]]], *,
                     stuck_at: float = LOSS_STUCK_AT) -> RedLineCheck:
    """Red line 2: the training loss (HF Trainer ``log_history`` entries with "loss") ends at or above ``stuck_at``
    and is not decreasing over the last ``LOSS_WINDOW`` logs. A non-finite loss counts as infinitely high."""
    if log_history is None:
        return RedLineCheck(LOSS_STUCK_HIGH, SKIPPED, "no training log history given")
    logs = [entry for entry in log_history if isinstance(entry.get("loss"), (int, float))]
    if any("step" in entry for entry in logs):
        logs = sorted(logs, key=lambda entry: entry.get("step", 0))
    if len(logs) < LOSS_MIN_LOGS:
        return RedLineCheck(LOSS_STUCK_HIGH, SKIPPED,
                            f"{len(logs)} training-loss logs; a trend needs {LOSS_MIN_LOGS}")
    window = logs[-LOSS_WINDOW:]
    losses = [float(e["loss"]) if math.isfinite(float(e["loss"])) else math.inf for e in window]
    half = len(losses) // 2
    earlier, later = sum(losses[:half]) / half, sum(losses[-half:]) / half
    decreasing = later < earlier * (1.0 - LOSS_MIN_RELATIVE_DROP)
    last, step = losses[-1], window[-1].get("step", len(logs))
    trend = "decreasing" if decreasing else "not decreasing"
    evidence = (f"training loss {last:.2f} at step {step}, {trend} over the last {len(losses)} logs "
                f"({losses[0]:.2f} -> {last:.2f}; stuck level {stuck_at:.2f})")
    return RedLineCheck(LOSS_STUCK_HIGH, RED if last >= stuck_at and not decreasing else CLEAR, evidence)


def _tag_problems(tokenizer: Any, model: Any) -> List[str]:
    problems = []
    rows = model.get_input_embeddings().weight.shape[0] if model is not None else None
    for tag in metric_module.TAG_STRINGS:
        if tokenizer is not None:
            ids = tokenizer.encode(tag, add_special_tokens=False)
            if len(ids) != 1:
                problems.append(f"{tag} is {len(ids)} tokens")
                continue
            if rows is not None and ids[0] >= rows:
                problems.append(f"{tag} (id {ids[0]}) has no embedding row ({rows} rows)")
    return problems


def check_broken_tags(report: Optional[Mapping[str, Any]], *, tokenizer: Any = None,
                      model: Any = None) -> RedLineCheck:
    """Red line 3: more than ``BROKEN_TAGS_MAX_FAIL_SHARE`` of the format bucket's replies fail the format check, or
    (with a tokenizer) a tag string is not one token, or (with a model too) its id has no embedding row."""
    problems = _tag_problems(tokenizer, model)
    bucket = _buckets(report).get(metric_module.FORMAT_STRICT)
    if problems:
        return RedLineCheck(BROKEN_SPECIAL_TOKENS, RED, f"{len(problems)} tags broken: " + "; ".join(problems[:3]))
    if not bucket or not bucket.get("total"):
        return RedLineCheck(BROKEN_SPECIAL_TOKENS, SKIPPED, "the report has no format bucket (A)"
                            + (" (the tokenizer's tags are whole)" if tokenizer is not None else ""))
    failed = [item for item in bucket["items"] if not item["passed"]]
    kinds = Counter("no stop tag" if item["reason"].startswith("runaway") else " ".join(item["reason"].split()[:2])
                    for item in failed)
    share = len(failed) / bucket["total"]
    evidence = f"format_strict {bucket['total'] - len(failed)}/{bucket['total']} pass"
    if failed:
        evidence += " (" + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()) + ")"
    if share <= BROKEN_TAGS_MAX_FAIL_SHARE and failed:
        evidence += ": weak, not broken"
    return RedLineCheck(BROKEN_SPECIAL_TOKENS, RED if share > BROKEN_TAGS_MAX_FAIL_SHARE else CLEAR, evidence)


def normalize_reply(text: str) -> str:
    """A reply as mode collapse compares it: tags removed, lowercase, whitespace collapsed, edge punctuation off."""
    for tag in metric_module.TAG_STRINGS:
        text = text.replace(tag, " ")
    return " ".join(text.lower().split()).strip(".,;:!?\"' ")


def check_mode_collapse(report: Optional[Mapping[str, Any]]) -> RedLineCheck:
    """Red line 4: one normalized reply is ``COLLAPSE_MIN_SHARE`` or more of all the report's replies."""
    replies = [normalize_reply(_reply(item)) for bucket in _buckets(report).values()
               for item in bucket.get("items", [])]
    if len(replies) < COLLAPSE_MIN_REPLIES:
        return RedLineCheck(MODE_COLLAPSE, SKIPPED,
                            f"{len(replies)} replies in the report; collapse needs {COLLAPSE_MIN_REPLIES}")
    reply, count = Counter(replies).most_common(1)[0]
    evidence = (f"{count}/{len(replies)} replies are {_quote(reply)}" if count > 1
                else f"all {len(replies)} replies differ")
    return RedLineCheck(MODE_COLLAPSE, RED if count / len(replies) >= COLLAPSE_MIN_SHARE else CLEAR, evidence)


def probe_perplexity(model: Any, tokenizer: Any, sentences: Sequence[str] = PLAIN_TEXT_PROBE) -> float:
    """Perplexity of ``model`` on ``sentences`` (each scored on its own, tokenized without special tokens)."""
    import torch

    device = next(model.parameters()).device
    limit = getattr(model.config, "max_position_embeddings", None)
    total_nll, total_tokens = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for sentence in sentences:
                ids = tokenizer.encode(sentence, add_special_tokens=False)[:limit]
                if len(ids) < 2:
                    continue
                input_ids = torch.tensor([ids], device=device)
                loss = model(input_ids=input_ids, labels=input_ids).loss
                total_nll += float(loss) * (len(ids) - 1)
                total_tokens += len(ids) - 1
    finally:
        model.train(was_training)
    if not total_tokens:
        raise ValueError("the probe sentences give no token to score")
    return math.exp(total_nll / total_tokens)


def embedding_drift(model: Any, base_model: Any) -> Optional[float]:
    """Relative Frobenius distance of the input embeddings from the base's; None when the shapes differ."""
    import torch

    weight = model.get_input_embeddings().weight.detach().float().cpu()
    base = base_model.get_input_embeddings().weight.detach().float().cpu()
    if weight.shape != base.shape:
        return None
    return float(torch.linalg.norm(weight - base) / torch.linalg.norm(base).clamp_min(1e-12))


def check_embedding_corruption(model: Any = None, base_model: Any = None, tokenizer: Any = None) -> RedLineCheck:
    """Red line 5: perplexity on ``PLAIN_TEXT_PROBE`` over ``EMBEDDING_MAX_PPL_RATIO`` times the base's (with a
    tokenizer), else input-embedding drift over ``EMBEDDING_MAX_DRIFT``; skipped without a model or a base."""
    if model is None or base_model is None:
        missing = "model" if model is None else "base model (the phase's init model)"
        return RedLineCheck(EMBEDDING_CORRUPTION, SKIPPED, f"no verdict: no {missing} to compare")
    if tokenizer is not None:
        ppl, base_ppl = probe_perplexity(model, tokenizer), probe_perplexity(base_model, tokenizer)
        ratio = ppl / base_ppl
        evidence = (f"plain-text perplexity {ppl:.1f} vs the base's {base_ppl:.1f} "
                    f"({ratio:.2f}x; limit {EMBEDDING_MAX_PPL_RATIO:g}x)")
        return RedLineCheck(EMBEDDING_CORRUPTION, RED if ratio > EMBEDDING_MAX_PPL_RATIO else CLEAR, evidence)
    drift = embedding_drift(model, base_model)
    if drift is None:
        return RedLineCheck(EMBEDDING_CORRUPTION, SKIPPED,
                            "no verdict: no tokenizer for the perplexity probe and the embedding shapes differ")
    evidence = f"input embeddings moved {drift:.0%} from the base's (limit {EMBEDDING_MAX_DRIFT:.0%}; no tokenizer)"
    return RedLineCheck(EMBEDDING_CORRUPTION, RED if drift > EMBEDDING_MAX_DRIFT else CLEAR, evidence)


def check_every_bucket_failing(report: Optional[Mapping[str, Any]]) -> RedLineCheck:
    """Red line 6: every bucket of the report (gated or not, at least two) is below its threshold (verdict FAIL)."""
    buckets = _buckets(report)
    if len(buckets) < 2:
        return RedLineCheck(EVERY_BUCKET_FAILING, SKIPPED,
                            f"{len(buckets)} bucket(s) in the report; 'every bucket' needs the suite's")
    failing = [name for name, bucket in buckets.items() if bucket.get("verdict") != "PASS"]
    rows = ", ".join(f"{name} {b['passed']}/{b['total']} (<{b['threshold']:.0%})" if name in failing
                     else f"{name} passes" for name, b in buckets.items())
    return RedLineCheck(EVERY_BUCKET_FAILING, RED if len(failing) == len(buckets) else CLEAR,
                        f"{len(failing)}/{len(buckets)} buckets fail: {rows}")


def _vocab_size(model: Any, tokenizer: Any) -> Optional[int]:
    if model is not None and getattr(getattr(model, "config", None), "vocab_size", None):
        return int(model.config.vocab_size)
    return len(tokenizer) if tokenizer is not None else None


def check_red_lines(report: Optional[Mapping[str, Any]] = None, *,
                    log_history: Optional[Sequence[Mapping[str, Any]]] = None, tokenizer: Any = None,
                    model: Any = None, base_model: Any = None,
                    loss_stuck_at: Optional[float] = None) -> List[RedLineCheck]:
    """All six red lines, in the guide's order, each RED, clear or skipped (with the reason) from what is given.

    ``report``: an eval-suite (or copy-probe) report; ``log_history``: ``trainer.state.log_history``;
    ``tokenizer``/``model``: the trained phase's; ``base_model``: the model the phase started from (for the
    embedding check). ``loss_stuck_at`` defaults to ``stuck_loss_level`` of the model's (or tokenizer's) vocabulary.
    """
    stuck_at = loss_stuck_at if loss_stuck_at is not None else stuck_loss_level(_vocab_size(model, tokenizer))
    return [
        check_garbage(report),
        check_loss_stuck(log_history, stuck_at=stuck_at),
        check_broken_tags(report, tokenizer=tokenizer, model=model),
        check_mode_collapse(report),
        check_embedding_corruption(model, base_model, tokenizer),
        check_every_bucket_failing(report),
    ]


def detect_red_lines(report: Optional[Mapping[str, Any]] = None, *,
                     log_history: Optional[Sequence[Mapping[str, Any]]] = None, tokenizer: Any = None,
                     model: Any = None, base_model: Any = None,
                     loss_stuck_at: Optional[float] = None) -> List[RedLine]:
    """The red lines crossed (empty: none), from the same inputs as ``check_red_lines``."""
    checks = check_red_lines(report, log_history=log_history, tokenizer=tokenizer, model=model,
                             base_model=base_model, loss_stuck_at=loss_stuck_at)
    return [check.red_line() for check in checks if check.red]


def format_red_lines(red_lines: Sequence[RedLine]) -> str:
    """One line per red line: "RED LINE: <name> — <evidence>. <advice> (restart from the previous phase)"; "" for
    none."""
    return "\n".join(f"RED LINE: {line.name} — {line.evidence}. {line.advice} (restart from the previous phase)"
                     for line in red_lines)


def red_lines_summary(checks: Sequence[RedLineCheck]) -> Dict[str, Any]:
    """JSON for a gate report: {"red": [names of the RED checks], "checks": [{name, verdict, evidence}, ...]}."""
    return {"red": [check.name for check in checks if check.red], "checks": [asdict(check) for check in checks]}


def gate_verdict(report: Mapping[str, Any]) -> str:
    """A gate report's overall verdict: RED LINE when a red line was crossed (restart from the previous phase),
    else PASS or FAIL."""
    if (report.get("red_lines") or {}).get("red"):
        return "RED LINE"
    return "PASS" if report.get("passed") else "FAIL"


__all__ = ["RedLine", "RedLineCheck", "RED_LINE_NAMES", "ADVICE", "GARBAGE_OUTPUT", "LOSS_STUCK_HIGH",
           "BROKEN_SPECIAL_TOKENS", "MODE_COLLAPSE", "EMBEDDING_CORRUPTION", "EVERY_BUCKET_FAILING",
           "PLAIN_TEXT_PROBE", "check_red_lines", "detect_red_lines", "format_red_lines", "red_lines_summary",
           "gate_verdict",
           "check_garbage", "check_loss_stuck", "check_broken_tags", "check_mode_collapse",
           "check_embedding_corruption", "check_every_bucket_failing", "probe_perplexity", "embedding_drift",
           "stuck_loss_level", "normalize_reply"]
