"""The trainer library: MyPTSFTConfig / MyPTSFTTrainer (TRL's SFTTrainer on prepared MyPT datasets), the shared
train-and-save path (fit.py), callbacks, layer freezing, the model card and plots.

Names are imported on first use (PEP 562), so ``import mypt_hf.training.modeling`` does not import TRL.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"MyPTSFTConfig": "config", "resolve_max_steps": "config", "MyPTSFTTrainer": "trainer",
            "check_dataset_matches": "trainer", "train_and_save": "fit", "write_run_card": "fit"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return __all__
