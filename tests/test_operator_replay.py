"""The operator phase's replay of earlier phases' data (what keeps the final model's earlier skills)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from mypt_hf.errors import MyPTInputError
from mypt_hf.phases.recipes import ANTI_ECHO_CATEGORIES, _gamma_anti_echo
from mypt_hf.phases.settings import EchoArguments, OperatorArguments
from mypt_hf.tokenization_mypt import load_tokenizer


def _run():
    return SimpleNamespace(group=lambda name: {"echo": EchoArguments()}[name], data=SimpleNamespace(episode_seed=42),
                           tokenizer=load_tokenizer("embedded"))


def test_anti_echo_replay_is_gammas_made_up_word_questions_and_contrast_groups():
    rows = _gamma_anti_echo(_run())
    categories = Counter(meta["category"] for meta in rows["_meta"])
    assert set(categories) == set(ANTI_ECHO_CATEGORIES) and len(rows) > 500
    by_group = {}
    for messages, meta in zip(rows["messages"], rows["_meta"]):
        user, reply = messages[-2]["content"], messages[-1]["content"]
        assert meta["payload"] in user
        if "anti_echo" in meta["category"]:  # a question about a made-up word is answered, never echoed
            assert meta["payload"].lower() not in reply.lower(), (user, reply)
        else:
            assert reply == meta["payload"]
        if meta["group"]:
            by_group.setdefault(meta["group"], set()).add(meta["category"])
    # every whole contrast group asks for the same made-up word once as a copy and once as a question
    whole = [cats for cats in by_group.values() if len(cats) == 3]
    assert whole and all("contrast_anti_echo" in cats and "contrast_echo_quote" in cats for cats in whole)


def test_anti_echo_replay_is_a_share_of_the_operator_mix():
    shares = OperatorArguments(operator_echo_replay_share=0.1, operator_anti_echo_replay_share=0.05).replay_shares()
    assert shares == {"echo_replay": 0.1, "anti_echo_replay": 0.05}
    with pytest.raises(MyPTInputError, match="operator_anti_echo_replay_share"):
        OperatorArguments(operator_anti_echo_replay_share=1.5)
    with pytest.raises(MyPTInputError, match="leave room"):
        OperatorArguments(operator_anti_echo_replay_share=0.6, operator_echo_replay_share=0.4)


def test_a_bad_payload_length_distribution_names_the_config_key():
    assert OperatorArguments(operator_word_dist="0.25,0.25,0.25,0.25").operator_word_dist == "0.25,0.25,0.25,0.25"
    with pytest.raises(MyPTInputError, match="field 'operator_word_dist': cannot parse word_dist"):
        OperatorArguments(operator_word_dist="0.3;0.7")
