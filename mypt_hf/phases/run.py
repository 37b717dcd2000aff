"""One phase run: config → model → (the phase's data) → prepare → train → gate → save.

:class:`PhaseRun` holds the pieces; a phase's own steps (:mod:`mypt_hf.phases.recipes`) only build its episodes
and call these methods in order::

    run = PhaseRun.from_argv("phase3a1_alpha", argv)           # --config yaml + CLI overrides
    episodes = format_lock(mode="minimal", math="exclude", seed=run.data.episode_seed)
    run.prepare(episodes, sources=[...])                         # tokenize, mask, pack (mypt_hf.data.prepare)
    run.train()                                                  # the shared train-and-save path
    run.gate()                                                   # run_eval_suite, the phase's buckets gated
    return run.save()                                            # model card, plots, exit status

Output directory (``--output_dir``): the Hub-style model (safetensors, tokenizer with chat template,
generation_config; with ``use_peft`` the merged model, and ``adapter/`` the LoRA adapter), ``README.md`` (model
card), ``loss.png``, ``gates.png``, ``gate_report.json``, ``timings.json``, ``data/`` (the prepared dataset) and
the trainer's ``checkpoint-*`` folders; with ``--report_to tensorboard`` also ``runs/<run_name>/`` (the run is
named after the phase; the gate's figures are logged into it, see :mod:`mypt_hf.training.tracking`).

Processes: under ``accelerate launch`` every rank runs the same calls; accelerate's ``PartialState`` decides who
writes (the main process builds and saves the data first, the others then load it; only the main process gates
and writes the card).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import MyPTInputError
from ..training.tracking import held_out_logs, log_and_close, log_gate, name_the_run
from .registry import PHASES
from .settings import PhaseConfig, parse_phase_args

logger = logging.getLogger(__name__)


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


def _state() -> Any:
    from accelerate import PartialState

    return PartialState()


class PhaseRun:
    """One phase: its config, model, tokenizer, prepared data, trainer and gate report."""

    def __init__(self, config: PhaseConfig) -> None:
        self.started = time.perf_counter()
        self.config = config
        self.phase = config.phase
        self.model_args, self.data, self.args = config.model, config.data, config.train
        self.output_dir = Path(self.args.output_dir)
        self.sources: List[Dict[str, Any]] = []
        self.report: Optional[Dict[str, Any]] = None
        self.trainer = None
        self.metadata = None
        self.dataset: Any = None
        self.timings: Dict[str, float] = {}
        self._saved_model: Any = None  # the full saved model that the main process evaluates under FSDP
        name_the_run(self.args, self.phase.name)  # with trackers on: one run per phase, named after it
        self._load_model()

    @classmethod
    def from_argv(cls, phase: str, argv: Optional[Sequence[str]] = None) -> "PhaseRun":
        """Parse arguments (see :func:`~mypt_hf.phases.settings.parse_phase_args`) and load the starting model."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        return cls(parse_phase_args(phase, argv))

    def group(self, name: str) -> Any:
        """This phase's data settings group ``name`` (``copy``, ``tiny_base``, ``echo``, ``operator``)."""
        return self.config.group(name)

    @property
    def is_main_process(self) -> bool:
        return _state().is_main_process

    def log(self, message: str) -> None:
        """Print ``[phase] message`` on the main process."""
        if self.is_main_process:
            print(f"[{self.phase.name}] {message}", flush=True)

    # ---- model -------------------------------------------------------------------------------------
    def _load_model(self) -> None:
        from ..model_names import resolve_model
        from ..training.modeling import build_fresh_model, load_model_for_training

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
        from ..training.lora import check_lora_arguments

        # before the model is loaded: a LoRA run with freezing, from a fresh model or resuming a full checkpoint
        check_lora_arguments(self.config.lora, self.args, fresh_model=init is None)
        if init is not None:
            init = str(resolve_model(str(init), field="init_from_model"))  # a name or a path
            self.args.init_from_model = init
            self.model, self.tokenizer = load_model_for_training(init, dropout=self.model_args.dropout,
                                                                 block_size=self.model_args.block_size)
            self.log(f"starting from {init} (context {self.model.config.max_position_embeddings} tokens)")
        else:
            self.model, self.tokenizer = build_fresh_model(self.model_args, seed=self.args.seed)
            n = sum(p.numel() for p in self.model.parameters())
            self.log(f"fresh model: {self.model_args.num_hidden_layers} layers x {self.model_args.hidden_size} "
                     f"wide, {n / 1e6:.2f}M parameters, tokenizer {self.model_args.tokenizer} ({len(self.tokenizer)})")

    # ---- data --------------------------------------------------------------------------------------
    def prepare(self, train_episodes: Any, val_episodes: Any = None,
                sources: Optional[Sequence[Mapping[str, Any]]] = None,
                token_filters: Optional[Mapping[str, str]] = None) -> Tuple[Any, Any]:
        """Tokenize, mask and pack the episodes into ``<output_dir>/data`` (mypt_hf.data.prepare) with this
        phase's PrepareConfig; ``val_episodes`` replace the seeded validation split.

        ``token_filters``: {source name: what was filtered} for the episodes a generator filtered by token counts
        with this phase's tokenizer (γ's BPE-safe words, the operators' payload length); recorded in the prepared
        metadata's ``inputs.tokenizer_filters`` as prepare records a generated file's (:mod:`mypt_hf.data.provenance`).
        """
        from ..data.prepare import prepare_dataset

        def build() -> Tuple[Any, Any]:
            dataset, metadata = prepare_dataset(train_episodes, self.tokenizer, self.config.prepare_config(),
                                                val_file=val_episodes, verbose=True)
            if token_filters:
                self._record_token_filters(metadata, token_filters)
            return dataset, metadata

        return self._write_data(build, sources)

    def _record_token_filters(self, metadata: Any, token_filters: Mapping[str, str]) -> None:
        """Add one ``tokenizer_filters`` record per in-memory source: prepare sees no generator metadata file
        for data generated in this process, so without these the prepared metadata would not say which tokenizer
        measured the filters (it is this phase's, the one that prepared: ``matches`` is checked, not assumed)."""
        from ..data.provenance import tokenizer_filter_record
        from ..tokenization_mypt import tokenizer_fingerprint

        fingerprint = tokenizer_fingerprint(self.tokenizer)
        spec = getattr(self.tokenizer, "name_or_path", None) or None
        records = metadata.inputs.setdefault("tokenizer_filters", [])
        for source, what in token_filters.items():
            records.append({"file": None, "source": f"{source} (generated in memory)", "metadata": None,
                            "filters": [tokenizer_filter_record(spec, fingerprint, what)],
                            "matches": fingerprint == metadata.tokenizer.fingerprint})

    def use_dataset(self, dataset: Any, metadata: Any,
                    sources: Optional[Sequence[Mapping[str, Any]]] = None) -> Tuple[Any, Any]:
        """Save an already tokenized ``(DatasetDict, PreparedMetadata)`` to ``<output_dir>/data`` and train on it,
        as :meth:`prepare` does for episodes (e.g. the tiny base's copy-pretraining rows)."""
        return self._write_data(lambda: (dataset, metadata), sources)

    def _write_data(self, build: Any, sources: Optional[Sequence[Mapping[str, Any]]]) -> Tuple[Any, Any]:
        """The main process builds the prepared data, adds the copy replay when configured and saves it to
        ``<output_dir>/data`` (with ``data_sources.json``); then every process loads it from there."""
        from ..data.prepare import load_prepared, save_prepared
        from ..io_utils import write_json

        t0 = time.perf_counter()
        self.sources = [dict(s) for s in (sources or [])]
        data_dir = self.output_dir / "data"
        state = _state()
        with state.main_process_first():
            if state.is_main_process:
                dataset, metadata = build()
                if self.group("copy").copy_replay_share:
                    dataset, metadata = self._add_copy_replay(dataset, metadata)
                save_prepared(dataset, metadata, data_dir, overwrite=True)
                self.log(f"saved {data_dir}")
                write_json(self.output_dir / "data_sources.json", self.sources)
            self.dataset, self.metadata = load_prepared(data_dir)
        self.timings["data_s"] = time.perf_counter() - t0
        return self.dataset, self.metadata

    def _add_copy_replay(self, dataset: Any, metadata: Any) -> Tuple[Any, Any]:
        """Mix copy-pretraining rows into the prepared data (``copy_replay_share``) and add their row to the
        model card's data table."""
        from ..data.copy_pretraining import add_copy_replay

        copy = self.group("copy")
        dataset, metadata = add_copy_replay(
            dataset, metadata, self.tokenizer, copy.copy_replay_share, seed=self.data.episode_seed,
            random_token_share=copy.copy_random_token_share, bare_share=copy.copy_bare_share,
            framed_share=copy.copy_framed_share)
        replay, n_train = metadata.copy_replay, len(dataset["train"])
        self.log(f"copy replay: {replay['rows']} copy-pretraining rows added "
                 f"({copy.copy_replay_share:.0%} of {n_train} training rows)")
        self.sources.append({
            "name": "copy_replay", "rows": replay["rows"], "share": copy.copy_replay_share,
            "settings": (f"tiny-base copy rows of {replay['block_size']} tokens ({copy.copy_random_token_share:.0%} "
                         f"random-token repeats, {copy.copy_bare_share:.0%} bare and {copy.copy_framed_share:.0%} "
                         f"framed copies): {copy.copy_replay_share:.0%} of the {n_train} packed training rows")})
        return dataset, metadata

    def prepare_mix(self, parts: Sequence[MixPart], default_size: int,
                    token_filters: Optional[Mapping[str, str]] = None) -> Tuple[Any, Any]:
        """Mix ``parts`` by their shares (``mix_target_size`` rows, else ``default_size``), shuffled with the
        episode seed, and prepare the result; the shares are stated once, for the mix and the model card.
        ``token_filters`` as for :meth:`prepare`."""
        from ..data.mixing import mix

        episodes = mix([part.episodes for part in parts], weights=[part.share for part in parts],
                       target_size=self.data.mix_target_size or default_size, shuffle=True,
                       seed=self.data.episode_seed, names=[part.name for part in parts])
        return self.prepare(episodes, sources=[source_row(part.label, part.episodes, part.share, part.settings)
                                               for part in parts], token_filters=token_filters)

    # ---- training ----------------------------------------------------------------------------------
    def train(self) -> Any:
        """Train and save through the shared path (:func:`mypt_hf.training.fit.train_and_save`)."""
        from ..training.config import resolve_max_steps
        from ..training.fit import train_and_save

        t0 = time.perf_counter()
        resolve_max_steps(self.args, self.metadata, num_train_rows=len(self.dataset["train"]))
        self.log(f"training {self.args.max_steps} steps (coverage {self.args.coverage}), "
                 f"lr {self.args.learning_rate}, batch {self.args.per_device_train_batch_size}")
        self.trainer = train_and_save(self.model, self.tokenizer, self.args, self.dataset, self.metadata,
                                      dataset_dir=str(self.output_dir / "data"), lora=self.config.lora)
        self.timings["train_s"] = time.perf_counter() - t0
        return self.trainer

    # ---- gate --------------------------------------------------------------------------------------
    def evaluation_model(self) -> Any:
        """The trained model for the main process's gate and held-out scoring, computing as the saved model does
        when reloaded (fp32 weights, no autocast). After a bf16 run accelerate leaves an autocast wrapper on the
        trainer's model; it is removed (``keep_fp32_wrapper=False``) so the gate scores what a user loads, not a bf16
        variant of it. Under FSDP with several processes the trainer's module holds only this rank's shard and its
        forward waits for the other ranks, which do not evaluate; so the main process evaluates the full model that
        ``train`` has just saved instead."""
        if self.trainer is None:
            return self.model
        if not (getattr(self.trainer, "is_fsdp_enabled", False) and self.args.world_size > 1):
            return self.trainer.accelerator.unwrap_model(self.trainer.model, keep_fp32_wrapper=False)
        if self._saved_model is None:
            import torch
            from transformers import AutoModelForCausalLM

            # the saved weights are fp32 (bf16 runs are autocast over fp32 weights): load them as saved
            self._saved_model = AutoModelForCausalLM.from_pretrained(str(self.output_dir), dtype=torch.float32).to(
                self.trainer.accelerator.device).eval()
            self.log(f"FSDP: evaluating the saved full model from {self.output_dir}")
        return self._saved_model

    def _red_lines(self, model: Any) -> List[Any]:
        """The guide's red lines (:mod:`mypt_hf.evaluation.red_lines`) from this run's report, training log and the
        starting model (loaded again from disk, on the CPU, for the embedding check); recorded under
        ``report["red_lines"]``. A red line fails the gate with the verdict RED LINE (restart from the previous
        phase), distinct from a plain FAIL."""
        from ..evaluation.red_lines import check_red_lines, red_lines_summary

        base = None
        if self.args.init_from_model:
            from transformers import AutoModelForCausalLM

            base = AutoModelForCausalLM.from_pretrained(str(self.args.init_from_model)).eval()
        history = self.trainer.state.log_history if self.trainer is not None else None
        checks = check_red_lines(self.report, log_history=history, tokenizer=self.tokenizer, model=model,
                                 base_model=base)
        del base
        self.report["red_lines"] = red_lines_summary(checks)
        if self.report["red_lines"]["red"]:
            self.report["passed"] = False
        return [check.red_line() for check in checks if check.red]

    def _parity_split(self) -> Any:
        """The prepared rows the train/eval parity check reads: validation, else train (None before prepare)."""
        if self.dataset is None:
            return None
        if "validation" in self.dataset and len(self.dataset["validation"]):
            return self.dataset["validation"]
        return self.dataset["train"]

    def gated_buckets(self) -> Tuple[str, ...]:
        if self.data.gate_buckets:
            return tuple(b.strip() for b in self.data.gate_buckets.split(",") if b.strip())
        return self.phase.gated

    def gate(self) -> Optional[Dict[str, Any]]:
        """The guide's mandatory gate on the trained model (main process only): every bucket of the eval suite (the
        phase's buckets gate the verdict; the tiny base is gated by the copy probe instead), the tie-weights check
        and the train/eval parity check (:mod:`mypt_hf.evaluation.gate_checks`), all in ``gate_report.json``."""
        from ..evaluation.gate_checks import add_gate_checks, format_gate_checks, run_gate_checks
        from ..evaluation.red_lines import format_red_lines
        from ..evaluation.suite import format_report, run_eval_suite, write_report

        if not self.is_main_process:
            return None
        t0 = time.perf_counter()
        model = self.evaluation_model()
        if self.phase.gate_kind == "copy":
            from ..evaluation.copy_probe import copy_probe, copy_probe_phrases

            base = self.group("tiny_base")
            self.report = copy_probe(model, self.tokenizer, copy_probe_phrases(base.copy_probe_phrases),
                                     threshold=base.copy_probe_threshold)
        else:
            report = run_eval_suite(model, self.tokenizer, buckets=None, batch_size=self.data.eval_batch_size,
                                    max_new_tokens=self.args.eval_max_new_tokens, progress=False)
            self.report = apply_gates(report, self.gated_buckets())
        # the guide's mandatory gate: the suite (or copy probe) + the tie-weights check + train/eval parity
        add_gate_checks(self.report, run_gate_checks(model, self._parity_split(),
                                                     pad_token_id=self.tokenizer.pad_token_id))
        red = self._red_lines(model) if self.phase.gate_kind != "copy" and self.data.check_red_lines else []
        self.report["phase"] = self.phase.name
        write_report(self.report, self.output_dir / "gate_report.json")
        log_gate(self.trainer, self.report)  # into the phase's training run (report_to), which it closes again
        print(format_report(self.report), flush=True)
        print(format_gate_checks(self.report), flush=True)
        if red:
            print(format_red_lines(red), flush=True)
        self.timings["gate_s"] = time.perf_counter() - t0
        return self.report

    def score_held_out(self, episodes: Any, name: str) -> Optional[Dict[str, Any]]:
        """Exact match of greedy replies on held-out episodes (e.g. the operator generator's own validation
        split), recorded under ``held_out`` in the gate report and the model card. Reported, not gated."""
        from ..evaluation.exact_match import episode_exact_match, format_exact_match
        from ..evaluation.suite import write_report

        if not self.is_main_process:
            return None
        t0 = time.perf_counter()
        model = self.evaluation_model()
        result = episode_exact_match(model, self.tokenizer, list(episodes), batch_size=self.data.eval_batch_size,
                                     max_new_tokens=self.args.eval_max_new_tokens)
        self.log(f"held-out {name}: " + format_exact_match(result))
        if self.report is not None:
            self.report.setdefault("held_out", {})[name] = {k: v for k, v in result.items() if k != "items"}
            write_report(self.report, self.output_dir / "gate_report.json")
        log_and_close(self.trainer, held_out_logs(name, result))  # beside the gate, in the phase's run
        self.timings["held_out_s"] = time.perf_counter() - t0
        return result

    # ---- save --------------------------------------------------------------------------------------
    def save(self) -> int:
        """Plots, the model card and timings (main process); returns the exit status (1 when the gate failed and
        fail_on_gate)."""
        from ..io_utils import write_text
        from ..training.fit import write_run_card
        from ..training.lora import trainable_counts
        from ..training.plots import plot_gates

        if not self.is_main_process:
            return 0
        history = self.trainer.state.log_history if self.trainer else []
        if self.report is not None:
            plot_gates(self.report, self.output_dir / "gates.png", title=self.phase.name)
        wall = time.perf_counter() - self.started
        self.timings["wall_s"] = wall
        write_run_card(self.output_dir, model_name=self.output_dir.name, args=self.args,
                       model_config=self.model.config, log_history=history, title=self.phase.title,
                       dataset_rows=self.metadata.card_rows() if self.metadata is not None else None,
                       data_sources=self.sources, gate_report=self.report, phase=self.phase.title,
                       wall_time_s=wall, chat=self.phase.gate_kind != "copy", lora=self.config.lora,
                       lora_trainable=trainable_counts(self.trainer.model) if self.trainer else None)
        write_text(self.output_dir / "timings.json", json.dumps(self.timings, indent=2) + "\n")
        verdict = "no gate" if self.report is None else ("PASS" if self.report["passed"] else "FAIL")
        self.log(f"saved {self.output_dir} | gate {verdict} | wall {wall:.0f}s "
                 + " ".join(f"{k}={v:.0f}s" for k, v in self.timings.items() if k != "wall_s"))
        if self.report is not None and not self.report["passed"] and self.data.fail_on_gate:
            return 1
        return 0


__all__ = ["PhaseRun", "MixPart", "source_row", "apply_gates", "default_init_from_model"]
