"""Knowledge paraphrases (3a-2's optional extra forms of format lock's capitals and sums)."""

import re

import pytest

from mypt_hf.data.format_lock import format_lock
from mypt_hf.data.paraphrases import CAPITAL_FORMS, DIFFERENCE_FORMS, SUM_FORMS, knowledge_paraphrases
from mypt_hf.errors import MyPTInputError
from mypt_hf.evaluation import held_out


def _pairs(dataset):
    return [(m[1]["content"], m[2]["content"]) for m in dataset["messages"]]


def test_answers_are_format_locks_and_arithmetic_is_right():
    lock = dict(_pairs(format_lock(mode="full", math="include")))
    for question, answer in _pairs(knowledge_paraphrases()):
        numbers = [int(n) for n in re.findall(r"\d+", question)]
        if numbers:
            a, b = numbers
            # "Take b from a." names b first; every other form names a first
            expected = (a + b if any(w in question for w in ("+", "plus", "add", "Add", "Total", "added"))
                        else (b - a if question.startswith("Take") else a - b))
            assert answer == f"{expected}.", question
        else:
            country = next(c for form in CAPITAL_FORMS
                           for c in [re.fullmatch(re.escape(form).replace(r"\{c\}", "(.+)"), question)] if c).group(1)
            assert answer == lock[f"Capital of {country}?"], question


def test_forms_are_neither_format_locks_nor_held_out():
    lock_questions = {q for q, _ in _pairs(format_lock(mode="full", math="include"))}
    assert not lock_questions & {q for q, _ in _pairs(knowledge_paraphrases())}
    held = set(held_out.CAPITAL_FORMS + held_out.SUM_FORMS + held_out.DIFFERENCE_FORMS)
    assert not held & set(CAPITAL_FORMS + SUM_FORMS + DIFFERENCE_FORMS)
    assert held_out.held_out_overlaps() == []  # includes every held-out prompt against these episodes


def test_deterministic_and_unique():
    first, again = knowledge_paraphrases(seed=3), knowledge_paraphrases(seed=3)
    assert first["messages"] == again["messages"] and first["_meta"] == again["_meta"]
    questions = [q for q, _ in _pairs(first)]
    assert len(questions) == len(set(questions))
    assert _pairs(knowledge_paraphrases(seed=4)) != _pairs(first)


def test_share_is_taken_from_format_lock_full_and_checked():
    from mypt_hf.phases.settings import KnowledgeArguments, parse_phase_args

    config = parse_phase_args("phase3a2", ["--knowledge_paraphrase_share", "0.2", "--output_dir", "/tmp/unused"])
    assert config.group("knowledge").knowledge_paraphrase_share == 0.2
    with pytest.raises(MyPTInputError, match="knowledge_paraphrase_share"):
        KnowledgeArguments(knowledge_paraphrase_share=0.7)
    with pytest.raises(MyPTInputError, match="knowledge_paraphrase_share"):
        KnowledgeArguments(knowledge_paraphrase_share=-0.1)


def test_operator_phase_can_replay_the_paraphrases():
    from mypt_hf.phases.settings import OperatorArguments

    shares = OperatorArguments(operator_paraphrase_replay_share=0.05, operator_knowledge_replay_share=0.05).replay_shares()
    assert shares == {"knowledge_replay": 0.05, "paraphrase_replay": 0.05}
    with pytest.raises(MyPTInputError, match="leave room"):
        OperatorArguments(operator_paraphrase_replay_share=0.5, operator_echo_replay_share=0.5)
