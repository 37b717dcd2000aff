"""Weighted mixing of episode datasets: weights are shares of the output (the guide's intent).

The original's default mode read weights as per-source sampling fractions, so the guide's "85/15"
gave 96.7/3.3 (reference §6, §14.8). Here weights are normalised into output shares, counts are
allocated by largest remainder, and the default size is the largest one that uses no source row
twice. A larger ``target_size`` oversamples with replacement and the metadata says so.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import datasets

from ..errors import MyPTInputError
from .operators import allocate
from .schema import EPISODE_FEATURES

DatasetsArg = Union[Sequence[datasets.Dataset], Mapping[str, datasets.Dataset]]


def _names_and_sets(datasets_arg: DatasetsArg, names: Optional[Sequence[str]]) -> Tuple[List[str], List[datasets.Dataset]]:
    if isinstance(datasets_arg, Mapping):
        pairs = list(datasets_arg.items())
        given, sets = [str(k) for k, _ in pairs], [v for _, v in pairs]
    else:
        sets, given = list(datasets_arg), None
    if names is not None:
        given = [str(n) for n in names]
    if given is None:
        given = []
        for index, ds in enumerate(sets):
            sources = sorted({s for s in ds["_meta"]["source"] if s}) if "_meta" in ds.column_names and len(ds) else []
            given.append(sources[0] if len(sources) == 1 else f"input{index}")
    if len(given) != len(sets):
        raise MyPTInputError(f"{len(given)} names for {len(sets)} datasets", field="names")
    return given, sets


def _check_weights(weights: Sequence[float], n_inputs: int) -> List[float]:
    if n_inputs == 0:
        raise MyPTInputError("no input datasets to mix", field="inputs")
    weights = [float(w) for w in weights]
    if len(weights) != n_inputs:
        raise MyPTInputError(f"{len(weights)} weights for {n_inputs} inputs: give one weight per input",
                             field="weights")
    if any(w != w or w < 0 or w == float("inf") for w in weights):
        raise MyPTInputError(f"weights must be finite and non-negative, got {weights}", field="weights")
    total = sum(weights)
    if total <= 0:
        raise MyPTInputError("all weights are zero", field="weights")
    return [w / total for w in weights]


def max_size_without_reuse(sizes: Sequence[int], shares: Sequence[float]) -> int:
    """The largest output size whose allocation takes no more rows from any source than it has."""
    bounds = [int(n / s) for n, s in zip(sizes, shares) if s > 0]
    size = min(bounds) + len(sizes) + 1 if bounds else 0
    while size > 0 and any(q > n for q, n in zip(allocate(size, shares), sizes)):
        size -= 1
    return size


def mix_with_metadata(datasets_arg: DatasetsArg, weights: Sequence[float], target_size: Optional[int] = None,
                      shuffle: bool = True, seed: int = 42,
                      names: Optional[Sequence[str]] = None) -> Tuple[datasets.Dataset, Dict[str, Any]]:
    """Mix datasets so that source i makes up ``weights[i] / sum(weights)`` of the rows (to within one row).

    Returns the mixed Dataset and a metadata dict (per-source quota, rows drawn, rows drawn with
    replacement, and ``oversampled``). Rows keep their content; ``_meta.mix_source`` is set to the
    source name where it is empty. Sampling per source uses ``Random(seed + 17 * index)``; the final
    shuffle uses ``Random(seed + 1)``.
    """
    names, sets = _names_and_sets(datasets_arg, names)
    shares = _check_weights(weights, len(sets))
    for name, ds in zip(names, sets):
        if ds.features != EPISODE_FEATURES:
            raise MyPTInputError(f"input '{name}' does not have the episode features (messages, _meta)", path=name)
    sizes = [len(ds) for ds in sets]
    for name, n, share in zip(names, sizes, shares):
        if share > 0 and n == 0:
            raise MyPTInputError(f"input '{name}' is empty but has a positive weight", path=name)
    default_size = max_size_without_reuse(sizes, shares)
    if target_size is not None and (not isinstance(target_size, int) or target_size < 1):
        raise MyPTInputError(f"target_size must be a positive integer, got {target_size!r}", field="target_size")
    size = default_size if target_size is None else target_size
    quotas = allocate(size, shares)

    parts, sources_meta = [], []
    for index, (name, ds, n, quota) in enumerate(zip(names, sets, sizes, quotas)):
        rng = random.Random(seed + 17 * index)
        if quota <= n:
            indices = sorted(rng.sample(range(n), quota))
            replaced = 0
        else:  # every row once, then the deficit drawn with replacement
            indices = list(range(n)) + sorted(rng.choices(range(n), k=quota - n))
            replaced = quota - n
        part = ds.select(indices)

        def set_source(batch, _name=name):
            metas = batch["_meta"]
            for meta in metas:
                if not meta.get("mix_source"):
                    meta["mix_source"] = _name
            return {"_meta": metas}

        parts.append(part.map(set_source, batched=True, features=EPISODE_FEATURES,
                              load_from_cache_file=False, desc=None) if quota else part)
        sources_meta.append({"source": name, "available": n, "weight": float(weights[index]), "share": shares[index],
                             "quota": quota, "with_replacement": replaced, "oversampled": replaced > 0})
    mixed = datasets.concatenate_datasets(parts) if parts else datasets.Dataset.from_list([], features=EPISODE_FEATURES)
    if shuffle and len(mixed):
        order = list(range(len(mixed)))
        random.Random(seed + 1).shuffle(order)
        mixed = mixed.select(order)
    metadata = {
        "seed": seed, "shuffled": bool(shuffle), "total_episodes": len(mixed), "target_size": target_size,
        "default_size": default_size, "oversampled": any(s["oversampled"] for s in sources_meta),
        "sources": sources_meta,
    }
    return mixed, metadata


def mix(datasets: DatasetsArg, weights: Sequence[float], target_size: Optional[int] = None, shuffle: bool = True,
        seed: int = 42, names: Optional[Sequence[str]] = None):
    """Weighted mix (see ``mix_with_metadata``); the metadata is also in ``result.info.description`` as JSON."""
    mixed, metadata = mix_with_metadata(datasets, weights, target_size=target_size, shuffle=shuffle, seed=seed,
                                        names=names)
    mixed.info.description = json.dumps(metadata, sort_keys=True)
    return mixed


def summarize_episodes(dataset: datasets.Dataset) -> Dict[str, Any]:
    """Counts per category, language, operator and mix source (sorted keys: stable metadata)."""
    metas = dataset["_meta"] if len(dataset) else []
    summary: Dict[str, Any] = {"episodes": len(dataset)}
    for field in ("category", "language", "operator", "mix_source"):
        counts = Counter(m[field] for m in metas if m.get(field) is not None)
        if counts:
            summary[f"by_{field}"] = dict(sorted(counts.items()))
    return summary


__all__ = ["mix", "mix_with_metadata", "max_size_without_reuse", "summarize_episodes"]
