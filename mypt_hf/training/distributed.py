"""Check that the launch matches the distributed state the trainer will run with, before any data or step.

Three ways a launch can silently do something other than what its command line says (issue 18 item 2):

- Several processes started (``WORLD_SIZE`` from torchrun / ``accelerate launch``) but the state the trainer
  sees (``TrainingArguments.world_size``, accelerate's ``PartialState``) has one: every process trains alone on
  all the data and all write the same output directory. Refused.
- An accelerate FSDP config (``ACCELERATE_USE_FSDP=true``) on processes where accelerate does not wire FSDP:
  ``AcceleratorState`` turns only multi-accelerator states (MULTI_GPU, MULTI_XPU, ...) into FSDP
  (accelerate 1.16 state.py:947-974, the ``DistributedType.MULTI_GPU ... ACCELERATE_USE_FSDP`` branch), so on
  CPU (MULTI_CPU) the run is plain DDP. Refused: a run that asked for sharding must not quietly hold every weight on every rank
  and report itself as FSDP; on CPU the DDP launch says what it does (recipes/accelerate/cpu_ddp.yaml).
- The launcher's ``mixed_precision`` (exported as ``ACCELERATE_MIXED_PRECISION``) disagreeing with the config's
  ``bf16`` / ``fp16``: TrainingArguments takes the environment's value when neither is set, so a GPU yaml on a
  CPU trained under bf16 autocast while ``bf16`` said False and the model card said fp32. The config wins,
  with a warning; ``args.mixed_precision`` (which the Trainer hands to its Accelerator) then says what runs.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Optional

from ..errors import MyPTInputError

logger = logging.getLogger(__name__)

#: The launch line that really synchronises several CPU processes (gloo); named in the refusals.
CPU_LAUNCH_LINE = ("accelerate launch --config_file recipes/accelerate/cpu_ddp.yaml <recipe or mypt-hf script> ... "
                   "(or: torchrun --nproc_per_node 2 <script> ...)")

# accelerate's AcceleratorState makes FSDP out of these partial-state types only (the multi-device branch of
# AcceleratorState.__init__ in accelerate/state.py); names, so an accelerate without one of them still imports.
_FSDP_CAPABLE = ("MULTI_GPU", "MULTI_MLU", "MULTI_SDAA", "MULTI_MUSA", "MULTI_NPU", "MULTI_XPU", "MULTI_HPU",
                 "MULTI_NEURON")


def launcher_world_size(environ: Optional[Mapping[str, str]] = None) -> int:
    """How many processes the launcher says it started (``WORLD_SIZE``; 1 when unset or unreadable)."""
    environ = os.environ if environ is None else environ
    try:
        return max(1, int(environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def config_precision(args: Any) -> str:
    """The mixed precision ``args`` asks for: ``"bf16"``, ``"fp16"`` or ``"no"`` (accelerate's names)."""
    if getattr(args, "bf16", False):
        return "bf16"
    if getattr(args, "fp16", False):
        return "fp16"
    return "no"


def settle_precision(args: Any, environ: Optional[Mapping[str, str]] = None) -> str:
    """Make ``args.mixed_precision`` (what the Trainer gives its Accelerator) follow ``bf16`` / ``fp16`` only.

    A launcher-set ``ACCELERATE_MIXED_PRECISION`` that disagrees is overridden with a warning naming both
    values, rather than refused: the shipped GPU yamls say bf16, and a config that chose fp32 (or a CPU) must
    still run under them. Returns the precision that will run.
    """
    environ = os.environ if environ is None else environ
    wanted = config_precision(args)
    launcher = environ.get("ACCELERATE_MIXED_PRECISION")
    if launcher is not None and launcher.lower() != wanted:
        logger.warning("the launcher set mixed_precision=%s (ACCELERATE_MIXED_PRECISION) but the config says "
                       "bf16=%s, fp16=%s: training with mixed_precision=%s (precision comes from the config's "
                       "bf16 / fp16 only)", launcher, getattr(args, "bf16", None), getattr(args, "fp16", None),
                       wanted)
    args.mixed_precision = wanted
    return wanted


def check_launch(args: Any, environ: Optional[Mapping[str, str]] = None) -> None:
    """Refuse (MyPTInputError, exit 2) a launch whose processes would not train together as launched.

    ``args`` is the TrainingArguments the trainer will use; its ``world_size`` and ``distributed_state`` are
    only read when the launcher started several processes or asked for FSDP, so a plain ``python`` run sets
    up no devices here.
    """
    environ = os.environ if environ is None else environ
    launched = launcher_world_size(environ)
    fsdp_asked = environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if launched <= 1 and not fsdp_asked:
        return
    seen = int(args.world_size)  # sets up the distributed state (the process group) the trainer will use
    state = getattr(args, "distributed_state", None)
    kind = getattr(getattr(state, "distributed_type", None), "name", str(getattr(state, "distributed_type", "?")))
    if launched > 1 and seen != launched:
        raise MyPTInputError(
            f"the launcher started {launched} processes (WORLD_SIZE={launched}, LOCAL_RANK="
            f"{environ.get('LOCAL_RANK', 'unset')}) but the trainer's distributed state has {seen} "
            f"({kind}): each process would train alone on all the data and write the same output_dir. "
            f"On CPU launch with: {CPU_LAUNCH_LINE}", field="WORLD_SIZE")
    if fsdp_asked and kind not in _FSDP_CAPABLE:
        raise MyPTInputError(
            f"an accelerate FSDP config was launched (ACCELERATE_USE_FSDP=true) but these processes run as {kind}, "
            "for which accelerate does not set up FSDP (only multi-GPU-type states become FSDP, accelerate/state.py): "
            "the run would silently be DDP with every weight on every rank. Use FSDP on GPUs; on CPU launch "
            f"DDP openly with: {CPU_LAUNCH_LINE}", field="ACCELERATE_USE_FSDP")


__all__ = ["CPU_LAUNCH_LINE", "launcher_world_size", "config_precision", "settle_precision", "check_launch"]
