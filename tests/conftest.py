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
