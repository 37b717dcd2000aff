"""Training: MyPTSFTConfig / MyPTSFTTrainer (TRL SFTTrainer on prepared MyPT datasets) and the phase recipe runner."""

from .config import MyPTSFTConfig, resolve_max_steps  # noqa: F401
from .trainer import MyPTSFTTrainer, check_dataset_matches  # noqa: F401

__all__ = ["MyPTSFTConfig", "MyPTSFTTrainer", "resolve_max_steps", "check_dataset_matches"]
