"""Training pictures: loss.png (train/val loss and masked-token accuracy) and gates.png (pass rate per bucket)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple


def _series(log_history: Sequence[Mapping[str, Any]], key: str) -> Tuple[List[float], List[float]]:
    steps, values = [], []
    for entry in log_history:
        if key in entry and isinstance(entry[key], (int, float)) and "step" in entry:
            steps.append(entry["step"])
            values.append(float(entry[key]))
    return steps, values


def plot_loss(log_history: Sequence[Mapping[str, Any]], path: str | Path, title: Optional[str] = None) -> Path:
    """Train and validation loss (left axis) and masked-token accuracy (right axis) against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    acc_ax = ax.twinx()
    for key, label, style in (("loss", "train loss", "-"), ("eval_loss", "val loss", "o-")):
        steps, values = _series(log_history, key)
        if steps:
            ax.plot(steps, values, style, label=label, color="tab:blue" if key == "loss" else "tab:orange")
    for key, label, style in (("mean_token_accuracy", "train masked-token acc", "--"),
                              ("eval_mean_token_accuracy", "val masked-token acc", "s--")):
        steps, values = _series(log_history, key)
        if steps:
            acc_ax.plot(steps, values, style, label=label,
                        color="tab:green" if key == "mean_token_accuracy" else "tab:red", alpha=0.8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (CE per supervised token)")
    acc_ax.set_ylabel("masked-token accuracy")
    acc_ax.set_ylim(0, 1.02)
    handles = ax.get_legend_handles_labels()[0] + acc_ax.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + acc_ax.get_legend_handles_labels()[1]
    if handles:
        ax.legend(handles, labels, loc="center right", fontsize=8)
    ax.set_title(title or "training")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_gates(report: Mapping[str, Any], path: str | Path, title: Optional[str] = None) -> Path:
    """Pass rate per bucket as bars with the bucket's threshold as a marker; gated buckets drawn solid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    buckets: Dict[str, Any] = dict(report.get("buckets", {}))
    names = list(buckets)
    rates = [float(buckets[n].get("rate") or 0.0) for n in names]
    thresholds = [buckets[n].get("threshold") for n in names]
    gated = [bool(buckets[n].get("gated")) for n in names]
    passed = [bool(buckets[n].get("passed")) for n in names]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 4), dpi=100)
    colors = [("tab:green" if ok else "tab:red") if g else "lightgray" for ok, g in zip(passed, gated)]
    bars = ax.bar(range(len(names)), rates, color=colors, edgecolor="black")
    for i, threshold in enumerate(thresholds):
        if threshold is not None:
            ax.hlines(float(threshold), i - 0.4, i + 0.4, colors="black", linestyles="dashed")
    for bar, rate in zip(bars, rates):
        ax.text(bar.get_x() + bar.get_width() / 2, rate + 0.02, f"{rate:.0%}", ha="center", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n + ("" if g else "\n(not gated)") for n, g in zip(names, gated)], fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("pass rate (dashed = threshold)")
    verdict = "PASS" if report.get("passed") else "FAIL"
    ax.set_title(f"{title or 'evaluation gate'}: {verdict}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
