"""Model consistency checks: does the lm_head share storage with the embedding, as the config says?

The original ``check_tie_weights.py`` verdict table (broken as written there; this one runs):

| config says tied | same storage | verdict |
|---|---|---|
| True  | yes | PASS |
| True  | no  | FAIL |
| False | no  | PASS |
| False | yes | PASS with a warning (tied although the config says not) |
| unset | any | PASS (informational) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Union

import torch

from ..errors import GateFailure, MyPTInputError


@dataclass
class TieReport:
    """Outcome of ``check_tie_weights``; ``passed`` is False only for a FAIL verdict."""

    config_tied: Optional[bool]
    shares_storage: bool
    values_equal: bool
    embedding_shape: tuple
    lm_head_shape: tuple
    verdict: str  # "PASS", "WARN" (still passing) or "FAIL"
    message: str
    details: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict != "FAIL"


def _same_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or (a.device == b.device and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
                      and a.data_ptr() == b.data_ptr())


def load_model_for_check(path: Union[str, os.PathLike]) -> tuple:
    """(model, config_tied) for an HF model dir or a native MyPT checkpoint; config_tied None when unset."""
    from ..model_files import load_causal_lm, read_model_config

    path = Path(path)
    config_file = path / "config.json"
    if config_file.is_file():
        raw = read_model_config(path)
        if "model_type" in raw:  # an HF directory
            model = load_causal_lm(path, dtype=torch.float32)
            tied = raw.get("tie_word_embeddings")
            return model, (None if tied is None else bool(tied))
    from ..convert import build_hf_model, load_native_checkpoint

    checkpoint = load_native_checkpoint(path)
    tied = checkpoint.config.get("tie_weights")
    return build_hf_model(checkpoint), (None if tied is None else bool(tied))


def check_tie_weights(model_or_path: Any, config_tied: Optional[bool] = None) -> TieReport:
    """Compare the embedding and lm_head storage with the tying the config declares.

    ``model_or_path``: a loaded causal LM (``config_tied`` then defaults to its
    ``config.tie_word_embeddings``) or a model directory (HF or native MyPT).
    """
    if isinstance(model_or_path, (str, os.PathLike)):
        if not Path(model_or_path).exists():
            raise MyPTInputError("model not found", path=str(model_or_path))
        model, config_tied = load_model_for_check(model_or_path)
    else:
        model = model_or_path
        if config_tied is None:
            config_tied = getattr(model.config, "tie_word_embeddings", None)
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    shared = _same_storage(emb, head)
    equal = emb.shape == head.shape and bool(torch.equal(emb, head))
    details = [f"embedding {tuple(emb.shape)} ptr {emb.data_ptr():#x}", f"lm_head   {tuple(head.shape)} ptr {head.data_ptr():#x}",
               f"values equal: {equal}"]
    if config_tied is None:
        verdict, message = "PASS", f"config does not say whether weights are tied; shared storage: {shared}"
    elif config_tied and shared:
        verdict, message = "PASS", "config says tied and lm_head shares the embedding's storage"
    elif config_tied:
        verdict, message = "FAIL", ("config says tied but lm_head and embedding are separate tensors"
                                    + (" (equal values, so they will drift apart in training)" if equal else ""))
    elif shared:
        verdict, message = "WARN", "config says untied but lm_head shares the embedding's storage"
    else:
        verdict, message = "PASS", "config says untied and the weights are separate"
    return TieReport(config_tied=config_tied, shares_storage=shared, values_equal=equal,
                     embedding_shape=tuple(emb.shape), lm_head_shape=tuple(head.shape), verdict=verdict,
                     message=message, details=details)


def assert_tie_weights(model_or_path: Any) -> TieReport:
    """``check_tie_weights`` that raises ``GateFailure`` on FAIL."""
    report = check_tie_weights(model_or_path)
    if not report.passed:
        raise GateFailure(f"tie-weights check: {report.message}")
    return report


__all__ = ["TieReport", "check_tie_weights", "assert_tie_weights", "load_model_for_check"]
