"""Train/eval parity check and `mypt-hf debug-train-eval-parity` on a tiny model and a tiny prepared dataset."""

from __future__ import annotations

import json
import random

import datasets
import pytest
import torch

from mypt_hf.cli import main
from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.data.prepare import METADATA_FILE
from mypt_hf.evaluation.parity import format_parity, train_eval_parity
from mypt_hf.modeling_mypt import MyPTForCausalLM

VOCAB = 128
PAD = 3


def _rows(n, rng):
    rows = {"input_ids": [], "labels": [], "seq_lengths": []}
    for index in range(n):
        lengths = [rng.randint(6, 20) for _ in range(1 + index % 3)]  # some rows packed, some not
        ids = [rng.randrange(VOCAB) for _ in range(sum(lengths))]
        labels = [t if rng.random() < 0.5 else -100 for t in ids]
        rows["input_ids"].append(ids)
        rows["labels"].append(labels)
        rows["seq_lengths"].append(lengths)
    return rows


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """A prepared-like dataset (E's on-disk format: DatasetDict + mypt_metadata.json)."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("prepared")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(_rows(8, rng)),
                               "validation": datasets.Dataset.from_dict(_rows(12, rng))})
    dd.save_to_disk(str(path))
    (path / METADATA_FILE).write_text(json.dumps({"pad_token_id": PAD}))
    return path


def _model(dropout=0.0):
    torch.manual_seed(0)
    config = MyPTConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        max_position_embeddings=128, dropout=dropout, pad_token_id=PAD)
    return MyPTForCausalLM(config).eval()


def _dataset(dataset_dir):
    return datasets.load_from_disk(str(dataset_dir))["validation"]


def test_parity_passes_without_dropout(dataset_dir):
    result = train_eval_parity(_model(0.0), _dataset(dataset_dir), pad_token_id=PAD, batch_size=4, n_batches=3)
    assert result["passed"] and result["n_batches"] == 3
    names = [c["name"] for c in result["checks"]]
    assert names == ["eval_loss_repeatable", "eval_logits_repeatable", "train_eval_diff_bounded"]
    assert result["train_eval"]["max_diff"] < 1e-5  # no dropout: train mode == eval mode
    assert "RESULT: PASS" in format_parity(result, verbose=True)


def test_parity_with_working_dropout_reports_difference(dataset_dir):
    model = _model(0.2)
    result = train_eval_parity(model, _dataset(dataset_dir), pad_token_id=PAD, batch_size=4, n_batches=2)
    assert result["passed"] and result["train_eval"]["max_diff"] > 1e-4
    assert not model.training  # mode restored


def test_parity_flags_dropout_without_effect(dataset_dir):
    model = _model(0.0)
    model.config.dropout = 0.1  # the config promises dropout, the modules have none
    result = train_eval_parity(model, _dataset(dataset_dir), pad_token_id=PAD, batch_size=4, n_batches=2)
    check = {c["name"]: c for c in result["checks"]}["dropout_has_effect"]
    assert not check["passed"] and not result["passed"]


def test_parity_fails_on_nondeterministic_eval(dataset_dir):
    model = _model(0.0)
    model.lm_head.register_forward_hook(lambda module, args, out: out + 1e-3 * torch.randn_like(out))
    result = train_eval_parity(model, _dataset(dataset_dir), pad_token_id=PAD, batch_size=4, n_batches=2)
    failed = {c["name"] for c in result["checks"] if not c["passed"]}
    assert {"eval_loss_repeatable", "eval_logits_repeatable"} <= failed


def test_cli_parity(dataset_dir, tmp_path, monkeypatch):
    good, dropout_dir = tmp_path / "good", tmp_path / "dropout"
    _model(0.0).save_pretrained(good)
    _model(0.1).save_pretrained(dropout_dir)
    out = tmp_path / "parity.json"
    assert main(["debug-train-eval-parity", "--model", str(good), "--dataset_dir", str(dataset_dir),
                 "--split", "val", "--n_batches", "2", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["passed"] is True
    assert main(["debug-train-eval-parity", "--model", str(dropout_dir), "--dataset_dir", str(dataset_dir),
                 "--n_batches", "2"]) == 0
    # A model claiming dropout its modules don't apply: exit 1.
    import mypt_hf.evaluation.parity as parity

    monkeypatch.setattr(parity, "_dropout_of", lambda config: 0.1)
    assert main(["debug-train-eval-parity", "--model", str(good), "--dataset_dir", str(dataset_dir),
                 "--n_batches", "2"]) == 1
    assert main(["debug-train-eval-parity", "--model", str(good), "--dataset_dir", str(tmp_path / "nope")]) == 2
    assert main(["debug-train-eval-parity", "--model", str(good), "--dataset_dir", str(dataset_dir),
                 "--split", "test"]) == 2
