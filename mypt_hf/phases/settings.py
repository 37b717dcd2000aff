"""A phase's settings: the data groups each phase reads, and ``parse_phase_args`` (YAML config + CLI overrides).

Every key of a phase's YAML config, and every ``--key value`` on its command line, is a field of one of: the
model (:class:`~mypt_hf.training.modeling.ModelArguments`), the common phase settings (:class:`PhaseArguments`,
which contains the preparation options of :class:`~mypt_hf.data.prepare.PrepareOptions` whole), the data groups
the phase reads (its ``PhaseInfo.settings``; ``lora`` is
:class:`~mypt_hf.training.lora.LoraArguments`, TRL's ``ModelConfig`` PEFT flags) or the trainer (:class:`~mypt_hf.training.config.MyPTSFTConfig`).
A key of none of them is an error naming it and the file.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..data.prepare import PrepareConfig, PrepareOptions
from ..errors import MyPTInputError
from ..training.config import MyPTSFTConfig
from ..training.lora import LoraArguments
from ..training.modeling import ModelArguments
from .registry import PhaseInfo, config_path, find_config, get_phase


def _share(value: float, name: str, upper_inclusive: bool = False) -> None:
    if not (0.0 <= value <= 1.0 if upper_inclusive else 0.0 <= value < 1.0):
        interval = "[0, 1]" if upper_inclusive else "[0, 1)"
        raise MyPTInputError(f"{name} must be in {interval}, got {value}", field=name)


@dataclass
class PhaseArguments(PrepareOptions):
    """Settings every phase reads: the preparation options (PrepareOptions; the split and packing seed is
    ``episode_seed``), the seed of the generators and the mix, the mix size and the gate."""

    episode_seed: int = field(default=42, metadata={"help": "Seed of the generators, the mix, the split and the "
                                                            "packing shuffle."})
    mix_target_size: Optional[int] = field(
        default=None, metadata={"help": "Rows of the mixed training set (shares of this size; None = phase default)."})
    gate_buckets: Optional[str] = field(default=None, metadata={"help": "Comma-separated gated buckets "
                                                                         "(default: the phase's)."})
    eval_batch_size: int = field(default=32, metadata={"help": "Batch size of the gate's generation."})
    fail_on_gate: bool = field(default=True, metadata={"help": "Exit 1 when the gate fails (the model is saved)."})
    check_red_lines: bool = field(
        default=True, metadata={"help": "Check the guide's red lines after the gate (a crossed one fails it with the "
                                        "verdict RED LINE); false only for smoke runs of a few steps."})


@dataclass
class CopyArguments:
    """Copy-pretraining rows (mypt_hf.data.copy_pretraining): the tiny base's data, and a replay of it that any
    phase can mix into its training rows."""

    copy_random_token_share: float = field(
        default=0.25, metadata={"help": "Share of random-token segments (the rest copy made-up phrases)."})
    copy_bare_share: float = field(
        default=0.0, metadata={"help": "Share of phrase copies without the leading space (first word re-tokenized, "
                                       "as in a chat reply)."})
    copy_framed_share: float = field(
        default=0.0, metadata={"help": "Share of phrase segments behind made-up lead words or quotes that the copy "
                                       "leaves out."})
    copy_replay_share: float = field(
        default=0.0, metadata={"help": "Share of the training rows that are copy-pretraining rows (replayed so "
                                       "fine-tuning keeps in-context copying; 0 = off, as the guide)."})

    def __post_init__(self) -> None:
        _share(self.copy_replay_share, "copy_replay_share")


@dataclass
class TinyBaseArguments:
    """The tiny base only: how many copy rows it trains on, its curriculum and its copy-probe gate."""

    copy_train_rows: int = field(default=16000, metadata={"help": "Copy-pretraining training rows."})
    copy_val_rows: int = field(default=256, metadata={"help": "Copy-pretraining validation rows."})
    copy_variants_start: float = field(
        default=0.0, metadata={"help": "Bare/framed copies only in the training rows after this fraction "
                                       "(a curriculum with train_sampling_strategy: sequential)."})
    copy_probe_phrases: int = field(default=60, metadata={"help": "Held-out phrases of the copy gate."})
    copy_probe_threshold: float = field(default=0.8, metadata={"help": "Copy gate threshold."})


@dataclass
class EchoArguments:
    """The echo generator (β, γ, and the β replay of 3a-2)."""

    echo_max_examples: Optional[int] = field(default=None, metadata={"help": "Cap on generated echo episodes."})
    echo_gibberish_words_en: int = field(default=300, metadata={"help": "Made-up English words of γ's echo data."})
    echo_gibberish_letters: bool = field(
        default=False, metadata={"help": "γ: letter-level made-up words (longer, more varied) instead of syllable pairs."})
    echo_max_target_tokens: int = field(default=4, metadata={"help": "γ: max tokens of a made-up word in a prompt."})


@dataclass
class OperatorArguments:
    """The operator generator (COPY / WRAP / EXTRACT) and the operator phase's mix."""

    operator_n_train: int = field(default=9000, metadata={"help": "Operator train episodes."})
    operator_n_val: int = field(default=1000, metadata={"help": "Operator validation episodes."})
    operator_max_tokens: int = field(default=12, metadata={"help": "Max payload tokens (operators)."})
    operator_word_dist: str = field(
        default="0.35,0.30,0.20,0.15", metadata={"help": "Shares of 1-, 2-, 3- and 4-word payloads (the original's "
                                                       "distribution by default)."})
    operator_novel_word_share: float = field(
        default=0.0, metadata={"help": "Share of operator payloads made mostly of made-up words (0 = word pools only)."})
    operator_bracket_contrast: bool = field(
        default=False, metadata={"help": "Add training phrasings where COPY verbs recur bracketed in WRAP, so only "
                                         "the brackets tell WRAP from COPY (off = the guide's phrasings)."})
    operator_format_replay_share: float = field(
        default=0.0, metadata={"help": "Share of α format-lock replay in the training mix (0 = operators only, as "
                                       "the guide)."})
    operator_echo_replay_share: float = field(
        default=0.0, metadata={"help": "Share of β echo replay (echo, anti-echo and contrast rows) in the training "
                                       "mix, so the final model keeps B and C (0 = none, as the guide)."})
    operator_anti_echo_replay_share: float = field(
        default=0.0, metadata={"help": "Share of γ's made-up-word anti-echo questions and contrast groups in the "
                                       "training mix, so quoted made-up payloads do not teach the final model to "
                                       "echo a question about a made-up word (0 = none, as the guide)."})
    operator_knowledge_replay_share: float = field(
        default=0.0, metadata={"help": "Share of 3a-2's format lock full (facts, math) in the training mix, so the "
                                       "final model keeps D (0 = none, as the guide)."})
    operator_paraphrase_replay_share: float = field(
        default=0.0, metadata={"help": "Share of 3a-2's knowledge paraphrases (capitals and sums in other forms) in "
                                       "the training mix (0 = none, as the guide)."})

    def __post_init__(self) -> None:
        from ..data.operators import parse_word_dist

        try:
            parse_word_dist(self.operator_word_dist, max_words=4)
        except MyPTInputError as error:
            raise MyPTInputError(error.message, field="operator_word_dist") from None
        names = ("operator_format_replay_share", "operator_echo_replay_share", "operator_anti_echo_replay_share",
                 "operator_knowledge_replay_share", "operator_paraphrase_replay_share")
        for name in names:
            _share(getattr(self, name), name)
        if sum(getattr(self, name) for name in names) >= 1.0:
            raise MyPTInputError("the operator phase's replay shares must leave room for operator episodes "
                                 f"(their sum is {sum(getattr(self, n) for n in names):g}, must be below 1)",
                                 field="operator_format_replay_share")

    def replay_shares(self) -> Dict[str, float]:
        """The replayed sources of the operator mix and their output shares (zero shares left out)."""
        shares = {"alpha_replay": self.operator_format_replay_share, "echo_replay": self.operator_echo_replay_share,
                  "anti_echo_replay": self.operator_anti_echo_replay_share,
                  "knowledge_replay": self.operator_knowledge_replay_share,
                  "paraphrase_replay": self.operator_paraphrase_replay_share}
        return {name: share for name, share in shares.items() if share}


# Format lock full's share of the 3a-2 mix (the guide's 70 %); knowledge paraphrases are taken out of it.
FORMAT_LOCK_FULL_SHARE_3A2 = 0.70


@dataclass
class KnowledgeArguments:
    """3a-2's knowledge data beyond format lock full (mypt_hf.data.paraphrases)."""

    knowledge_paraphrase_share: float = field(
        default=0.0, metadata={"help": "Share of the 3a-2 mix that asks format lock's capitals and sums in other "
                                       "forms (taken from format lock full's share; 0 = the guide's mix)."})

    def __post_init__(self) -> None:
        _share(self.knowledge_paraphrase_share, "knowledge_paraphrase_share")
        if self.knowledge_paraphrase_share >= FORMAT_LOCK_FULL_SHARE_3A2:
            raise MyPTInputError("knowledge_paraphrase_share is taken from format lock full's "
                                 f"{FORMAT_LOCK_FULL_SHARE_3A2:.0%} of the 3a-2 mix, so it must be below "
                                 f"{FORMAT_LOCK_FULL_SHARE_3A2:g} (got {self.knowledge_paraphrase_share:g})",
                                 field="knowledge_paraphrase_share")


SETTING_GROUPS: Dict[str, type] = {"copy": CopyArguments, "tiny_base": TinyBaseArguments, "echo": EchoArguments,
                                   "operator": OperatorArguments, "knowledge": KnowledgeArguments,
                                   "lora": LoraArguments}


@dataclass
class PhaseConfig:
    """Everything one phase run is configured with, one object per step: model, data, trainer."""

    phase: PhaseInfo
    model: ModelArguments
    data: PhaseArguments
    train: MyPTSFTConfig
    groups: Dict[str, Any]  # the phase's data groups by name ("copy", "echo", ...)
    config_file: Optional[Path] = None

    @property
    def lora(self) -> Optional[LoraArguments]:
        """The LoRA settings, None for a phase that reads none (the tiny base trains a fresh model fully)."""
        return self.groups.get("lora")

    def group(self, name: str) -> Any:
        """The data group ``name``; an error when this phase does not read it (a bug in the phase's steps)."""
        if name not in self.groups:
            raise KeyError(f"{self.phase.name} reads no {name!r} settings (PhaseInfo.settings)")
        return self.groups[name]

    def prepare_config(self) -> PrepareConfig:
        """The preparation options of this phase, seeded with its episode seed."""
        options = {f.name: getattr(self.data, f.name) for f in dataclasses.fields(PrepareOptions)}
        return PrepareConfig(**options, seed=self.data.episode_seed)


def argument_classes(phase: PhaseInfo) -> List[type]:
    """The dataclasses a phase's keys belong to, in parsing order."""
    return [ModelArguments, PhaseArguments, *(SETTING_GROUPS[name] for name in phase.settings), MyPTSFTConfig]


def phase_keys(phase: str) -> set:
    """Every config key the phase accepts."""
    return {f.name for cls in argument_classes(get_phase(phase)) for f in dataclasses.fields(cls)}


def load_yaml_config(path: Path) -> Dict[str, Any]:
    """A YAML mapping of keys to values; MyPTInputError naming the file otherwise."""
    import yaml

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise MyPTInputError(f"cannot read config: {error}", path=str(path), field="config") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise MyPTInputError("config must be a mapping of keys to values", path=str(path), field="config")
    return values


def parse_phase_args(phase: str, argv: Optional[Sequence[str]] = None) -> PhaseConfig:
    """Parse ``--config <yaml>`` (a path or a packaged config's name; default the packaged ``<phase>.yaml``)
    and the ``--key value`` overrides after it.

    Unknown keys in the YAML or on the command line, and bad values, are a MyPTInputError naming them.
    """
    from transformers import HfArgumentParser

    info = get_phase(phase)
    argv = list(sys.argv[1:] if argv is None else argv)
    config_file: Optional[Path] = None
    if "--config" in argv:
        at = argv.index("--config")
        if at + 1 >= len(argv):
            raise MyPTInputError("--config needs a file", field="config")
        config_file = find_config(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    elif config_path(info.name).is_file():
        config_file = config_path(info.name)
    classes = argument_classes(info)
    parser = HfArgumentParser(classes, prog=f"{info.name}")
    if config_file is not None:
        values = load_yaml_config(config_file)
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MyPTInputError(f"keys not used by phase {info.name}: {unknown}", path=str(config_file),
                                 field=unknown[0])
        prompts = values.get("eval_prompts_file")
        if prompts and not Path(prompts).is_absolute() and not Path(prompts).is_file():
            # a config names its eval prompts relative to itself (the packaged ones sit beside the YAMLs)
            values["eval_prompts_file"] = str(config_file.parent / prompts)
        parser.set_defaults(**values)
    try:
        parsed = parser.parse_args_into_dataclasses(argv)
    except ValueError as error:  # an unknown --key, or a value a dataclass refused
        if isinstance(error, MyPTInputError):
            raise
        raise MyPTInputError(str(error), path=None if config_file is None else str(config_file),
                             field="config") from None
    except SystemExit as error:  # argparse: a bad value (it printed the usage line)
        if error.code not in (0, None):
            raise MyPTInputError(f"bad arguments for phase {info.name}: {' '.join(argv)}", field="argv") from None
        raise
    model, data, *groups, train = parsed
    return PhaseConfig(phase=info, model=model, data=data, train=train,
                       groups=dict(zip(info.settings, groups)), config_file=config_file)


__all__ = ["PhaseArguments", "CopyArguments", "TinyBaseArguments", "EchoArguments", "OperatorArguments",
           "SETTING_GROUPS", "PhaseConfig", "argument_classes", "phase_keys", "load_yaml_config", "parse_phase_args"]
