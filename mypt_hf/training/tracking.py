"""Experiment tracking: ``report_to`` with TensorBoard and trackio, offline, through transformers' own callbacks.

transformers' ``TensorBoardCallback`` and ``TrackioCallback`` do the logging (only the world's process zero writes,
they check ``state.is_world_process_zero``); this module adds what a MyPT run needs around them:

- a missing optional package is a :class:`~mypt_hf.errors.MyPTInputError` naming the extra to install, raised
  when the config is built (before any data or model), not a RuntimeError from inside the Trainer;
- trackio stays local: a Space, a bucket or a self-hosted server (``trackio_space_id``, ``trackio_bucket_id``,
  ``TRACKIO_SPACE_ID``, ``TRACKIO_SERVER_URL``) is refused and the post-training static Space is switched off, so
  the metrics go only to trackio's local store (``$TRACKIO_DIR``, default ``$HF_HOME/trackio``);
- one run per training with a name that says what was trained (a phase's name, or the output directory's, plus
  the UTC start time); TensorBoard writes it to ``<output_dir>/runs/<run_name>`` unless ``TENSORBOARD_LOGGING_DIR``
  says otherwise;
- figures known only after training (the phase gate) land in the same run: the trainer's ``on_train_end`` has
  closed the writer / finished the trackio run by then, so :func:`log_after_training` hands the figures to the
  same callbacks' ``on_log`` (TensorBoard reopens a writer in the same directory, trackio resumes the run by its
  name) and :func:`close_trackers` closes them again.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ..errors import MyPTInputError

#: The trackers that work offline and are tested; both come with ``pip install mypt_hf[tracking]``.
OFFLINE_TRACKERS = ("tensorboard", "trackio")
TRACKING_EXTRA = "mypt_hf[tracking]"
#: The project that trackio files MyPT runs under (``TrainingArguments.project``; transformers' default is
#: "huggingface").
TRACKIO_PROJECT = "mypt-hf"
# environment variables that would send trackio's metrics off this machine
_TRACKIO_REMOTE_ENV = ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL")
# the key prefix of the gate figures: transformers' rewrite_logs turns "eval_x" into "eval/x" for both trackers
GATE_PREFIX = "eval_gate/"


def _installed(tracker: str) -> bool:
    if tracker == "tensorboard":  # what TensorBoardCallback imports: torch.utils.tensorboard needs tensorboard
        return any(importlib.util.find_spec(name) is not None for name in ("tensorboard", "tensorboardX"))
    return importlib.util.find_spec(tracker) is not None


def trackers(report_to: Union[None, str, Sequence[str]]) -> List[str]:
    """The offline trackers (``tensorboard``, ``trackio``) that ``report_to`` names (a string or a list)."""
    if report_to is None:
        return []
    names = [report_to] if isinstance(report_to, str) else list(report_to)
    return [name for name in names if name in OFFLINE_TRACKERS]


def check_tracking_args(args: Any) -> None:
    """Refuse a ``report_to`` whose tracker is not installed, and any trackio setting that would leave this machine.

    Called from ``MyPTSFTConfig.__post_init__`` (after transformers has turned ``report_to`` into a list), so a
    bad setting stops ``mypt-hf train``, a phase recipe or ``run-phases`` before anything is built. Also switches
    off trackio's static Space (``trackio_static_space_id = False``), which a Hub push would otherwise create.
    """
    chosen = trackers(args.report_to)
    for tracker in chosen:
        if not _installed(tracker):
            raise MyPTInputError(f"report_to={tracker} needs the '{tracker}' package, which is not installed: "
                                 f"pip install '{TRACKING_EXTRA}'", field="report_to")
    if "trackio" not in chosen:
        return
    for name in ("trackio_space_id", "trackio_bucket_id"):
        if getattr(args, name, None):
            raise MyPTInputError(f"mypt_hf logs trackio to the local store only ($TRACKIO_DIR, default "
                                 f"$HF_HOME/trackio); unset {name} (got {getattr(args, name)!r})", field=name)
    for name in _TRACKIO_REMOTE_ENV:
        if os.environ.get(name):
            raise MyPTInputError(f"mypt_hf logs trackio to the local store only; the environment sets {name}="
                                 f"{os.environ[name]!r}: unset it", field=name)
    args.trackio_static_space_id = False


def default_run_name(what: str, now: Optional[_dt.datetime] = None) -> str:
    """``<what>-<UTC start time>``: a new run per training, so a rerun never appends to an earlier one (trackio
    resumes a run of the same name) and the name says what was trained."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return f"{what}-{now.strftime('%Y%m%d-%H%M%S')}"


def name_the_run(args: Any, what: str) -> None:
    """Give ``args`` a run name (``default_run_name(what)``) when trackers are on and none was given."""
    if trackers(args.report_to) and not args.run_name:
        args.run_name = default_run_name(what)


def tracker_callbacks(trainer: Any) -> List[Any]:
    """The trainer's TensorBoard and trackio callbacks (the ones ``report_to`` added)."""
    from transformers.integrations import TensorBoardCallback, TrackioCallback

    return [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, (TensorBoardCallback, TrackioCallback))]


def point_tensorboard(trainer: Any) -> None:
    """Write TensorBoard events to ``<output_dir>/runs/<run_name>`` (transformers' default names the directory
    after the time and host only), unless ``TENSORBOARD_LOGGING_DIR`` chose a directory."""
    from transformers.integrations import TensorBoardCallback

    for callback in tracker_callbacks(trainer):
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None and trainer.args.run_name:
            callback.logging_dir = os.path.join(trainer.args.output_dir, "runs", trainer.args.run_name)


def log_after_training(trainer: Any, logs: Mapping[str, Union[float, int, str]]) -> None:
    """Log ``logs`` at the trainer's last step into the same tracker runs as the training curves.

    Only the tracker callbacks get them (not the printer or progress callbacks, not ``state.log_history``, which
    the model card and red lines read). A closed TensorBoard writer is reopened in the same directory and a finished
    trackio run is resumed by its name; call :func:`close_trackers` afterwards.
    """
    callbacks = tracker_callbacks(trainer)
    for callback in callbacks:
        callback.on_log(trainer.args, trainer.state, trainer.control, model=trainer.model, logs=dict(logs))


def close_trackers(trainer: Any) -> None:
    """Flush and close the TensorBoard writer and finish the trackio run (both are no-ops when already closed)."""
    for callback in tracker_callbacks(trainer):
        callback.on_train_end(trainer.args, trainer.state, trainer.control, model=trainer.model)


def gate_logs(report: Mapping[str, Any]) -> Dict[str, Union[float, str]]:
    """A gate report as tracker figures: per bucket its pass rate, passed count and verdict (1 PASS / 0 not), the
    gate checks (tie weights, train/eval parity), the number of red lines, and the overall verdict (``passed``
    1/0, ``verdict`` text). Keys start with ``eval_gate/`` (shown as ``eval/gate/...``)."""
    from ..evaluation.red_lines import gate_verdict

    logs: Dict[str, Union[float, str]] = {}
    for name, bucket in report.get("buckets", {}).items():
        logs[f"{GATE_PREFIX}{name}/pass_rate"] = float(bucket.get("rate") or 0.0)
        logs[f"{GATE_PREFIX}{name}/passed"] = float(bucket.get("passed") or 0)
        logs[f"{GATE_PREFIX}{name}/verdict_pass"] = float(bucket.get("verdict") == "PASS")
    for name, check in (report.get("checks") or {}).items():
        logs[f"{GATE_PREFIX}checks/{name}"] = float(bool(check.get("passed")))
    if report.get("red_lines") is not None:
        logs[f"{GATE_PREFIX}red_lines"] = float(len(report["red_lines"].get("red") or []))
    logs[f"{GATE_PREFIX}passed"] = float(bool(report.get("passed")))
    logs[f"{GATE_PREFIX}verdict"] = gate_verdict(report)
    gated = report.get("gated_buckets")
    if gated:
        logs[f"{GATE_PREFIX}gated_buckets"] = ", ".join(gated)
    return logs


def log_and_close(trainer: Any, logs: Mapping[str, Union[float, int, str]]) -> None:
    """:func:`log_after_training` then :func:`close_trackers` (main process; a no-op without trackers or without a
    trainer)."""
    if trainer is None or not tracker_callbacks(trainer):
        return
    log_after_training(trainer, logs)
    close_trackers(trainer)


def log_gate(trainer: Any, report: Mapping[str, Any]) -> None:
    """Log a phase's gate report (:func:`gate_logs`) into its training run, then close the trackers."""
    log_and_close(trainer, gate_logs(report))


def held_out_logs(name: str, result: Mapping[str, Any]) -> Dict[str, float]:
    """Held-out exact match (:func:`~mypt_hf.evaluation.exact_match.episode_exact_match`) as tracker figures:
    ``eval_held_out/<name>/exact_match``, ``/passed`` and ``/total``."""
    prefix = f"eval_held_out/{name}/"
    return {prefix + key: float(result.get(key) or 0) for key in ("exact_match", "passed", "total")}


__all__ = ["OFFLINE_TRACKERS", "TRACKING_EXTRA", "TRACKIO_PROJECT", "GATE_PREFIX", "trackers", "check_tracking_args",
           "default_run_name", "name_the_run", "tracker_callbacks", "point_tensorboard", "log_after_training",
           "close_trackers", "log_and_close", "gate_logs", "log_gate", "held_out_logs"]
