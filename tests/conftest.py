"""Shared fixtures: paths into ../shared (skipped with a reason when absent) and tokenizers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MYPT_SHARED_DIR", REPO_ROOT.parent / "shared"))
GPT2_TIKTOKEN = SHARED / "data" / "gpt2.tiktoken"
PARITY_DIR = SHARED / "reference" / "parity"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def gpt2_tiktoken_path() -> Path:
    if not GPT2_TIKTOKEN.is_file():
        pytest.skip(f"GPT-2 rank file not found at {GPT2_TIKTOKEN}")
    return GPT2_TIKTOKEN


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not PARITY_DIR.is_dir():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR}")
    return PARITY_DIR


@pytest.fixture(scope="session")
def bad_input_fixtures(tmp_path_factory):
    """Good inputs for the bad-input cases (tests/bad_inputs.py): a chat JSONL, a prepared dataset, a tiny model."""
    import torch

    from bad_inputs import Fixtures
    from mypt_hf.configuration_mypt import MyPTConfig
    from mypt_hf.data.prepare import PrepareConfig, prepare
    from mypt_hf.data.schema import episodes_from_rows, make_episode
    from mypt_hf.io_utils import write_jsonl
    from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
    from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size

    root = tmp_path_factory.mktemp("bad_input_fixtures")
    words = ("OK", "Yes", "No", "Hello", "Blue", "Seven", "Paris", "Done")
    rows = [make_episode(f"Say {word}.", f"{word}.") for word in words]
    episodes = root / "episodes.jsonl"
    write_jsonl(episodes, [{"messages": row["messages"]} for row in rows])
    dataset = root / "dataset"
    prepare(episodes_from_rows(rows), dataset, None, config=PrepareConfig(val_split=0.25), verbose=False)
    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    model = MyPTForCausalLM(MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, max_position_embeddings=128))
    set_mypt_generation_config(model, tokenizer)
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return Fixtures(root=root, episodes=episodes, dataset=dataset, model=model_dir)
