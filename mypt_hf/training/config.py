"""MyPTSFTConfig: TRL's SFTConfig with the original MyPT SFT defaults and MyPT's extra knobs.

Defaults follow the original trainer (reference §6): AdamW betas (0.9, 0.95), weight decay 0.05 on
>=2-D non-embedding weights only (the grouping itself lives in the trainer), warmup then cosine decay to
10 % of the peak learning rate, gradient clipping 1.0, bf16 where the GPU supports it and fp32 elsewhere (an explicit
``bf16: true`` runs CPU bf16 autocast too).
The data arrives already tokenized, masked and packed (``mypt_hf.data.prepare``), so TRL's own dataset
preparation, packing and padding-free paths are switched off.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from transformers.trainer_utils import SchedulerType
from trl import SFTConfig

from ..errors import MyPTInputError
from .coverage import check_warmup_for_coverage
from .distributed import check_launch, settle_precision
from .tracking import TRACKIO_PROJECT, check_tracking_args

if TYPE_CHECKING:  # the metadata module imports nothing heavy, but only the annotation needs it
    from ..data.metadata import PreparedMetadata

logger = logging.getLogger(__name__)


def _bf16_supported() -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


@dataclass
class MyPTSFTConfig(SFTConfig):
    """SFTConfig with MyPT's defaults and fields.

    Extra fields: ``coverage`` (passes over the training rows; sets ``max_steps`` when it is not given),
    ``freeze_layers`` (freeze the first N decoder blocks), ``freeze_embeddings`` (token embedding and the
    tied head; works with RoPE), ``eval_prompts_file`` (JSON with a ``prompts`` {name: prompt} object, each
    generated greedily with and without the KV cache at every evaluation), ``eval_max_new_tokens`` and
    ``init_from_model`` (a saved model directory to start from).
    """

    # --- MyPT fields -------------------------------------------------------------------------------
    coverage: Optional[float] = field(
        default=None,
        metadata={"help": "Passes over the training rows (epochs of packed blocks). Sets max_steps from the prepared "
                          "dataset when max_steps is not given (-1)."})
    freeze_layers: int = field(default=0, metadata={"help": "Freeze the first N decoder blocks."})
    freeze_embeddings: bool = field(
        default=False, metadata={"help": "Freeze the token embedding (and the tied output head)."})
    eval_prompts_file: Optional[str] = field(
        default=None,
        metadata={"help": "JSON file with a 'prompts' {name: prompt} object (raw prompts ending in <myPT_assistant>, "
                          "or {'user': ...} objects); each is generated greedily with and without the KV cache at every "
                          "evaluation."})
    eval_max_new_tokens: int = field(default=64, metadata={"help": "New tokens per eval prompt."})
    init_from_model: Optional[str] = field(
        default=None, metadata={"help": "Saved model directory (save_pretrained layout) to fine-tune from."})

    # --- Defaults that differ from TRL / transformers -------------------------------------------
    learning_rate: float = field(default=7e-5, metadata={"help": "Peak learning rate."})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1."})
    adam_beta2: float = field(default=0.95, metadata={"help": "AdamW beta2 (MyPT uses 0.95)."})
    weight_decay: float = field(
        default=0.05, metadata={"help": "Weight decay on >=2-D non-embedding weights (none on norms/biases/embeddings)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    lr_scheduler_type: Union[SchedulerType, str] = field(default="cosine_with_min_lr", metadata={"help": "LR schedule."})
    lr_scheduler_kwargs: Union[dict, str, None] = field(
        default_factory=lambda: {"min_lr_rate": 0.1},
        metadata={"help": "Schedule kwargs; min_lr_rate 0.1 = cosine decay to 10% of the peak."})
    # TRL defaults gradient checkpointing on; small MyPT models do not need it and it costs time.
    activation_checkpointing: Optional[bool] = field(default=None, metadata={"help": "Activation checkpointing (default off)."})
    gradient_checkpointing: Optional[bool] = field(
        default=None, metadata={"help": "Deprecated alias of activation_checkpointing."})
    # None -> bf16 where the GPU supports it, fp32 on CPU (TRL's None means True and crashes on CPU);
    # True is honoured on CPU too (CPU bf16 autocast), switched off only on a GPU without bf16.
    bf16: Optional[bool] = field(
        default=None, metadata={"help": "bf16 mixed precision autocast (None = on GPUs that support it, fp32 on CPU; "
                                        "true also on CPU)."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    report_to: Union[None, str, List[str]] = field(
        default="none",
        metadata={"help": "Trackers to report to: none, tensorboard (<output_dir>/runs/<run_name>), trackio (local "
                          "store $TRACKIO_DIR, default $HF_HOME/trackio) or both (comma-separated); "
                          "pip install 'mypt_hf[tracking]'."})
    run_name: Optional[str] = field(
        default=None,
        metadata={"help": "Tracker run name (default with trackers on: the phase or output directory's name and the "
                          "UTC start time)."})
    project: str = field(default=TRACKIO_PROJECT, metadata={"help": "The trackio project the runs are filed under."})
    packing: bool = field(default=False, metadata={"help": "Must stay False: data is packed by mypt_hf.data.prepare."})
    padding_free: bool = field(default=False, metadata={"help": "Must stay False: the packing collator is used."})
    dataset_kwargs: Union[Dict[str, Any], str, None] = field(
        default_factory=lambda: {"skip_prepare_dataset": True},
        metadata={"help": "Kept at skip_prepare_dataset=True: datasets arrive prepared."})
    save_only_model: bool = field(default=False, metadata={"help": "Keep optimizer state in checkpoints (resume)."})

    def __post_init__(self) -> None:
        if self.bf16 is None:  # auto: bf16 on GPUs that have it, fp32 on CPU
            self.bf16 = _bf16_supported()
        elif self.bf16 and torch.cuda.is_available() and not _bf16_supported():
            # A GPU without bf16 (pre-Ampere) would make TrainingArguments raise; a bf16 config must not crash there.
            logger.warning("bf16 requested but this GPU does not support it; training in fp32.")
            self.bf16 = False
        elif self.bf16 and not torch.cuda.is_available():
            # An explicit bf16: true is honoured on CPU: torch's CPU autocast runs bf16 (fp32 weights, bf16
            # matmuls), so the path the GPU run takes executes here too (the 750M configs on a CPU rehearsal).
            logger.warning("bf16: true on CPU: training under CPU bf16 autocast, much slower than fp32 on a CPU "
                           "without native bf16 (AVX512-BF16 / AMX); bf16: null trains in fp32 on CPU.")
        if self.fp16 and not torch.cuda.is_available():
            logger.warning("fp16 requested without CUDA; training in fp32.")
            self.fp16 = False
        if not torch.cuda.is_available():
            self.use_cpu = True
        if self.packing or self.padding_free:
            raise MyPTInputError("MyPTSFTConfig: packing/padding_free must be False; pack with mypt_hf.data.prepare "
                                 "(--pack_block_size) and the PackedEpisodeCollator instead", field="packing")
        kwargs = dict(self.dataset_kwargs or {})
        kwargs["skip_prepare_dataset"] = True
        self.dataset_kwargs = kwargs
        if self.freeze_layers < 0:
            raise MyPTInputError(f"freeze_layers must be >= 0, got {self.freeze_layers}", field="freeze_layers")
        if self.coverage is not None and self.coverage <= 0:
            raise MyPTInputError(f"coverage must be > 0, got {self.coverage}", field="coverage")
        self._check_ranges()
        if isinstance(self.report_to, str) and "," in self.report_to:  # --report_to tensorboard,trackio
            self.report_to = [name.strip() for name in self.report_to.split(",") if name.strip()]
        super().__post_init__()
        check_tracking_args(self)  # after transformers has made report_to a list
        # Every recipe, `mypt-hf train` and `run-phases` build their arguments here: the launch is checked before
        # any data is generated or any model loaded, and the launcher's mixed_precision cannot override bf16/fp16.
        settle_precision(self)
        check_launch(self)

    def _check_ranges(self) -> None:
        """Refuse the numbers the Trainer would crash on mid-run or silently reinterpret (a negative max_steps
        means "train by epochs" to it, a zero batch size crashes the sampler after the output dir exists)."""
        if self.max_steps is not None and self.max_steps != -1 and self.max_steps < 1:
            raise MyPTInputError(f"must be >= 1 (or -1: epochs / coverage decide), got {self.max_steps}",
                                 field="max_steps")
        at_least_one = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                        "eval_max_new_tokens")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise MyPTInputError(f"must be >= 1, got {getattr(self, name)}", field=name)
        positive = ("learning_rate", "num_train_epochs")
        for name in positive:
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise MyPTInputError(f"must be a number > 0, got {value}", field=name)
        non_negative = ("weight_decay", "warmup_steps", "max_grad_norm", "adam_epsilon")
        for name in non_negative:
            value = getattr(self, name, None)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise MyPTInputError(f"must be a number >= 0, got {value}", field=name)
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise MyPTInputError(f"must be in [0, 1), got {value}", field=name)
        for name in ("logging_steps", "eval_steps", "save_steps"):
            value = getattr(self, name, None)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise MyPTInputError(f"must be > 0 (a step count, or a fraction of the run below 1), got {value}",
                                     field=name)

    def steps_for_coverage(self, num_train_rows: int, world_size: Optional[int] = None) -> int:
        """Optimizer steps for ``coverage`` passes over ``num_train_rows`` rows at the global batch size."""
        if self.coverage is None:
            raise ValueError("coverage is not set")
        world = world_size if world_size is not None else max(1, self.world_size)
        global_batch = self.per_device_train_batch_size * self.gradient_accumulation_steps * world
        return max(1, math.ceil(self.coverage * num_train_rows / global_batch))


def _unwrap_optional(hint: Any) -> Any:
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if typing.get_origin(hint) is Union and len(args) == 1:
        return args[0]
    return hint


_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")


def _typed_value(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` (int, float or bool) wants it; ValueError when it cannot be read as one.

    Strings are read the way the command line reads them (a YAML ``1e-4`` arrives as the string "1e-4").
    """
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("true or false")
    if hint is int:
        if isinstance(value, bool):
            raise ValueError("a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError("a whole number")
    if hint is float:
        if isinstance(value, bool):
            raise ValueError("a number")
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ValueError("a number") from None
        else:
            raise ValueError("a number")
        if not math.isfinite(number):
            raise ValueError("a finite number")
        return number
    return value


def typed_config_values(values: Mapping[str, Any], dataclass_types: Sequence[type]) -> Dict[str, Any]:
    """``values`` (a config file's keys) with each int / float / bool field converted as the command line would
    convert it; a value that is not one is a MyPTInputError naming the key and the type it needs.

    ``HfArgumentParser.parse_dict`` passes values through unchecked, so ``learning_rate: fast`` would reach
    the optimizer and crash there, after the output directory was made. Other field types (enums, unions,
    lists) are left to the dataclasses' own checks.
    """
    hints: Dict[str, Any] = {}
    optional: Dict[str, bool] = {}
    for cls in dataclass_types:
        resolved = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.init and f.name not in hints:
                hint = resolved[f.name]
                hints[f.name] = _unwrap_optional(hint)
                optional[f.name] = type(None) in typing.get_args(hint)
    out: Dict[str, Any] = {}
    for key, value in values.items():
        hint = hints.get(key)
        if hint is None or (value is None and optional.get(key)) or isinstance(hint, type) and issubclass(hint, enum.Enum):
            out[key] = value
            continue
        try:
            out[key] = _typed_value(value, hint)
        except ValueError as error:
            raise MyPTInputError(f"must be {error}, got {value!r}", field=key) from None
    return out


def resolve_max_steps(args: MyPTSFTConfig, metadata: Optional[PreparedMetadata],
                      num_train_rows: Optional[int] = None) -> int:
    """Set ``args.max_steps`` from ``args.coverage`` and the prepared dataset when ``max_steps`` is not given.

    The training-row count comes from the prepared dataset's metadata (``metadata.train_rows``), else from
    ``num_train_rows``. Returns the resulting max_steps (-1 = epochs decide). A fixed warmup that is not below the
    derived steps is refused (:func:`~mypt_hf.training.coverage.check_warmup_for_coverage`).
    """
    if args.max_steps is not None and args.max_steps > 0:
        return args.max_steps
    if args.coverage is None:
        return args.max_steps
    rows = metadata.train_rows if metadata is not None else None
    if rows is None:
        rows = num_train_rows
    if not rows:
        raise MyPTInputError("cannot derive max_steps from coverage: the prepared dataset metadata has no training-row "
                             "count and no dataset was given", field="coverage")
    steps = args.steps_for_coverage(int(rows))
    check_warmup_for_coverage(args, steps)  # before max_steps changes: a refused run leaves args as they were
    args.max_steps = steps
    return args.max_steps
