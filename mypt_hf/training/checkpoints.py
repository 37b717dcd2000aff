"""Which of the trainer's ``checkpoint-<step>`` folders can be resumed from.

The Trainer writes a checkpoint in place, in this order (transformers ``Trainer._save_checkpoint``): the model,
the optimizer and scheduler, the RNG state, and ``trainer_state.json`` last; older checkpoints are rotated away
only after that. So a process killed during a save leaves the newest folder without a readable
``trainer_state.json`` while the previous checkpoint is still whole. ``transformers.trainer_utils.get_last_checkpoint``
picks the highest step regardless, and resuming from a half-written folder crashes; these helpers pick the newest
*complete* one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List, Optional, Tuple

from ..model_files import safetensors_problem
from .lora import ADAPTER_WEIGHTS

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
# a LoRA run's checkpoints hold the adapter only (mypt_hf.training.lora)
MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", *ADAPTER_WEIGHTS)


def checkpoint_dirs(output_dir: str | Path) -> List[Tuple[int, Path]]:
    """``(step, path)`` of every ``checkpoint-<step>`` folder under ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in root.iterdir()
             if path.is_dir() and (m := _CHECKPOINT.match(path.name))]
    return sorted(found)


def checkpoint_problem(checkpoint: str | Path) -> Optional[str]:
    """Why ``checkpoint`` cannot be resumed from (``None`` when it can): the trainer state missing or unreadable,
    or no model weights, or weights whose safetensors header does not parse (a truncated file)."""
    path = Path(checkpoint)
    if not path.is_dir():
        return "not a directory"
    state = path / TRAINER_STATE
    if not state.is_file():
        return f"no {TRAINER_STATE} (the save did not finish)"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{TRAINER_STATE} is not readable JSON (the save did not finish)"
    weights = [path / name for name in MODEL_FILES if (path / name).is_file()]
    if not weights:
        return "no model weights"
    if weights[0].suffix == ".safetensors":
        return safetensors_problem(weights[0])
    return None


def latest_complete_checkpoint(output_dir: str | Path) -> Tuple[Optional[Path], List[Tuple[Path, str]]]:
    """The newest checkpoint under ``output_dir`` that can be resumed from, and the newer ones that cannot
    (``(path, why)``, e.g. the folder a killed process was writing)."""
    skipped: List[Tuple[Path, str]] = []
    for _, path in reversed(checkpoint_dirs(output_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped


def resolve_resume_checkpoint(resume: object, output_dir: str | Path) -> Optional[str]:
    """The checkpoint directory a run resumes from, checked before any training starts.

    ``resume``: ``None``/``False``/``""`` (no resume), ``True`` or ``"true"`` (the newest complete checkpoint under
    ``output_dir``), or a checkpoint directory. A directory that cannot be resumed from, or ``"true"`` with no
    complete checkpoint, is a MyPTInputError naming the path and what is wrong (the Trainer would crash instead).
    """
    from ..errors import MyPTInputError

    if resume is None or resume is False or resume == "" or (isinstance(resume, str) and resume.lower() == "false"):
        return None
    if resume is True or (isinstance(resume, str) and resume.lower() == "true"):
        found, skipped = latest_complete_checkpoint(output_dir)
        if found is None:
            why = "; ".join(f"{path.name}: {problem}" for path, problem in skipped) or "none there"
            raise MyPTInputError(f"no complete checkpoint-<step> folder to resume from ({why}); pass a checkpoint "
                                 "directory or train without --resume_from_checkpoint", path=str(output_dir),
                                 field="resume_from_checkpoint")
        return str(found)
    path = Path(str(resume))
    if not path.exists():
        raise MyPTInputError("checkpoint not found (expected a checkpoint-<step> folder the trainer wrote, or 'true' "
                             "for the newest under output_dir)", path=str(path), field="resume_from_checkpoint")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise MyPTInputError(f"cannot resume from this checkpoint: {problem}", path=str(path),
                             field="resume_from_checkpoint")
    return str(path)


__all__ = ["checkpoint_dirs", "checkpoint_problem", "latest_complete_checkpoint", "resolve_resume_checkpoint"]
