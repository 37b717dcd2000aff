"""The sft_eval_suite metric: every check on hand-made predictions, gates at the thresholds' edges,
offline loading through evaluate.load, and the duplicated tag strings against mypt_hf.tokens."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mypt_hf import tokens
from mypt_hf.evaluation.sft_eval_suite import sft_eval_suite as m

METRIC_DIR = Path(m.__file__).resolve().parent
CLOSE, EOT = tokens.ASSISTANT_CLOSE, tokens.EOT


def test_duplicated_tag_strings_equal_tokens_module():
    assert m.TAG_STRINGS == tokens.TAG_STRINGS
    assert m.FORBIDDEN_IN_OUTPUT == tokens.FORBIDDEN_IN_OUTPUT
    assert m.STOP_TAG_STRINGS == tokens.STOP_TAG_STRINGS


def test_extract_response_cuts_at_first_stop_tag():
    assert m.extract_response(f"  Hello. {CLOSE}") == "Hello."
    assert m.extract_response(f"Hi{EOT}junk") == "Hi"
    assert m.extract_response("no stop tag ") == "no stop tag"


@pytest.mark.parametrize("prediction, ok, reason", [
    (f"OK.{CLOSE}", True, "ok"),
    (f"OK.{EOT}", True, "ok"),
    (f"<myPT_think>hm</myPT_think>OK{CLOSE}", True, "ok"),
    (f"OK<myPT_user>more{CLOSE}", False, "forbidden"),
    (f"OK</myPT_system>{CLOSE}", False, "forbidden"),
    (f"OK<myPT_banana>{CLOSE}", False, "unknown"),
    (f"OK <myPT_assist{CLOSE}", False, "unclosed"),
    ("OK <myPT_assist", False, "unclosed"),
    ("OK and on and on", False, "runaway"),
])
def test_format_strict(prediction, ok, reason):
    result = m.check_format(prediction)
    assert result["passed"] is ok
    assert reason in result["reason"]


def test_format_runaway_length_rule_when_stop_tag_not_required():
    assert m.check_format("x" * 500, require_stop_tag=False)["passed"]
    assert not m.check_format("x" * 501, require_stop_tag=False)["passed"]


@pytest.mark.parametrize("response, reference, ok", [
    ("Hello", "Hello", True),
    ("hello!", "Hello", True),          # case and trailing punctuation
    ("Hello world.", "Hello world", True),
    ("OK", "OK.", True),                # punctuation trimmed on both sides
    ("Hello there, friend", "Hello", True),  # prefix allowed
    ("Say Hello", "Hello", False),      # not a prefix
    ("Hell", "Hello", False),
    ("", "Hello", False),
])
def test_echo_basic(response, reference, ok):
    assert m.check_echo(response, reference)["passed"] is ok


@pytest.mark.parametrize("response, word, ok", [
    ("I don't know that word.", "Blurpix", True),
    ("", "Blurpix", True),
    ("Blurpix is a thing", "Blurpix", False),
    ("what is blurpix?", "Blurpix", False),  # case-insensitive
])
def test_anti_echo(response, word, ok):
    assert m.check_anti_echo(response, word)["passed"] is ok


@pytest.mark.parametrize("response, target, ok", [
    ("12", "12", True),
    ("The answer is 12.", "12", True),
    ("112", "12", False),             # whole word only
    ("berlin", "Berlin", True),       # case-insensitive
    ("Yes, it is.", "Yes", True),
    ("Unknown", "No", False),         # the original's substring check let this pass
    ("No.", "No", True),
    ("Nope", "No", False),
])
def test_regression_whole_word(response, target, ok):
    assert m.check_regression(response, target)["passed"] is ok


@pytest.mark.parametrize("response, expected, ok", [
    ("xylophone", "xylophone", True),
    ("xylophone.", "xylophone", True),     # one trailing period allowed
    ("xylophone..", "xylophone", False),   # only one
    ("Xylophone", "xylophone", False),     # case-sensitive
    ("[blue ocean]", "[blue ocean]", True),
    ("blue ocean", "[blue ocean]", False),
    (" xylophone", "xylophone", True),     # extract_response strips before scoring (via score())
])
def test_operator_exact(response, expected, ok):
    assert m.check_operator(m.extract_response(response), expected)["passed"] is ok


def _regression_items(answers):
    targets = ["12", "4", "7", "Berlin", "Paris", "Yes", "No"]
    return [a + CLOSE for a in answers], targets[:len(answers)], ["regression_basic"] * len(answers)


def test_mode_collapse_fails_bucket_even_above_threshold():
    preds, refs, buckets = _regression_items(["Yes"] * 7)  # 1/7 pass, collapsed
    out = m.score(preds, refs, buckets, thresholds={"regression_basic": 0.1})
    bucket = out["buckets"]["regression_basic"]
    assert bucket["collapse_check"]["collapsed"]
    assert bucket["rate"] >= 0.1 and bucket["verdict"] == "FAIL" and not out["passed"]

    preds, refs, buckets = _regression_items(["12", "4", "7", "Berlin", "Paris", "Yes", "No"])
    out = m.score(preds, refs, buckets)
    bucket = out["buckets"]["regression_basic"]
    assert not bucket["collapse_check"]["collapsed"] and bucket["passed"] == 7 and out["passed"]


@pytest.mark.parametrize("n_pass, total, threshold, verdict", [
    (4, 5, 0.8, "PASS"),    # exactly at the threshold
    (3, 5, 0.8, "FAIL"),    # just below
    (5, 5, 1.0, "PASS"),
    (4, 5, 1.0, "FAIL"),
])
def test_gate_edges_echo(n_pass, total, threshold, verdict):
    preds = [("Hello" if i < n_pass else "Nope") + CLOSE for i in range(total)]
    out = m.score(preds, ["Hello"] * total, ["B"] * total, thresholds={"B": threshold})
    bucket = out["buckets"]["echo_basic"]
    assert (bucket["passed"], bucket["total"], bucket["verdict"]) == (n_pass, total, verdict)
    assert out["passed"] is (verdict == "PASS")


def test_default_thresholds_are_the_guides():
    assert m.DEFAULT_THRESHOLDS == {"format_strict": 1.0, "echo_basic": 0.8, "anti_echo": 0.8,
                                    "regression_basic": 0.5, "operators": 0.75}
    # E at 75%: 3/4 passes, 2/3 does not.
    out = m.score(["a", "a", "a", "b"], ["a"] * 4, ["operators"] * 4)
    assert out["buckets"]["operators"]["verdict"] == "PASS"
    out = m.score(["a", "a", "b"], ["a"] * 3, ["operators"] * 3)
    assert out["buckets"]["operators"]["verdict"] == "FAIL"


def test_ungated_bucket_does_not_fail_the_gate():
    out = m.score([f"x{CLOSE}", "Blurpix"], ["", "Blurpix"], ["format_strict", "anti_echo"],
                  gated=["format_strict"])
    assert out["buckets"]["anti_echo"]["verdict"] == "FAIL" and not out["buckets"]["anti_echo"]["gated"]
    assert out["passed"]


def test_operator_breakdowns_and_item_details():
    preds = ["alpha", "[beta gamma]", "delta", "wrong"]
    refs = ["alpha", "[beta gamma]", "delta", "x y z"]
    out = m.score(preds, refs, ["E"] * 4, operators=["COPY", "WRAP", "EXTRACT", "COPY"], word_counts=[1, 2, 1, 3],
                  item_names=["a", "b", "c", "d"], prompts=["p1", "p2", "p3", "p4"])
    bucket = out["buckets"]["operators"]
    assert bucket["by_operator"]["COPY"] == {"passed": 1, "total": 2, "rate": 0.5}
    assert bucket["by_operator"]["WRAP"]["passed"] == 1
    assert bucket["by_word_count"]["1"] == {"passed": 2, "total": 2, "rate": 1.0}
    assert bucket["by_word_count"]["3"]["passed"] == 0
    item = bucket["items"][3]
    assert item["name"] == "d" and item["prompt"] == "p4" and item["expected"] == "x y z"
    assert item["generated"] == "wrong" and not item["passed"]


def test_check_type_override_and_unknown_check():
    out = m.score(["hello there"], ["hello"], ["custom"], check_types=["echo_basic"], thresholds={"custom": 1.0})
    assert out["buckets"]["custom"]["check"] == "echo_basic" and out["passed"]
    with pytest.raises(ValueError, match="unknown check type"):
        m.score(["x"], ["x"], ["custom"])


def test_metric_loads_offline_through_evaluate_load(tmp_path):
    script = textwrap.dedent(f"""
        import evaluate, json
        metric = evaluate.load({str(METRIC_DIR)!r}, keep_in_memory=True)
        out = metric.compute(predictions=["Hello{CLOSE}", "OK<myPT_user>{CLOSE}"], references=["Hello", ""],
                             buckets=["echo_basic", "format_strict"], thresholds={{"B": 0.5}})
        print(json.dumps({{"passed": out["passed"], "B": out["buckets"]["echo_basic"]["verdict"],
                          "A": out["buckets"]["format_strict"]["items"][0]["reason"]}}))
    """)
    env = dict(os.environ, HF_EVALUATE_OFFLINE="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HOME=str(tmp_path / "home"),
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
               PYTHONPATH="")  # no mypt_hf tricks: the copied script must stand alone
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"passed": False, "B": "PASS", "A": "forbidden tag <myPT_user>"}
    copied = list((tmp_path / "modules").rglob("sft_eval_suite.py"))
    assert copied, "evaluate did not copy the script into the temporary module cache"
