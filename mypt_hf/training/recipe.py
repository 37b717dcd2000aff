"""The phase recipe runner: parse config → (recipe generates + mixes episodes) → prepare → train → gate → save.

A recipe file (``recipes/phase3a*.py``) only builds its episodes; :class:`PhaseRun` does the rest with
library calls, so ``python recipes/X.py`` and ``accelerate launch recipes/X.py`` behave the same::

    run = PhaseRun.from_argv("phase3a1_alpha", argv)          # --config yaml + CLI overrides
    episodes = format_lock(mode="minimal", math="exclude", seed=run.data.episode_seed)
    run.prepare(episodes, sources=[...])                        # tokenize, mask, pack (mypt_hf.data.prepare)
    run.train()                                                 # MyPTSFTTrainer
    run.gate()                                                  # run_eval_suite, phase buckets gated
    return run.save()                                           # model card, plots, exit status

Output directory (``--output_dir``): the Hub-style model (safetensors, tokenizer with chat template,
generation_config), ``README.md`` (model card), ``loss.png``, ``gates.png``, ``gate_report.json``,
``data/`` (the prepared dataset) and the trainer's ``checkpoint-*`` folders (for ``--resume_from_checkpoint``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import GateFailure, MyPTInputError
from .config import MyPTSFTConfig
from .modeling import ModelArguments

logger = logging.getLogger(__name__)

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


@dataclass(frozen=True)
class PhaseInfo:
    """A phase's place in the chain and its gate."""

    name: str
    title: str
    previous: Optional[str]
    gated: Tuple[str, ...]
    gate_kind: str = "suite"  # "suite": the sft_eval_suite buckets; "copy": the copy probe (tiny base)


PHASES: Dict[str, PhaseInfo] = {
    # Stands in for the pretrained base the 750M recipes start from (a chain given --init_from_model skips it).
    "tiny_base": PhaseInfo("tiny_base", "Tiny base: in-context copy pretraining (no chat format)", None, ("copy",),
                           gate_kind="copy"),
    "phase3a1_alpha": PhaseInfo("phase3a1_alpha", "Phase 3a-1α: format lock (minimal, no math)", "tiny_base",
                                ("A", "B")),
    "phase3a1_beta": PhaseInfo("phase3a1_beta", "Phase 3a-1β: echo (no gibberish) + α replay", "phase3a1_alpha",
                               ("A", "B", "C")),
    "phase3a1_gamma": PhaseInfo("phase3a1_gamma", "Phase 3a-1γ: BPE-safe gibberish echo + β + α replay",
                                "phase3a1_beta", ("A", "B", "C")),
    "phase3a2": PhaseInfo("phase3a2", "Phase 3a-2: format lock full with math + β + α replay", "phase3a1_gamma",
                          ("A", "B", "C", "D")),
    "phase3a_operator": PhaseInfo("phase3a_operator", "Phase 3a operators: COPY / WRAP / EXTRACT", "phase3a2",
                                  ("A", "E")),
}


@dataclass
class DataArguments:
    """Data generation, mixing, preparation and gate settings of a phase recipe."""

    episode_seed: int = field(default=42, metadata={"help": "Seed of the generators, the mix and the split."})
    mix_target_size: Optional[int] = field(
        default=None, metadata={"help": "Rows of the mixed training set (shares of this size; None = phase default)."})
    val_split: float = field(default=0.1, metadata={"help": "Validation share when the phase has no val set."})
    enable_packing: bool = field(default=True, metadata={"help": "Pack whole episodes into blocks."})
    pack_block_size: int = field(default=256, metadata={"help": "Packed block length (tokens)."})
    pack_by_field: Optional[str] = field(default=None, metadata={"help": "Pack only episodes sharing this field "
                                                                          "(e.g. _meta.operator)."})
    operator_n_train: int = field(default=9000, metadata={"help": "Operator train episodes."})
    operator_n_val: int = field(default=1000, metadata={"help": "Operator validation episodes."})
    operator_max_tokens: int = field(default=12, metadata={"help": "Max payload tokens (operators)."})
    operator_novel_word_share: float = field(
        default=0.0, metadata={"help": "Share of operator payloads made mostly of made-up words (0 = word pools only)."})
    operator_bracket_contrast: bool = field(
        default=False, metadata={"help": "Operators: add training phrasings where COPY verbs recur bracketed in WRAP, "
                                         "so only the brackets tell WRAP from COPY (off = the guide's phrasings)."})
    operator_format_replay_share: float = field(
        default=0.0, metadata={"help": "Operators: share of α format-lock replay in the training mix (0 = operators "
                                       "only, as the guide)."})
    echo_max_examples: Optional[int] = field(default=None, metadata={"help": "Cap on generated echo episodes."})
    echo_gibberish_words_en: int = field(default=300, metadata={"help": "Made-up English words of γ's echo data."})
    echo_gibberish_letters: bool = field(
        default=False, metadata={"help": "γ: letter-level made-up words (longer, more varied) instead of syllable pairs."})
    echo_max_target_tokens: int = field(default=4, metadata={"help": "γ: max tokens of a made-up word in a prompt."})
    copy_train_rows: int = field(default=16000, metadata={"help": "Tiny base: copy-pretraining training rows."})
    copy_val_rows: int = field(default=256, metadata={"help": "Tiny base: copy-pretraining validation rows."})
    copy_random_token_share: float = field(
        default=0.25, metadata={"help": "Tiny base: share of random-token segments (the rest copy made-up phrases)."})
    copy_bare_share: float = field(
        default=0.0, metadata={"help": "Tiny base: share of phrase copies without the leading space (first word "
                                       "re-tokenized, as in a chat reply)."})
    copy_framed_share: float = field(
        default=0.0, metadata={"help": "Tiny base: share of phrase segments behind made-up lead words or quotes "
                                       "that the copy leaves out."})
    copy_variants_start: float = field(
        default=0.0, metadata={"help": "Tiny base: bare/framed copies only in the training rows after this fraction "
                                       "(a curriculum with train_sampling_strategy: sequential)."})
    copy_replay_share: float = field(
        default=0.0, metadata={"help": "Share of the training rows that are copy-pretraining rows (the tiny base's "
                                       "data with the copy_* settings above, replayed so fine-tuning keeps in-context "
                                       "copying; 0 = off, as the guide)."})
    copy_probe_phrases: int = field(default=60, metadata={"help": "Tiny base: held-out phrases of the copy gate."})
    copy_probe_threshold: float = field(default=0.8, metadata={"help": "Tiny base: copy gate threshold."})
    gate_buckets: Optional[str] = field(default=None, metadata={"help": "Comma-separated gated buckets "
                                                                         "(default: the phase's)."})
    eval_batch_size: int = field(default=32, metadata={"help": "Batch size of the gate's generation."})
    fail_on_gate: bool = field(default=True, metadata={"help": "Exit 1 when the gate fails (the model is saved)."})
    overwrite: bool = field(default=True, metadata={"help": "Replace an existing output directory's model files."})


def parse_phase_args(phase: str, argv: Optional[Sequence[str]] = None
                     ) -> Tuple[ModelArguments, DataArguments, MyPTSFTConfig]:
    """Parse ``--config <yaml>`` (default ``recipes/configs/<phase>.yaml``) and CLI overrides.

    Unknown keys in the YAML or on the command line are a MyPTInputError naming them.
    """
    from trl import TrlParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" not in argv:
        default = RECIPES_DIR / "configs" / f"{phase}.yaml"
        if default.is_file():
            argv = ["--config", str(default), *argv]
    if "--config" in argv:
        config_path = argv[argv.index("--config") + 1]
        if not Path(config_path).is_file():
            raise MyPTInputError("config file not found", path=config_path, field="config")
    parser = TrlParser((ModelArguments, DataArguments, MyPTSFTConfig))
    try:
        model_args, data_args, train_args = parser.parse_args_and_config(argv)
    except ValueError as error:
        raise MyPTInputError(str(error), field="config") from None
    except SystemExit as error:  # argparse: unknown CLI flag or bad value
        if error.code not in (0, None):
            raise MyPTInputError(f"bad arguments: {' '.join(argv)}", field="argv") from None
        raise
    for name in ("operator_format_replay_share", "copy_replay_share"):
        share = getattr(data_args, name)
        if not 0.0 <= share < 1.0:  # checked here, before a model is loaded or data generated
            raise MyPTInputError(f"{name} must be in [0, 1), got {share}", field=name)
    prompts = train_args.eval_prompts_file
    if prompts and not Path(prompts).is_file() and (RECIPES_DIR.parent / prompts).is_file():
        # configs name repo-relative files; resolve them when the recipe runs from another directory
        train_args.eval_prompts_file = str(RECIPES_DIR.parent / prompts)
    return model_args, data_args, train_args


def default_init_from_model(phase: str, output_dir: str) -> Optional[Path]:
    """The previous phase's output directory: a sibling of this phase's output directory."""
    previous = PHASES[phase].previous
    if previous is None:
        return None
    return Path(output_dir).resolve().parent / previous


def apply_gates(report: Dict[str, Any], gated: Sequence[str]) -> Dict[str, Any]:
    """Mark only ``gated`` buckets (letters or names) as gating and recompute the overall verdict."""
    from ..evaluation.suite import resolve_buckets

    names = set(resolve_buckets(list(gated)))
    for name, bucket in report["buckets"].items():
        bucket["gated"] = name in names
    report["passed"] = all(b["verdict"] == "PASS" for b in report["buckets"].values() if b["gated"])
    report["gated_buckets"] = [n for n in report["buckets"] if n in names]
    return report


def source_row(name: str, dataset: Any, share: Optional[float] = None, settings: str = "") -> Dict[str, Any]:
    """A row of the model card's data table."""
    return {"name": name, "rows": len(dataset), "share": share, "settings": settings}


@dataclass(frozen=True)
class MixPart:
    """One source of a phase's mix: ``name`` goes into ``_meta.mix_source``, ``label`` and ``settings``
    into the model card's data table, ``share`` is its share of the mixed output."""

    name: str
    label: str
    episodes: Any
    share: float
    settings: str = ""


class PhaseRun:
    """One phase: arguments, model, tokenizer, prepared data, trainer, gate report."""

    def __init__(self, phase: str, model_args: ModelArguments, data_args: DataArguments,
                 train_args: MyPTSFTConfig) -> None:
        if phase not in PHASES:
            raise MyPTInputError(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}", field="phase")
        self.started = time.perf_counter()
        self.phase = PHASES[phase]
        self.model_args, self.data, self.args = model_args, data_args, train_args
        self.output_dir = Path(train_args.output_dir)
        self.sources: List[Dict[str, Any]] = []
        self.report: Optional[Dict[str, Any]] = None
        self.trainer = None
        self.timings: Dict[str, float] = {}
        self._saved_model: Any = None  # the full saved model that rank 0 evaluates under FSDP
        self._load_model()

    @classmethod
    def from_argv(cls, phase: str, argv: Optional[Sequence[str]] = None) -> "PhaseRun":
        """Parse arguments (see :func:`parse_phase_args`) and load the starting model."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        return cls(phase, *parse_phase_args(phase, argv))

    # ---- model -------------------------------------------------------------------------------------
    def _load_model(self) -> None:
        from .modeling import build_fresh_model, load_model_for_training

        init = self.args.init_from_model
        if init is None and self.model_args.require_init_from_model:
            raise MyPTInputError("this config fine-tunes a converted MyPT base model: pass --init_from_model <dir> "
                                 "(see `mypt-hf convert`)", field="init_from_model")
        if init is None and self.phase.previous is not None:
            init = default_init_from_model(self.phase.name, str(self.output_dir))
            if not Path(init).is_dir():
                raise MyPTInputError(f"no starting model: the previous phase's output is missing; run "
                                     f"{self.phase.previous} first or pass --init_from_model",
                                     path=str(init), field="init_from_model")
            self.args.init_from_model = str(init)
        if init is not None:
            self.model, self.tokenizer = load_model_for_training(init, dropout=self.model_args.dropout)
            self._print(f"starting from {init}")
        else:
            self.model, self.tokenizer = build_fresh_model(self.model_args, seed=self.args.seed)
            n = sum(p.numel() for p in self.model.parameters())
            self._print(f"fresh model: {self.model_args.num_hidden_layers} layers x {self.model_args.hidden_size} "
                        f"wide, {n / 1e6:.2f}M parameters, tokenizer {self.model_args.tokenizer} ({len(self.tokenizer)})")

    def _print(self, message: str) -> None:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"[{self.phase.name}] {message}", flush=True)

    # ---- data --------------------------------------------------------------------------------------
    def prepare(self, train_episodes: Any, val_episodes: Any = None,
                sources: Optional[Sequence[Mapping[str, Any]]] = None) -> Tuple[Any, Dict[str, Any]]:
        """Tokenize, mask and pack the episodes into ``<output_dir>/data`` (mypt_hf.data.prepare)."""
        from ..data.prepare import prepare_dataset

        return self._write_data(lambda: prepare_dataset(
            train_episodes, self.tokenizer, val_file=val_episodes,
            val_split=self.data.val_split if val_episodes is None else 0.0, enable_packing=self.data.enable_packing,
            pack_block_size=self.data.pack_block_size, pack_by_field=self.data.pack_by_field,
            seed=self.data.episode_seed, verbose=True), sources)

    def use_dataset(self, dataset: Any, metadata: Dict[str, Any],
                    sources: Optional[Sequence[Mapping[str, Any]]] = None) -> Tuple[Any, Dict[str, Any]]:
        """Save an already tokenized ``(DatasetDict, metadata)`` (prepared layout) to ``<output_dir>/data`` and
        train on it, as :meth:`prepare` does for episodes (e.g. the tiny base's copy-pretraining rows)."""
        return self._write_data(lambda: (dataset, metadata), sources)

    def _write_data(self, build: Any, sources: Optional[Sequence[Mapping[str, Any]]]) -> Tuple[Any, Dict[str, Any]]:
        """On rank 0: ``build()`` the prepared ``(DatasetDict, metadata)``, add the copy replay when configured, save
        it to ``<output_dir>/data`` with ``data_sources.json``; sync ranks; load it on every rank."""
        from ..data.prepare import load_prepared, save_prepared
        from ..io_utils import write_json

        t0 = time.perf_counter()
        self.sources = [dict(s) for s in (sources or [])]
        data_dir = self.output_dir / "data"
        if int(os.environ.get("RANK", "0")) == 0:
            dataset, metadata = build()
            if self.data.copy_replay_share:
                dataset, metadata = self._add_copy_replay(dataset, metadata)
            save_prepared(dataset, metadata, data_dir, overwrite=True)
            self._print(f"saved {data_dir}")
            write_json(self.output_dir / "data_sources.json", self.sources)
        self._barrier()
        self.dataset, self.metadata = load_prepared(data_dir)
        self.timings["data_s"] = time.perf_counter() - t0
        return self.dataset, self.metadata

    def _add_copy_replay(self, dataset: Any, metadata: Dict[str, Any]) -> Tuple[Any, Dict[str, Any]]:
        """Mix copy-pretraining rows into the prepared data (``copy_replay_share``) and add their row to the
        model card's data table."""
        from ..data.copy_pretraining import add_copy_replay

        data = self.data
        dataset, metadata = add_copy_replay(
            dataset, metadata, self.tokenizer, data.copy_replay_share, seed=data.episode_seed,
            random_token_share=data.copy_random_token_share, bare_share=data.copy_bare_share,
            framed_share=data.copy_framed_share)
        replay, n_train = metadata["copy_replay"], len(dataset["train"])
        self._print(f"copy replay: {replay['rows']} copy-pretraining rows added "
                    f"({data.copy_replay_share:.0%} of {n_train} training rows)")
        self.sources.append({
            "name": "copy_replay", "rows": replay["rows"], "share": data.copy_replay_share,
            "settings": (f"tiny-base copy rows of {replay['block_size']} tokens ({data.copy_random_token_share:.0%} "
                         f"random-token repeats, {data.copy_bare_share:.0%} bare and {data.copy_framed_share:.0%} "
                         f"framed copies): {data.copy_replay_share:.0%} of the {n_train} packed training rows")})
        return dataset, metadata

    def prepare_mix(self, parts: Sequence[MixPart], default_size: int) -> Tuple[Any, Dict[str, Any]]:
        """Mix ``parts`` by their shares (``mix_target_size`` rows, else ``default_size``), shuffled with the
        episode seed, and prepare the result; the shares are stated once, for the mix and the model card."""
        from ..data.mixing import mix

        episodes = mix([part.episodes for part in parts], weights=[part.share for part in parts],
                       target_size=self.data.mix_target_size or default_size, shuffle=True,
                       seed=self.data.episode_seed, names=[part.name for part in parts])
        return self.prepare(episodes, sources=[source_row(part.label, part.episodes, part.share, part.settings)
                                               for part in parts])

    def _barrier(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

    # ---- training ----------------------------------------------------------------------------------
    def train(self) -> Any:
        """Train with MyPTSFTTrainer on the prepared data; resumes with ``--resume_from_checkpoint``."""
        from .trainer import MyPTSFTTrainer

        t0 = time.perf_counter()
        validation = self.dataset["validation"] if len(self.dataset["validation"]) else None
        if validation is None:
            self.args.eval_strategy = "no"
        self.trainer = MyPTSFTTrainer(model=self.model, args=self.args, train_dataset=self.dataset["train"],
                                      eval_dataset=validation, processing_class=self.tokenizer,
                                      dataset_metadata=self.metadata, dataset_dir=str(self.output_dir / "data"))
        self._print(f"training {self.args.max_steps} steps (coverage {self.args.coverage}), "
                    f"lr {self.args.learning_rate}, batch {self.args.per_device_train_batch_size}")
        resume = self.args.resume_from_checkpoint
        if isinstance(resume, str) and resume.lower() == "true":
            resume = True
        self.trainer.train(resume_from_checkpoint=resume)
        if validation is not None and not _evaluated_at_end(self.trainer):
            self.trainer.evaluate()
        self.trainer.save_model(str(self.output_dir))
        self.timings["train_s"] = time.perf_counter() - t0
        return self.trainer

    # ---- gate --------------------------------------------------------------------------------------
    def evaluation_model(self) -> Any:
        """The trained model for rank 0's gate and held-out scoring. Under FSDP with several processes the
        trainer's module holds only this rank's shard and its forward waits for the other ranks, which do not
        evaluate; so rank 0 evaluates the full model that ``train`` has just saved to ``output_dir`` instead."""
        if self.trainer is None:
            return self.model
        if not (getattr(self.trainer, "is_fsdp_enabled", False) and self.args.world_size > 1):
            return self.trainer.accelerator.unwrap_model(self.trainer.model)
        if self._saved_model is None:
            import torch
            from transformers import AutoModelForCausalLM

            dtype = torch.bfloat16 if self.args.bf16 else torch.float32
            self._saved_model = AutoModelForCausalLM.from_pretrained(str(self.output_dir), dtype=dtype).to(
                self.trainer.accelerator.device).eval()
            self._print(f"FSDP: evaluating the saved full model from {self.output_dir}")
        return self._saved_model

    def gated_buckets(self) -> Tuple[str, ...]:
        if self.data.gate_buckets:
            return tuple(b.strip() for b in self.data.gate_buckets.split(",") if b.strip())
        return self.phase.gated

    def gate(self) -> Optional[Dict[str, Any]]:
        """Run every bucket of the eval suite on the trained model; the phase's buckets gate the verdict."""
        from ..evaluation.suite import format_report, run_eval_suite, write_report

        if self.trainer is not None and not self.trainer.is_world_process_zero():
            return None
        t0 = time.perf_counter()
        model = self.evaluation_model()
        if self.phase.gate_kind == "copy":
            from ..evaluation.copy_probe import copy_probe, copy_probe_phrases

            self.report = copy_probe(model, self.tokenizer, copy_probe_phrases(self.data.copy_probe_phrases),
                                     threshold=self.data.copy_probe_threshold)
        else:
            report = run_eval_suite(model, self.tokenizer, buckets=None, batch_size=self.data.eval_batch_size,
                                    max_new_tokens=self.args.eval_max_new_tokens, progress=False)
            self.report = apply_gates(report, self.gated_buckets())
        self.report["phase"] = self.phase.name
        write_report(self.report, self.output_dir / "gate_report.json")
        print(format_report(self.report), flush=True)
        self.timings["gate_s"] = time.perf_counter() - t0
        return self.report

    def score_held_out(self, episodes: Any, name: str) -> Optional[Dict[str, Any]]:
        """Exact match of greedy replies on held-out episodes (e.g. the operator generator's own validation
        split), recorded under ``held_out`` in the gate report and the model card. Reported, not gated."""
        from ..evaluation.exact_match import episode_exact_match, format_exact_match
        from ..evaluation.suite import write_report

        if self.trainer is not None and not self.trainer.is_world_process_zero():
            return None
        t0 = time.perf_counter()
        model = self.evaluation_model()
        result = episode_exact_match(model, self.tokenizer, list(episodes), batch_size=self.data.eval_batch_size,
                                     max_new_tokens=self.args.eval_max_new_tokens)
        print(f"[{self.phase.name}] held-out {name}: " + format_exact_match(result), flush=True)
        if self.report is not None:
            self.report.setdefault("held_out", {})[name] = {k: v for k, v in result.items() if k != "items"}
            write_report(self.report, self.output_dir / "gate_report.json")
        self.timings["held_out_s"] = time.perf_counter() - t0
        return result

    # ---- save --------------------------------------------------------------------------------------
    def save(self) -> int:
        """Plots and model card; returns the exit status (1 when the gate failed and fail_on_gate)."""
        from .model_card import write_model_card
        from .plots import plot_gates, plot_loss

        if self.trainer is not None and not self.trainer.is_world_process_zero():
            return 0
        history = self.trainer.state.log_history if self.trainer else []
        plot_loss(history, self.output_dir / "loss.png", title=self.phase.title)
        if self.report is not None:
            plot_gates(self.report, self.output_dir / "gates.png", title=self.phase.name)
        wall = time.perf_counter() - self.started
        self.timings["wall_s"] = wall
        write_model_card(self.output_dir, model_name=self.output_dir.name, args=self.args,
                         dataset_metadata=_flat_metadata(getattr(self, "metadata", {})), data_sources=self.sources,
                         gate_report=self.report, log_history=history, phase=self.phase.title,
                         model_config=self.model.config, wall_time_s=wall, chat=self.phase.gate_kind != "copy")
        (self.output_dir / "timings.json").write_text(json.dumps(self.timings, indent=2) + "\n")
        verdict = "no gate" if self.report is None else ("PASS" if self.report["passed"] else "FAIL")
        self._print(f"saved {self.output_dir} | gate {verdict} | wall {wall:.0f}s "
                    + " ".join(f"{k}={v:.0f}s" for k, v in self.timings.items() if k != "wall_s"))
        if self.report is not None and not self.report["passed"] and self.data.fail_on_gate:
            return 1
        return 0


def _evaluated_at_end(trainer: Any) -> bool:
    """Whether the trainer's last evaluation was at its final step (so another would only repeat it)."""
    steps = [e.get("step") for e in trainer.state.log_history if "eval_loss" in e]
    return bool(steps) and steps[-1] == trainer.state.global_step


def _flat_metadata(metadata: Mapping[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key in ("schema", "packing_enabled", "block_size", "pack_by_field", "prepare_mode"):
        if key in metadata:
            out[key] = metadata[key]
    for split, stats in (metadata.get("splits") or {}).items():
        for key in ("episodes", "rows", "tokens", "supervised_tokens", "mask_ratio"):
            if isinstance(stats, Mapping) and key in stats:
                out[f"{split}_{key}"] = stats[key]
    tok = metadata.get("tokenizer") or {}
    if isinstance(tok, Mapping):
        for key in ("name", "vocab_size", "model_vocab_size"):
            if key in tok:
                out[f"tokenizer_{key}"] = tok[key]
    return out


def run_recipe(main: Any) -> None:
    """``sys.exit(main())`` with MyPT's exit codes: 2 for bad input, 1 for a failed gate."""
    try:
        code = main()
    except MyPTInputError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except GateFailure as error:
        print(f"FAIL: {error}", file=sys.stderr)
        code = 1
    if _close_process_group():
        # On CPU (gloo), a rank sometimes aborts during interpreter finalisation ("terminate called without an
        # active exception") after everything is saved; skip finalisation so the exit status stays the real one.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _close_process_group() -> bool:
    """Tear down torch.distributed before exit; True when there was a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
        return True
    return False
