"""Statistics of a prepared dataset and the recommended training length.

Recommended steps for ``k`` masked-token passes: ``ceil(k × supervised tokens / (batch size × supervised
tokens per row))``, with the train split's figures (rounded up, so the passes are at least reached).
The batch size is the optimizer-step batch: ``per_device_train_batch_size × gradient_accumulation_steps``
from a training config when one is given (``batch_size`` in original-style configs), else 16.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

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


def batch_size_from_config(path: PathLike) -> int:
    """The optimizer-step batch size in a YAML/JSON training config (top level or one level down)."""
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
    for scope in scopes:
        if "per_device_train_batch_size" in scope:
            return int(scope["per_device_train_batch_size"]) * int(scope.get("gradient_accumulation_steps", 1) or 1)
        if "batch_size" in scope:
            return int(scope["batch_size"])
    return DEFAULT_BATCH_SIZE


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
            batch_size: Optional[int] = None, tokenizer=None) -> Dict[str, Any]:
    """Report on a prepared dataset (see the module docstring); returns a JSON-ready dict."""
    from .prepare import load_prepared

    split = "validation" if split in ("val", "validation") else split
    if split not in ("train", "validation"):
        raise MyPTInputError(f"unknown split {split!r} (train or val)", field="split")
    dataset, metadata = load_prepared(dataset_dir)
    if batch_size is None:
        batch_size = batch_size_from_config(config) if config else DEFAULT_BATCH_SIZE
    if batch_size <= 0:
        raise MyPTInputError("batch size must be positive", field="batch_size")
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
        "batch_size": int(batch_size),
    }
    train = report["splits"]["train"]
    report["recommended_max_steps"] = recommended_steps(train["supervised_tokens"], train["rows"], batch_size)
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
    lines.append(f"recommended max_steps at batch size {report['batch_size']}: "
                 + ", ".join(f"{k}x passes -> {v}" + (" (recommended)" if k == "3.5" else "") for k, v in steps.items()))
    for sample in report.get("samples", []):
        text = sample["text"]
        if len(text) > max_sample_chars:
            text = text[:max_sample_chars] + " …"
        lines.append(f"--- {report['split']} row {sample['index']}: {sample['tokens']} tokens, segments "
                     f"{sample['segments']}, {sample['supervised_tokens']} supervised ({SPAN_OPEN}…{SPAN_CLOSE})")
        lines.append(text)
    return "\n".join(lines)


__all__ = ["PASSES", "DEFAULT_BATCH_SIZE", "recommended_steps", "batch_size_from_config", "mark_supervised",
           "inspect", "format_report"]
