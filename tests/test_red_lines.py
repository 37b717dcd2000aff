"""The guide's six red lines (mypt_hf.evaluation.red_lines), each on a model, report or log built to show it, and
the negatives: a healthy report and log, and a weak-but-trainable one, give none. Bucket C's new gate too."""

from __future__ import annotations

import copy

import pytest
import torch

from mypt_hf import tokens
from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.evaluation import red_lines as rl
from mypt_hf.evaluation.sft_eval_suite import sft_eval_suite as metric
from mypt_hf.evaluation.suite import build_items, run_eval_suite, score_items
from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size

CLOSE = tokens.ASSISTANT_CLOSE


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def tiny_model(tokenizer, seed=0, initializer_range=0.3):
    torch.manual_seed(seed)
    # untied and wide-initialised, as in test_generation: a random model whose replies vary from prompt to prompt
    config = MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=256, tie_word_embeddings=False,
                        initializer_range=initializer_range)
    model = MyPTForCausalLM(config).eval()
    set_mypt_generation_config(model, tokenizer)
    return model


@pytest.fixture(scope="module")
def random_report(tokenizer):
    model = tiny_model(tokenizer)
    return run_eval_suite(model, tokenizer, max_new_tokens=16, batch_size=64, progress=False)


@pytest.fixture(scope="module")
def reading_base(tokenizer):
    """A tiny model that has learned to read the plain-text probe (a stand-in for a pre-trained base)."""
    model = tiny_model(tokenizer, seed=1, initializer_range=0.02)
    ids = [tokenizer.encode(s, add_special_tokens=False) for s in rl.PLAIN_TEXT_PROBE]
    width = max(map(len, ids))
    batch = torch.tensor([row + [0] * (width - len(row)) for row in ids])
    labels = torch.tensor([row + [-100] * (width - len(row)) for row in ids])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        loss = model(input_ids=batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def healthy_answers(items):
    """The answers a well-trained model gives: every gate passes."""
    answers = []
    for item in items:
        if item.bucket == "format_strict":
            answers.append(f"{item.user.split()[-1].rstrip('.?')}.{CLOSE}")
        elif item.bucket == "anti_echo":
            answers.append(f"I don't know that word.{CLOSE}")
        else:
            answers.append(f"{item.reference}.{CLOSE}")
    return answers


def healthy_log(steps=20, start=10.8, end=1.2):
    return ([{"loss": start + (end - start) * i / (steps - 1), "grad_norm": 1.0, "learning_rate": 1e-4,
              "step": 10 * (i + 1)} for i in range(steps)]
            + [{"eval_loss": 1.5, "step": 10 * steps}, {"train_loss": 3.0, "step": 10 * steps}])


def names(checks):
    return {check.name: check.verdict for check in checks}


# ---- the "made of words" criterion and bucket C ---------------------------------------------------------------------

@pytest.mark.parametrize("reply", ["I don't know.", "Berlin", "5 + 7 = 12", "Ich weiß es nicht.", "[phoenix]",
                                   "Yes, it is.", "10000", "Donaudampfschifffahrt", "I'm well-known.", "42%",
                                   f"OK{CLOSE}"])
def test_words_accepts_real_answers(reply):
    assert metric.check_words(reply)["passed"], metric.check_words(reply)


@pytest.mark.parametrize("reply, reason", [
    ("", "no words"), ("...", "no words"),
    ("\ufffding\ufffdeturn|se D 15 stllG\ufffdZ k$am\ufffd", "not words"),  # a random model's BPE noise
    ("111111111111", "not words"), ("1111", "not words"), ("aaaargh", "not words"),
    ("ibKput Dcho", "not words"),  # glued pieces: a capital after a small letter
    ("genau 11 genau 11 genau 11 genau 11:", "a loop"), ("Hello " * 8, "a loop"),
])
def test_words_rejects_garbage(reply, reason):
    result = metric.check_words(reply)
    assert not result["passed"] and result["reason"].startswith(reason), result


def test_anti_echo_scores_only_well_formed_word_replies():
    replies = [f"I don't know.{CLOSE}", "I don't know.",  # the second never ends: format fails
               f"\ufffdput\x12 st<myPT_cite>ll \ufffdk${CLOSE}", f"{CLOSE}", f"Blurpix is a fruit.{CLOSE}"]
    out = metric.score(replies, ["Blurpix"] * 5, ["anti_echo"] * 5)
    reasons = [item["reason"] for item in out["buckets"]["anti_echo"]["items"]]
    assert [item["passed"] for item in out["buckets"]["anti_echo"]["items"]] == [True, False, False, False, False]
    assert reasons[1].startswith("format: runaway") and reasons[2].startswith("not words")
    assert reasons[3].startswith("no words") and reasons[4] == "repeats 'Blurpix'"


def test_random_model_no_longer_passes_anti_echo(random_report):
    # before the gate its noise, which never repeats the word, scored 4/4
    bucket = random_report["buckets"]["anti_echo"]
    assert bucket["passed"] == 0 and bucket["verdict"] == "FAIL"


# ---- each red line --------------------------------------------------------------------------------------------------

def test_random_model_is_garbage_broken_tags_and_failing_everywhere(random_report, tokenizer):
    checks = names(rl.check_red_lines(random_report, tokenizer=tokenizer))
    assert checks[rl.GARBAGE_OUTPUT] == "RED"
    assert checks[rl.BROKEN_SPECIAL_TOKENS] == "RED"
    assert checks[rl.EVERY_BUCKET_FAILING] == "RED"
    assert checks[rl.MODE_COLLAPSE] == "clear"  # noise, but varied noise
    assert checks[rl.LOSS_STUCK_HIGH] == "skipped" and checks[rl.EMBEDDING_CORRUPTION] == "skipped"


def test_same_reply_everywhere_is_mode_collapse():
    items = build_items()
    report = score_items(items, [f"Yes.{CLOSE}"] * len(items))
    [line] = [line for line in rl.detect_red_lines(report) if line.name == rl.MODE_COLLAPSE]
    assert line.evidence == f"{len(items)}/{len(items)} replies are 'yes'"
    # answers made of words: not garbage, and A passes: tags fine
    checks = names(rl.check_red_lines(report))
    assert checks[rl.GARBAGE_OUTPUT] == "clear" and checks[rl.BROKEN_SPECIAL_TOKENS] == "clear"


def test_loss_stuck_at_10_5():
    stuck = [{"loss": 10.5 + 0.02 * (i % 2), "step": 10 * i} for i in range(1, 11)]
    [line] = rl.detect_red_lines(log_history=stuck)
    assert line.name == rl.LOSS_STUCK_HIGH and line.evidence.startswith("training loss 10.50 at step 100, not decreasing")
    # high but falling, even slowly, is trainable ("loss decreasing but slowly" is not a restart)
    falling = [{"loss": 10.8 - 0.05 * i, "step": 10 * i} for i in range(1, 11)]
    assert rl.check_loss_stuck(falling).verdict == "clear"
    # stuck but low: converged, not stuck high
    assert rl.check_loss_stuck([{"loss": 2.0, "step": i} for i in range(10)]).verdict == "clear"
    # a NaN loss is as bad as a stuck one; too few logs give no verdict
    assert rl.check_loss_stuck([{"loss": 10.6, "step": 1}, {"loss": 10.6, "step": 2},
                                {"loss": float("nan"), "step": 3}]).verdict == "RED"
    assert rl.check_loss_stuck(stuck[:2]).verdict == "skipped"


def test_stuck_level_follows_a_small_vocabulary(tokenizer):
    assert rl.stuck_loss_level(50304) == rl.LOSS_STUCK_AT  # GPT-2: the guide's ~10
    tiny = rl.stuck_loss_level(model_vocab_size(tokenizer))
    assert 5.5 < tiny < 6.0  # ln(576) - 0.5
    at_chance = [{"loss": 6.3, "step": i} for i in range(1, 6)]
    assert names(rl.check_red_lines(log_history=at_chance, tokenizer=tokenizer))[rl.LOSS_STUCK_HIGH] == "RED"
    assert rl.check_loss_stuck(at_chance).verdict == "clear"  # against the guide's 10, 6.3 is not stuck


def test_broken_tags_differs_from_a_weak_format_bucket(tokenizer):
    items = build_items(["A"])
    broken = score_items(items, ["OK", "Hello", f"OK{tokens.USER_OPEN}", "<myPT_answer>Ready", f"Hallo.{CLOSE}"])
    check = rl.check_broken_tags(broken)
    assert check.verdict == "RED" and check.evidence.startswith("format_strict 1/5 pass (")
    assert "no stop tag" in check.evidence
    weak = score_items(items, [f"OK.{CLOSE}", f"Hello.{CLOSE}", f"OK.{CLOSE}", f"Ready.{CLOSE}", "Hallo."])
    assert weak["buckets"]["format_strict"]["verdict"] == "FAIL"  # A needs 100%...
    check = rl.check_broken_tags(weak)
    assert check.verdict == "clear" and check.evidence.endswith("weak, not broken")  # ...but 4/5 is trainable


class _SplitsTheCloseTag:
    """A tokenizer whose closing assistant tag is two pieces (a tag that lost its added-token entry)."""

    def encode(self, text, add_special_tokens=False):
        return [1, 2] if text == CLOSE else [3]


def test_a_tag_split_into_pieces_is_broken(tokenizer):
    assert rl.check_broken_tags(None, tokenizer=tokenizer).verdict == "skipped"  # whole tags, no report
    check = rl.check_broken_tags(None, tokenizer=_SplitsTheCloseTag())
    assert check.verdict == "RED" and f"{CLOSE} is 2 tokens" in check.evidence


def test_scrambled_embeddings_are_corruption(reading_base, tokenizer):
    scrambled = copy.deepcopy(reading_base)
    with torch.no_grad():
        weight = scrambled.get_input_embeddings().weight
        weight.copy_(weight[torch.randperm(weight.shape[0], generator=torch.Generator().manual_seed(0))])
    [line] = rl.detect_red_lines(tokenizer=tokenizer, model=scrambled, base_model=reading_base)
    assert line.name == rl.EMBEDDING_CORRUPTION and "plain-text perplexity" in line.evidence
    # without a tokenizer: the embedding drift instead
    check = rl.check_embedding_corruption(scrambled, reading_base)
    assert check.verdict == "RED" and "no tokenizer" in check.evidence
    # the base against itself, and a lightly fine-tuned copy, are fine
    assert rl.check_embedding_corruption(reading_base, reading_base, tokenizer).verdict == "clear"
    nudged = copy.deepcopy(reading_base)
    with torch.no_grad():
        for param in nudged.parameters():
            param.mul_(1.02)
    assert rl.check_embedding_corruption(nudged, reading_base, tokenizer).verdict == "clear"
    assert rl.check_embedding_corruption(nudged, reading_base).verdict == "clear"


def test_no_base_means_no_verdict_and_says_so(reading_base, tokenizer):
    check = rl.check_embedding_corruption(reading_base, None, tokenizer)
    assert check.verdict == "skipped" and check.evidence.startswith("no verdict: no base model")


def test_every_bucket_failing():
    items = build_items()
    # replies made of words, varied, well-formed and wrong: C repeats the word, A misses two stop tags
    answers = [(f"{item.reference} is a word, {index}." if item.bucket == "anti_echo" else f"Maybe guess {index}.")
               + CLOSE for index, item in enumerate(items)]
    answers[:2] = ["Hmm", "Well"]
    report = score_items(items, answers)
    red = {line.name: line for line in rl.detect_red_lines(report)}
    assert set(red) == {rl.EVERY_BUCKET_FAILING}  # 3/5 in A: a failed bucket, not broken tags
    assert red[rl.EVERY_BUCKET_FAILING].evidence.startswith("5/5 buckets fail: format_strict 3/5 (<100%)")
    # one bucket passing clears it; a single-bucket report (the copy probe) gives no verdict
    answers[:2] = [f"OK.{CLOSE}"] * 2
    assert rl.check_every_bucket_failing(score_items(items, answers)).verdict == "clear"
    copy_report = {"buckets": {"copy": {"passed": 0, "total": 3, "threshold": 0.8, "verdict": "FAIL", "items": []}}}
    assert rl.check_every_bucket_failing(copy_report).verdict == "skipped"


# ---- the negatives and the printout ---------------------------------------------------------------------------------

def test_healthy_run_has_no_red_line(reading_base, tokenizer):
    items = build_items()
    report = score_items(items, healthy_answers(items))
    assert report["passed"]
    checks = rl.check_red_lines(report, log_history=healthy_log(), tokenizer=tokenizer, model=reading_base,
                                base_model=reading_base)
    assert [check.verdict for check in checks] == ["clear"] * 6, checks
    assert rl.detect_red_lines(report, log_history=healthy_log()) == []
    assert rl.format_red_lines([]) == ""


def test_weak_but_trainable_run_has_no_red_line():
    items = build_items()
    answers = healthy_answers(items)
    # A 4/5 (one runaway), C 1/4 (echoes the word), D 3/7, E half wrong: a failed gate, every failure trainable
    answers[0] = "OK."
    anti = [i for i, item in enumerate(items) if item.bucket == "anti_echo"]
    for i in anti[1:]:
        answers[i] = f"{items[i].reference} is a word.{CLOSE}"
    regression = [i for i, item in enumerate(items) if item.bucket == "regression_basic"]
    for i in regression[3:]:
        answers[i] = f"I am not sure.{CLOSE}"
    for i, item in enumerate(items):
        if item.bucket == "operators" and i % 2:
            answers[i] = f"{item.payload}{CLOSE}"
    report = score_items(items, answers)
    assert not report["passed"]
    slow_log = [{"loss": 4.0 - 0.1 * i, "step": i} for i in range(10)]
    assert rl.detect_red_lines(report, log_history=slow_log) == []


def test_format_red_lines_and_summary():
    stuck = [{"loss": 10.5, "step": i} for i in range(1, 6)]
    checks = rl.check_red_lines(log_history=stuck)
    text = rl.format_red_lines(rl.detect_red_lines(log_history=stuck))
    assert text.startswith("RED LINE: loss_stuck_high — training loss 10.50 at step 5, not decreasing")
    assert text.endswith(rl.ADVICE[rl.LOSS_STUCK_HIGH] + " (restart from the previous phase)")
    summary = rl.red_lines_summary(checks)
    assert summary["red"] == [rl.LOSS_STUCK_HIGH]
    assert [c["name"] for c in summary["checks"]] == list(rl.RED_LINE_NAMES)
    assert {c["verdict"] for c in summary["checks"]} == {"RED", "skipped"}
    assert set(rl.ADVICE) == set(rl.RED_LINE_NAMES)
