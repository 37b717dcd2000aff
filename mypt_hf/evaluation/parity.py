"""Train/eval parity check (the original's debug_train_eval_parity.py, which was broken as committed).

On a few validation batches of a prepared dataset it checks that eval mode is deterministic (two passes give
the same loss and the same logits) and reports how much train mode (dropout) changes the loss. A model whose
config asks for dropout but whose train-mode loss equals its eval-mode loss has dropout that is not wired in.
"""

from __future__ import annotations

from typing import Any, Dict, List

import torch

#: Eval-mode repeatability tolerance for losses and logits.
REPEAT_TOLERANCE = 1e-5
#: Train vs eval loss differences above this mean train mode does something other than dropout.
MAX_TRAIN_EVAL_DIFF = 5.0
#: With dropout > 0, a train/eval difference below this counts as "no difference".
NO_DROPOUT_EFFECT = 1e-7


def _collator(pad_token_id: int):
    # The trainer's own collator, so the check sees batches exactly as training does.
    from ..data.packing import PackedEpisodeCollator

    return PackedEpisodeCollator(pad_token_id=pad_token_id, return_flash_kwargs=False)


def _dropout_of(config) -> float:
    for name in ("dropout", "attention_dropout", "hidden_dropout", "resid_pdrop"):
        value = getattr(config, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return 0.0


def _forward(model, batch: Dict[str, torch.Tensor]):
    return model(**batch, use_cache=False)


def train_eval_parity(model, dataset, *, pad_token_id: int, batch_size: int = 4, n_batches: int = 5,
                      seed: int = 0) -> Dict[str, Any]:
    """Run the three checks on the first ``n_batches`` batches of ``dataset`` (rows with input_ids/labels).

    Returns ``{"passed", "checks": [...], "dropout", "train_eval": {...}}``; every check has ``name``,
    ``passed``, ``value``, ``limit`` and ``message``. The model's train/eval mode is restored afterwards.
    """
    n_rows = min(len(dataset), batch_size * n_batches)
    if n_rows == 0:
        raise ValueError("the dataset split has no rows")
    collate = _collator(pad_token_id)
    device = next(model.parameters()).device
    batches = []
    for start in range(0, n_rows, batch_size):
        rows = [dataset[i] for i in range(start, min(start + batch_size, n_rows))]
        batch = collate(rows)
        batches.append({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
    dropout = _dropout_of(model.config)
    was_training = model.training
    checks: List[Dict[str, Any]] = []
    try:
        with torch.no_grad():
            model.eval()
            first = [_forward(model, b) for b in batches]
            second = [_forward(model, b) for b in batches]
            loss_diff = max(abs(a.loss.item() - b.loss.item()) for a, b in zip(first, second))
            checks.append({"name": "eval_loss_repeatable", "passed": loss_diff <= REPEAT_TOLERANCE,
                           "value": loss_diff, "limit": REPEAT_TOLERANCE,
                           "message": f"max |loss diff| over {len(batches)} batches, two eval passes"})
            logit_diff = max((a.logits.float() - b.logits.float()).abs().max().item() for a, b in zip(first, second))
            checks.append({"name": "eval_logits_repeatable", "passed": logit_diff <= REPEAT_TOLERANCE,
                           "value": logit_diff, "limit": REPEAT_TOLERANCE,
                           "message": "max |logit diff| over the same batches, two eval passes"})

            torch.manual_seed(seed)
            model.train()
            train_losses = [_forward(model, b).loss.item() for b in batches]
            model.eval()
            eval_losses = [out.loss.item() for out in first]
            diffs = [abs(t - e) for t, e in zip(train_losses, eval_losses)]
            train_eval = {"train_losses": train_losses, "eval_losses": eval_losses, "max_diff": max(diffs),
                          "mean_diff": sum(diffs) / len(diffs)}
            checks.append({"name": "train_eval_diff_bounded", "passed": max(diffs) <= MAX_TRAIN_EVAL_DIFF,
                           "value": max(diffs), "limit": MAX_TRAIN_EVAL_DIFF,
                           "message": "max |train-mode loss - eval-mode loss| (no grad)"})
            if dropout > 0:
                checks.append({"name": "dropout_has_effect", "passed": max(diffs) > NO_DROPOUT_EFFECT,
                               "value": max(diffs), "limit": NO_DROPOUT_EFFECT,
                               "message": f"config dropout={dropout} but train mode must change the loss"})
    finally:
        model.train(was_training)
    return {"passed": all(c["passed"] for c in checks), "checks": checks, "dropout": dropout,
            "n_batches": len(batches), "batch_size": batch_size, "train_eval": train_eval}


def format_parity(result: Dict[str, Any], verbose: bool = False) -> str:
    """A human-readable summary of :func:`train_eval_parity`'s result."""
    lines = [f"train/eval parity on {result['n_batches']} batch(es) of {result['batch_size']} "
             f"(dropout={result['dropout']})"]
    for check in result["checks"]:
        lines.append(f"  [{'PASS' if check['passed'] else 'FAIL'}] {check['name']}: {check['value']:.3g} "
                     f"(limit {check['limit']:.3g}) - {check['message']}")
    te = result["train_eval"]
    lines.append(f"  train-mode vs eval-mode loss: max diff {te['max_diff']:.4g}, mean diff {te['mean_diff']:.4g}")
    if verbose:
        for i, (t, e) in enumerate(zip(te["train_losses"], te["eval_losses"])):
            lines.append(f"    batch {i}: train {t:.6f}  eval {e:.6f}")
    lines.append(f"RESULT: {'PASS' if result['passed'] else 'FAIL'}")
    return "\n".join(lines)


__all__ = ["train_eval_parity", "format_parity", "REPEAT_TOLERANCE", "MAX_TRAIN_EVAL_DIFF", "NO_DROPOUT_EFFECT"]
