"""Statistics of a prepared dataset and the recommended training length.

Recommended steps for ``k`` masked-token passes: ``ceil(k × supervised tokens / (batch size × supervised
tokens per row))``, with the train split's figures (rounded up, so the passes are at least reached).
The batch size is the global optimizer-step batch: processes × per-device batch × gradient accumulation, as
the trainer counts it (and as its coverage line at start reports it). Per-device batch and accumulation come
from flags, else from a training config (``per_device_train_batch_size``/``gradient_accumulation_steps``, or the
original's ``batch_size``/``grad_accum_steps``), else 16 and 1; the process count from ``--num_processes``, else
the launcher's ``WORLD_SIZE``, else 1. On 8 GPUs the recommendation is thus 8× fewer steps than on one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import MyPTInputError
from ..io_utils import PathLike
from .packing import IGNORE_INDEX, segment_lengths

PASSES = (2.0, 3.0, 3.5)
DEFAULT_BATCH_SIZE = 16
SPAN_OPEN, SPAN_CLOSE = "⟦", "⟧"  # marks supervised spans in decoded samples


def recommended_steps(supervised_tokens: int, rows: int, batch_size: int,
                      passes: Sequence[float] = PASSES) -> Dict[str, int]:
    """``{str(k): steps}``: steps = ceil(k × supervised_tokens / (batch_size × supervised_tokens_per_row))."""
    if rows <= 0 or supervised_tokens <= 0:
        return {str(k): 0 for k in passes}
    per_row = supervised_tokens / rows
    return {str(k): int(math.ceil(k * supervised_tokens / (batch_size * per_row) - 1e-9)) for k in passes}


def batch_from_config(path: PathLike) -> Tuple[Optional[int], Optional[int]]:
    """``(per-device batch, gradient accumulation)`` in a YAML/JSON training config (top level or one level
    down), in this project's or the original's key names; None for what the config does not say."""
    path = Path(path)
    if not path.is_file():
        raise MyPTInputError("config file not found", path=str(path))
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        config = json.loads(text)
    else:
        import yaml

        config = yaml.safe_load(text)
    if not isinstance(config, Mapping):
        raise MyPTInputError("config is not a mapping", path=str(path))
    scopes = [config] + [v for v in config.values() if isinstance(v, Mapping)]

    def first(*keys: str) -> Optional[int]:
        for scope in scopes:
            for key in keys:
                if key in scope:
                    value = scope[key]
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise MyPTInputError(f"expected an integer, got {value!r:.40}", path=str(path), field=key)
                    return value
        return None

    return (first("per_device_train_batch_size", "batch_size"),
            first("gradient_accumulation_steps", "grad_accum_steps"))


def batch_size_from_config(path: PathLike) -> int:
    """The per-process optimizer-step batch (per-device batch × accumulation) a training config gives."""
    per_device, accumulation = batch_from_config(path)
    return (per_device or DEFAULT_BATCH_SIZE) * (accumulation or 1)


def global_batch(per_device: Optional[int] = None, accumulation: Optional[int] = None,
                 num_processes: Optional[int] = None, config: Optional[PathLike] = None) -> Dict[str, int]:
    """``{"per_device", "accumulation", "processes", "global"}``: flags first, then ``config``, then the
    launcher's ``WORLD_SIZE`` for the process count, then the defaults (16, 1, 1)."""
    from_config = batch_from_config(config) if config else (None, None)
    if num_processes is None:
        world = os.environ.get("WORLD_SIZE", "")
        num_processes = int(world) if world.isdigit() and int(world) > 0 else 1
    batch = {"per_device": per_device if per_device is not None else from_config[0] or DEFAULT_BATCH_SIZE,
             "accumulation": accumulation if accumulation is not None else from_config[1] or 1,
             "processes": num_processes}
    for name, value in batch.items():
        if value <= 0:
            flag = {"per_device": "batch_size", "accumulation": "gradient_accumulation_steps",
                    "processes": "num_processes"}[name]
            raise MyPTInputError(f"must be a positive integer, got {value}", field=flag)
    batch["global"] = batch["per_device"] * batch["accumulation"] * batch["processes"]
    return batch


def _segments(row: Mapping[str, Any]) -> List[int]:
    return segment_lengths(len(row["input_ids"]), row.get("seq_lengths"))


def mark_supervised(tokenizer, input_ids: Sequence[int], labels: Sequence[int]) -> str:
    """Decode a row, wrapping every supervised span in ⟦…⟧ (tags decoded as their strings)."""
    out, span, state = [], [], None
    for token, label in zip(input_ids, labels):
        supervised = label != IGNORE_INDEX
        if state is not None and supervised != state:
            text = tokenizer.decode(span, skip_special_tokens=False)
            out.append(f"{SPAN_OPEN}{text}{SPAN_CLOSE}" if state else text)
            span = []
        span.append(int(token))
        state = supervised
    if span:
        text = tokenizer.decode(span, skip_special_tokens=False)
        out.append(f"{SPAN_OPEN}{text}{SPAN_CLOSE}" if state else text)
    return "".join(out)


def inspect(dataset_dir: PathLike, *, split: str = "train", show_samples: int = 0, config: Optional[PathLike] = None,
            batch_size: Optional[int] = None, gradient_accumulation_steps: Optional[int] = None,
            num_processes: Optional[int] = None, tokenizer=None) -> Dict[str, Any]:
    """Report on a prepared dataset (see the module docstring); returns a JSON-ready dict.

    ``batch_size`` is the per-device batch; the recommended steps use the global batch (:func:`global_batch`).
    """
    from .prepare import load_prepared

    split = "validation" if split in ("val", "validation") else split
    if split not in ("train", "validation"):
        raise MyPTInputError(f"unknown split {split!r} (train or val)", field="split")
    batch = global_batch(batch_size, gradient_accumulation_steps, num_processes, config)
    dataset, metadata = load_prepared(dataset_dir)
    packed = metadata.packing_enabled

    def split_stats(name: str) -> Dict[str, Any]:
        ds = dataset[name]
        rows = len(ds)
        table = ds.with_format("arrow")[:]
        labels = table.column("labels").combine_chunks()
        sup = int(np.count_nonzero(labels.values.to_numpy() != IGNORE_INDEX)) if rows else 0
        lengths = np.diff(table.column("input_ids").combine_chunks().offsets.to_numpy()) if rows else np.zeros(0)
        capacity = int(lengths.sum())
        recorded = metadata.splits.get(name, {})
        episodes = int(recorded.get("episodes", rows))
        tokens = int(recorded.get("tokens", capacity))
        stats = {
            "rows": rows,
            "episodes": episodes,
            "tokens": tokens,
            "supervised_tokens": sup,
            "mask_ratio": sup / tokens if tokens else 0.0,
            "supervised_tokens_per_row": sup / rows if rows else 0.0,
        }
        if packed:
            stats["fill"] = tokens / capacity if capacity else 0.0
            stats["episodes_per_block"] = episodes / rows if rows else 0.0
        return stats

    report: Dict[str, Any] = {
        "dataset_dir": str(dataset_dir),
        "split": split,
        "packed": packed,
        "block_size": metadata.block_size,
        "pack_by_field": metadata.pack_by_field,
        "tokenizer": dataclasses.asdict(metadata.tokenizer),
        "prepare_mode": metadata.prepare_mode,
        "sources": [s.get("path") or s.get("kind") for s in metadata.sources],
        "splits": {name: split_stats(name) for name in ("train", "validation")},
        "batch_size": batch["global"],
        "batch": batch,
    }
    train = report["splits"]["train"]
    report["recommended_max_steps"] = recommended_steps(train["supervised_tokens"], train["rows"], batch["global"])
    samples = []
    if show_samples > 0 and len(dataset[split]):
        from ..tokenization_mypt import load_tokenizer

        spec = tokenizer if tokenizer is not None else metadata.inputs.get("tokenizer")
        tok = spec if hasattr(spec, "decode") else load_tokenizer(spec)
        fingerprint = metadata.tokenizer.fingerprint
        from ..tokenization_mypt import tokenizer_fingerprint

        if fingerprint and tokenizer_fingerprint(tok) != fingerprint:
            raise MyPTInputError("the tokenizer differs from the one the dataset was prepared with "
                                 "(pass --tokenizer with the right spec)", field="tokenizer")
        for index in range(min(show_samples, len(dataset[split]))):
            row = dataset[split][index]
            segments = _segments(row)
            sup = sum(1 for x in row["labels"] if x != IGNORE_INDEX)
            samples.append({
                "index": index,
                "tokens": len(row["input_ids"]),
                "segments": segments,
                "supervised_tokens": sup,
                "text": mark_supervised(tok, row["input_ids"], row["labels"]),
            })
    report["samples"] = samples
    return report


def format_report(report: Mapping[str, Any], max_sample_chars: int = 2000) -> str:
    """Human-readable text of :func:`inspect`'s report."""
    lines = [f"dataset: {report['dataset_dir']}",
             f"packed: {report['packed']}  block size: {report['block_size']}  pack field: {report['pack_by_field']}",
             f"tokenizer: {(report.get('tokenizer') or {}).get('name')}  vocab {(report.get('tokenizer') or {}).get('vocab_size')}",
             f"prepare mode: {report.get('prepare_mode')}  sources: {', '.join(map(str, report.get('sources') or []))}"]
    for name, s in report["splits"].items():
        line = (f"{name}: {s['episodes']} episodes in {s['rows']} rows, {s['tokens']} tokens, "
                f"{s['supervised_tokens']} supervised (mask ratio {s['mask_ratio']:.1%}), "
                f"{s['supervised_tokens_per_row']:.1f} supervised tokens/row")
        if "fill" in s:
            line += f", fill {s['fill']:.2%}, {s['episodes_per_block']:.1f} episodes/block"
        lines.append(line)
    steps = report["recommended_max_steps"]
    batch = report.get("batch") or {}
    how = (f" ({batch['processes']} process(es) x {batch['per_device']} per device x {batch['accumulation']} "
           f"accumulation)" if batch else "")
    lines.append(f"recommended max_steps at global batch {report['batch_size']}{how}: "
                 + ", ".join(f"{k}x passes -> {v}" + (" (recommended)" if k == "3.5" else "") for k, v in steps.items()))
    for sample in report.get("samples", []):
        text = sample["text"]
        if len(text) > max_sample_chars:
            text = text[:max_sample_chars] + " …"
        lines.append(f"--- {report['split']} row {sample['index']}: {sample['tokens']} tokens, segments "
                     f"{sample['segments']}, {sample['supervised_tokens']} supervised ({SPAN_OPEN}…{SPAN_CLOSE})")
        lines.append(text)
    return "\n".join(lines)


__all__ = ["PASSES", "DEFAULT_BATCH_SIZE", "recommended_steps", "batch_from_config", "batch_size_from_config",
           "global_batch", "mark_supervised",
           "inspect", "format_report"]
