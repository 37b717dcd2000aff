"""The kept-skills gate: the chain's final model asked every bucket the chain gated, on the suite and held-out."""

from __future__ import annotations

import json

from mypt_hf.evaluation.retention import kept_skill_buckets, kept_skill_items, score_kept_skills
from mypt_hf.evaluation.sft_eval_suite import sft_eval_suite as metric
from mypt_hf.phases.kept_skills import KEPT_SKILLS_FILE, chain_buckets, run_kept_skills
from mypt_hf.phases.report import format_summary

ALL = [metric.FORMAT_STRICT, metric.ECHO_BASIC, metric.ANTI_ECHO, metric.REGRESSION_BASIC, metric.OPERATORS]
STOP = "</myPT_assistant>"


def _perfect(item) -> str:
    if item.bucket == metric.FORMAT_STRICT:
        return "OK." + STOP
    if item.bucket == metric.ANTI_ECHO:
        return "Unknown." + STOP
    if item.bucket in (metric.ECHO_BASIC, metric.REGRESSION_BASIC):
        return item.reference + "." + STOP
    return item.reference + STOP


def _score(change=lambda item, reply: reply):
    wanted = kept_skill_buckets(ALL)
    items = kept_skill_items(wanted)
    return score_kept_skills(wanted, items, [change(item, _perfect(item)) for item in items]), items


def test_a_model_that_kept_everything_passes():
    report, items = _score()
    assert report["passed"], report["failed"]
    assert set(report["buckets"]) == set(ALL)
    held = report["buckets"][metric.FORMAT_STRICT]["held_out"]
    assert held["total"] == report["settings"]["held_out_items"] >= 4 * 60  # format scored on every held-out prompt


def test_one_runaway_reply_on_a_held_out_prompt_fails_format():
    runaway = {"done": False}

    def change(item, reply):
        if item.name.startswith("held_out_regression") and not runaway["done"]:
            runaway["done"] = True
            return "[ ar ar ar ar ar ar ar ar ar"  # no stop tag: the reply never ends
        return reply

    report, _ = _score(change)
    assert not report["passed"]
    assert any(f.startswith("A format_strict (held-out)") for f in report["failed"]), report["failed"]
    assert report["buckets"][metric.FORMAT_STRICT]["suite"]["rate"] == 1.0


def test_copy_below_its_target_fails_although_bucket_e_passes():
    wrong = {"n": 0}

    def change(item, reply):
        if item.operator == "COPY" and item.name.startswith("held_out") and wrong["n"] < 9:
            wrong["n"] += 1
            return "[" + item.reference + "]" + STOP  # answered as WRAP
        return reply

    report, _ = _score(change)
    e = report["buckets"][metric.OPERATORS]
    assert e["held_out"]["rate"] >= 0.75
    assert report["failed"] and all("COPY (held-out)" in f for f in report["failed"]), report["failed"]


def test_forgotten_anti_echo_fails_the_bucket_it_was_gated_in():
    report, _ = _score(lambda item, reply: item.reference + "." + STOP if item.bucket == metric.ANTI_ECHO else reply)
    assert [f.split(" ")[0:3] for f in report["failed"]] == [["C", "anti_echo", "(suite)"],
                                                             ["C", "anti_echo", "(held-out)"]]


def test_chain_buckets_are_what_the_phases_up_to_the_final_one_gated():
    assert chain_buckets("phase3a1_alpha") == ["A", "B"]
    assert chain_buckets("phase3a2") == ["A", "B", "C", "D"]
    assert chain_buckets("phase3a_operator") == ["A", "B", "C", "D", "E"]
    # what a gate really gated, where the summary records it (here α gated only C)
    rows = [{"phase": "tiny_base", "gated_buckets": ["copy"]}, {"phase": "phase3a1_alpha", "gated_buckets": ["anti_echo"]}]
    assert chain_buckets("phase3a1_alpha", rows) == ["C"]
    assert chain_buckets("phase3a1_beta", rows) == ["A", "B", "C"]


def test_only_the_buckets_the_chain_gated_are_checked():
    wanted = kept_skill_buckets(["C"])
    items = kept_skill_items(wanted)
    report = score_kept_skills(wanted, items, ["Unknown." + STOP for _ in items])
    assert report["passed"] and list(report["buckets"]) == [metric.ANTI_ECHO]
    assert not any(check["check"].startswith("A ") for check in report["checks"])


def test_run_on_a_saved_model_writes_report_card_and_summary_row(bad_input_fixtures, tmp_path):
    import shutil

    model_dir = tmp_path / "phase3a1_beta"
    shutil.copytree(bad_input_fixtures.model, model_dir)
    (model_dir / "README.md").write_text("# card\n")
    report = run_kept_skills({"phase": "phase3a1_beta", "output_dir": str(model_dir)})
    assert not report["passed"]  # an untrained model kept nothing
    saved = json.loads((model_dir / KEPT_SKILLS_FILE).read_text())
    assert saved["gated_by_chain"] == ["A", "B", "C"] and set(saved["buckets"]) == {
        metric.FORMAT_STRICT, metric.ECHO_BASIC, metric.ANTI_ECHO}
    card = (model_dir / "README.md").read_text()
    assert card.startswith("# card") and "## Kept skills" in card and "held-out" in card
    run_kept_skills({"phase": "phase3a1_beta", "output_dir": str(model_dir)})  # a rerun replaces its section
    assert (model_dir / "README.md").read_text().count("## Kept skills") == 1

    from mypt_hf.phases.kept_skills import summary_row

    summary = {"output_root": str(tmp_path), "config_dir": "c", "config_suffix": "", "overrides": [],
               "passed": False, "total_wall_s": 1.0, "upstream_phases": [],
               "phases": [{"phase": "phase3a1_beta", "buckets": {}, "gated_buckets": [], "verdict": "PASS",
                           "wall_s": 1.0}],
               "kept_skills": summary_row(report) | {"wall_s": 2.0}}
    text = format_summary(summary)
    assert "| kept skills (phase3a1_beta) | A, B, C |" in text and "kept skills FAIL" in text


def test_the_reply_budget_fits_every_correct_held_out_reply_with_its_stop_tag():
    from mypt_hf.evaluation.retention import reply_budget
    from mypt_hf.tokenization_mypt import load_tokenizer

    tokenizer = load_tokenizer("embedded")
    items = kept_skill_items(kept_skill_buckets(ALL))
    needed = max(len(tokenizer.encode(_perfect(item), add_special_tokens=False)) for item in items)
    assert needed > 24  # the tiny operator gate's budget would cut the longest correct WRAP reply
    assert reply_budget(tokenizer, items, 24) >= needed
    assert reply_budget(tokenizer, items, 64) == 64  # never lowered
