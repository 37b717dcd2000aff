"""The Phase 3a phases: their order, what each starts from, what gates it, which settings it reads, and where
the configs that ship with the package are.

Light on purpose (no torch, no transformers): the CLI lists phases and resolves names from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import MyPTInputError


@dataclass(frozen=True)
class PhaseInfo:
    """A phase's place in the chain, its gate and the groups of data settings it reads.

    ``settings`` names the groups in :mod:`mypt_hf.phases.settings` besides the common ``PhaseArguments``:
    ``copy`` (copy-pretraining rows: the tiny base's data and any phase's copy replay), ``tiny_base``,
    ``echo``, ``operator`` and ``lora`` (TRL's LoRA flags; every phase that fine-tunes a trained model, so not the
    tiny base). A config or override key of a group the phase does not read is an error.
    """

    name: str
    title: str
    previous: Optional[str]
    gated: Tuple[str, ...]
    settings: Tuple[str, ...] = ("copy", "lora")
    gate_kind: str = "suite"  # "suite": the sft_eval_suite buckets; "copy": the copy probe (tiny base)


PHASES: Dict[str, PhaseInfo] = {
    # Stands in for the pretrained base the 750M recipes start from (a chain given --init_from_model skips it).
    "tiny_base": PhaseInfo("tiny_base", "Tiny base: in-context copy pretraining (no chat format)", None, ("copy",),
                           settings=("copy", "tiny_base"), gate_kind="copy"),
    "phase3a1_alpha": PhaseInfo("phase3a1_alpha", "Phase 3a-1α: format lock (minimal, no math)", "tiny_base",
                                ("A", "B")),
    "phase3a1_beta": PhaseInfo("phase3a1_beta", "Phase 3a-1β: echo (no gibberish) + α replay", "phase3a1_alpha",
                               ("A", "B", "C"), settings=("copy", "echo", "lora")),
    "phase3a1_gamma": PhaseInfo("phase3a1_gamma", "Phase 3a-1γ: BPE-safe gibberish echo + β + α replay",
                                "phase3a1_beta", ("A", "B", "C"), settings=("copy", "echo", "lora")),
    "phase3a2": PhaseInfo("phase3a2", "Phase 3a-2: format lock full with math + β + α replay", "phase3a1_gamma",
                          ("A", "B", "C", "D"), settings=("copy", "echo", "knowledge", "lora")),
    "phase3a_operator": PhaseInfo("phase3a_operator", "Phase 3a operators: COPY / WRAP / EXTRACT", "phase3a2",
                                  ("A", "E"), settings=("copy", "echo", "operator", "lora")),
}
CHAIN: Tuple[str, ...] = tuple(PHASES)  # chain order
BASE_PHASE = "tiny_base"  # trains a fresh model; a chain given --init_from_model (a real base) skips it
# short names accepted by --phases (the full names always work)
ALIASES = {
    "base": "tiny_base",
    "alpha": "phase3a1_alpha", "3a1_alpha": "phase3a1_alpha", "3a-1_alpha": "phase3a1_alpha",
    "beta": "phase3a1_beta", "3a1_beta": "phase3a1_beta", "3a-1_beta": "phase3a1_beta",
    "gamma": "phase3a1_gamma", "3a1_gamma": "phase3a1_gamma", "3a-1_gamma": "phase3a1_gamma",
    "3a2": "phase3a2", "3a-2": "phase3a2",
    "operator": "phase3a_operator", "operators": "phase3a_operator", "op": "phase3a_operator",
    "3a_operator": "phase3a_operator",
}
SHORT_NAMES = ("base", "alpha", "beta", "gamma", "3a2", "operator")


def get_phase(name: str) -> PhaseInfo:
    """The phase called ``name`` (full or short name); MyPTInputError naming the choices otherwise."""
    lower = name.strip().lower()
    full = lower if lower in PHASES else ALIASES.get(lower) or ALIASES.get(lower.removeprefix("phase"))
    if full is None:
        raise MyPTInputError(f"unknown phase {name!r}; choose from {', '.join(CHAIN)} (or {', '.join(SHORT_NAMES)})",
                             field="phases")
    return PHASES[full]


def resolve_phases(phases: Optional[Sequence[str] | str], init_from_model: Optional[str] = None) -> List[str]:
    """Phase names (full or short, comma-separated or a list) → full names in chain order, no repeats.

    No ``phases``: the whole chain, without the tiny base when ``init_from_model`` names a starting model."""
    if phases is None:
        return [name for name in CHAIN if not (init_from_model and name == BASE_PHASE)]
    if isinstance(phases, str):
        phases = phases.split(",")
    chosen = {get_phase(raw).name for raw in phases if raw.strip()}
    if not chosen:
        raise MyPTInputError("no phase chosen", field="phases")
    if init_from_model and BASE_PHASE in chosen:
        raise MyPTInputError(f"{BASE_PHASE} trains a fresh model: leave it out of --phases when --init_from_model "
                             "gives the starting model", field="phases")
    return [name for name in CHAIN if name in chosen]


# ---- the configs shipped inside the package -----------------------------------------------------------------
def packaged_config_dir() -> Path:
    """The directory of the YAML configs (and eval prompt files) installed with the package."""
    return Path(str(resources.files("mypt_hf.phases") / "configs"))


def config_path(phase: str, suffix: str = "", config_dir: Optional[Path] = None) -> Path:
    """``<config_dir>/<phase><suffix>.yaml`` (default: the packaged configs); not checked for existence."""
    return Path(config_dir or packaged_config_dir()) / f"{phase}{suffix}.yaml"


def find_config(spec: str) -> Path:
    """A ``--config`` value: a YAML path, or the name of a packaged config (``phase3a1_alpha_750M``, with or
    without ``.yaml``). MyPTInputError when it is neither."""
    path = Path(spec)
    if path.is_file():
        return path
    packaged = packaged_config_dir() / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and packaged.is_file():
        return packaged
    names = sorted(p.stem for p in packaged_config_dir().glob("*.yaml"))
    raise MyPTInputError(f"config file not found (packaged configs: {', '.join(names)})", path=spec, field="config")


__all__ = ["PhaseInfo", "PHASES", "CHAIN", "BASE_PHASE", "ALIASES", "SHORT_NAMES", "get_phase", "resolve_phases",
           "packaged_config_dir", "config_path", "find_config"]
