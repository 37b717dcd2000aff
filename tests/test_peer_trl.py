"""benchmarks/peer_trl.py (mypt_hf vs plain TRL): the smoke run works end to end and reports sane figures, and the
cut-episode count it reports does see episodes that TRL's packing truncates."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "peer_trl.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("peer_trl_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cut_count_sees_episodes_trl_truncates():
    """The same count that must be 0 for mypt_hf is not blind: TRL's bfd packing at a max_length shorter than some
    episodes truncates them, and every one of those (and only those) is counted, with its lost targets."""
    import datasets
    from trl.data_utils import pack_dataset

    from mypt_hf.data.operators import operators
    from mypt_hf.tokenization_mypt import encode_messages, load_tokenizer

    bench = _load_script()
    tokenizer = load_tokenizer()
    episodes = operators(n_train=60, n_val=6, tokenizer=tokenizer)["train"]
    encoded = [encode_messages(tokenizer, row["messages"]) for row in episodes]
    lengths = sorted(len(e["input_ids"]) for e in encoded)
    max_length = lengths[len(lengths) // 2]  # about half the episodes are longer
    rows = {"input_ids": [e["input_ids"] for e in encoded],
            "labels": [[t if m else -100 for t, m in zip(e["input_ids"], e["assistant_masks"])] for e in encoded]}
    packed = pack_dataset(datasets.Dataset.from_dict(rows), max_length, strategy="bfd")
    reference = bench.reference_episodes(episodes, tokenizer)
    report = bench.packing_and_cuts(packed, max_length, reference, tokenizer.pad_token_id)
    longer = sum(1 for n in lengths if n > max_length)
    assert longer > 0
    assert report["episodes_cut"] == longer
    assert report["supervised_lost"] > 0
    assert report["supervised_in_rows"] + report["supervised_lost"] == report["supervised_expected"]
    assert 0 < report["fill"] <= 1


@pytest.mark.slow
def test_smoke_run_reports_both_sides(tmp_path):
    out = tmp_path / "peer_trl.json"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| figure" in proc.stdout and "mypt_hf/TRL" in proc.stdout
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["smoke"] is True
    assert result["init_max_abs_logit_diff"] < 1e-4  # both start from the same weights
    for side in ("mypt_hf", "trl"):
        run = result[side]
        for key in ("fill", "supervised_tokens_per_s", "optimizer_steps", "episodes_cut", "exact_match", "attention"):
            assert key in run, (side, key)
        assert 0 < run["fill"] <= 1
        assert run["optimizer_steps"] > 0 and run["supervised_tokens_per_s"] > 0
        assert 0 <= run["exact_match"] <= 1 and run["total"] == result["settings"]["eval_limit"]
        assert run["episodes"] == result["settings"]["n_train"]
        assert run["attention"]["episodes_checked"] >= 2
    mypt = result["mypt_hf"]
    assert mypt["episodes_cut"] == 0 and mypt["supervised_lost"] == 0
    assert mypt["supervised_in_rows"] == mypt["supervised_expected"]
    assert not mypt["attention"]["attends_across_episodes"]
    assert result["trl"]["packing_strategy"] == "bfd" and result["trl"]["padding_free"] is True
    assert set(result["ratios_mypt_hf_over_trl"]) >= {"fill", "supervised_tokens_per_s", "optimizer_steps"}
    assert len(result["layout_costs"]) == 4
