"""The whole Phase 3a chain in one call: (tiny base →) α → β → γ → 3a-2 → operators, each from the previous output.

    mypt-hf run-phases [--phases alpha,beta] [--output_root outputs/tiny] [--set max_steps=10 ...]
    python recipes/run_all.py ...            accelerate launch recipes/run_all.py ...

Every phase runs with ``--config <config_dir>/<phase><suffix>.yaml --output_dir <output_root>/<phase>
[--init_from_model <previous phase's output_dir>]`` plus the ``--set`` overrides (each goes to the phases whose
settings have that key; a key that no phase has is an error), so the chain works under any output root.
One progress line per phase as it starts and as it ends (verdict, wall time, gated rates); at the end the summary
table (:mod:`mypt_hf.phases.report`) printed and written as ``chain_summary.md`` / ``.json`` in the output root
(rewritten after every phase, so an interrupted chain still leaves what it did). A run that starts later in the
chain from the outputs already under the root keeps the earlier summary's rows of the phases before it.

The tiny default starts with ``tiny_base`` (copy pretraining of a fresh model, the stand-in for a pretrained
base); with ``--init_from_model`` (e.g. a converted 750M base and the ``_750M`` configs) the chain starts at α.

A failed gate stops the chain, as the guide says (do not go on to the next phase): the phase's model is saved and
the later phases are SKIPPED; ``continue_on_fail`` runs them anyway, each from the previous output. The gate is
the guide's mandatory one: the eval suite, the tie-weights check and the train/eval parity check. After the last
phase, the kept-skills gate (:mod:`mypt_hf.phases.kept_skills`) asks the final model every bucket the chain gated,
on the suite and on held-out prompts. :func:`run_from_args` raises GateFailure (exit 1) when a phase or the
kept-skills gate did not pass; bad input is a
MyPTInputError (exit 2), checked for every chosen phase before anything trains.

In-process, not subprocesses: each phase runs :func:`~mypt_hf.phases.recipes.run_phase` in this interpreter.
The phase runs keep no module-level state, and the Trainer resets accelerate's ``AcceleratorState`` when it
builds its Accelerator, so phases with different precision settings do not clash. Under ``accelerate launch``
every rank runs the chain and keeps one process group for all phases; the main process's verdict is broadcast
after each phase, so no rank loads the previous model before the main process has finished saving it.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import GateFailure, MyPTInputError
from ..model_names import resolve_model
from .kept_skills import run_kept_skills, summary_row
from .registry import BASE_PHASE, CHAIN, PHASES, config_path, packaged_config_dir, resolve_phases
from .resume import ResumeDecision, mark_done, mark_started, plan_resume, remove_unusable_checkpoints
from .report import SUMMARY_NAME, gated_rates, phase_result, upstream_rows, write_summary

# set by the chain itself; an override of these would break "each phase from the previous phase's output"
_RESERVED_OVERRIDES = {"output_dir": "--output_root", "init_from_model": "--init_from_model", "config": "--config_dir"}


def parse_overrides(overrides: Optional[Sequence[str] | Mapping[str, Any]]) -> List[Tuple[str, str]]:
    """``["max_steps=10", ...]`` or ``{"max_steps": 10}`` → ``[("max_steps", "10"), ...]``."""
    if not overrides:
        return []
    pairs: List[Tuple[str, str]] = []
    if isinstance(overrides, Mapping):
        pairs = [(str(k), str(v)) for k, v in overrides.items()]
    else:
        for item in overrides:
            key, sep, value = str(item).partition("=")
            key = key.strip().lstrip("-")
            if not sep or not key:
                raise MyPTInputError(f"override {item!r} is not key=value", field="set")
            pairs.append((key, value))
    for key, _ in pairs:
        if key in _RESERVED_OVERRIDES:
            raise MyPTInputError(f"{key} is set by the chain per phase; use {_RESERVED_OVERRIDES[key]} instead",
                                 field="set")
    return pairs


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _plan(phases: List[str], config_dir: Path, config_suffix: str, output_root: Path, init_from_model: Optional[str],
          overrides: List[Tuple[str, str]]) -> List[Dict[str, Any]]:
    """Per phase: config, output dir, starting model and argv; every input checked before anything runs."""
    from .settings import parse_phase_args, phase_keys

    known = {phase: phase_keys(phase) for phase in CHAIN}
    for key, _ in overrides:
        if not any(key in keys for keys in known.values()):  # a typo: no phase at all has it
            raise MyPTInputError(f"no phase has a setting {key!r}", field="set")
    plan: List[Dict[str, Any]] = []
    for index, phase in enumerate(phases):
        config = config_path(phase, config_suffix, config_dir)
        if not config.is_file():
            hint = (f"; {phase} exists only for the tiny default: pass --init_from_model <converted base> to "
                    "start the chain at α") if phase == BASE_PHASE and config_suffix else ""
            raise MyPTInputError(f"no config for {phase} with suffix {config_suffix!r}{hint}", path=str(config),
                                 field="config_suffix")
        output_dir = output_root / phase
        extra = [arg for key, value in overrides if key in known[phase] for arg in (f"--{key}", value)]
        base_argv = ["--config", str(config), "--output_dir", str(output_dir)]
        model_args = parse_phase_args(phase, base_argv + extra).model  # unknown keys / bad values → exit 2
        previous = PHASES[phase].previous
        if index == 0 and init_from_model:
            init: Optional[Path] = resolve_model(init_from_model, field="init_from_model").resolve()
            if not _is_model_dir(init):
                raise MyPTInputError("init_from_model is not a saved model directory (no config.json)",
                                     path=str(init), field="init_from_model")
        elif plan and plan[-1]["phase"] == previous:
            init = Path(plan[-1]["output_dir"])  # produced earlier in this chain
        elif previous is None or model_args.require_init_from_model:
            init = None  # a fresh model, or a config that needs --init_from_model (refused below)
        else:
            init = output_root / previous  # a chain that starts later (or skips a phase): that output must exist
            if not _is_model_dir(init):
                raise MyPTInputError(f"{phase} starts from {previous}'s output, which is missing: run {previous} "
                                     f"first, include it in --phases, or pass --init_from_model",
                                     path=str(init), field="init_from_model")
        argv = base_argv + (["--init_from_model", str(init)] if init is not None else []) + extra
        if init is None and model_args.require_init_from_model:
            raise MyPTInputError(f"{config.name} fine-tunes a converted MyPT base model: pass --init_from_model <dir> "
                                 "(see `mypt-hf convert`)", path=str(config), field="init_from_model")
        plan.append({"phase": phase, "config": str(config), "output_dir": str(output_dir),
                     "init_from_model": None if init is None else str(init), "argv": argv})
    return plan


def _run_one(phase: str, argv: List[str], row: Dict[str, Any]) -> Tuple[int, Optional[BaseException], float]:
    """Run one phase in this process; fills ``row``'s wall time, exit code and error. Returns the exit code, the
    exception that must stop the chain (bad input or a crash) if any, and the wall-clock start time."""
    from .recipes import run_phase

    t0, wall0 = time.perf_counter(), time.time()
    stop: Optional[BaseException] = None
    try:
        code = int(run_phase(phase, argv) or 0)
    except GateFailure as error:
        code, row["error"] = 1, str(error)
    except MyPTInputError as error:
        code, row["error"], stop = 2, str(error), error
    except Exception as error:  # noqa: BLE001 - reported in the summary, then re-raised by the chain
        code, row["error"], stop = 3, f"{type(error).__name__}: {error}", error
    gc.collect()
    row["wall_s"] = time.perf_counter() - t0
    row["exit_code"] = code
    return code, stop, wall0


def run_phases(phases: Optional[Sequence[str] | str] = None, config_dir: Optional[str | Path] = None,
               output_root: str | Path = "outputs/tiny", overrides: Optional[Sequence[str] | Mapping[str, Any]] = None,
               continue_on_fail: bool = False, config_suffix: str = "", init_from_model: Optional[str] = None,
               resume: bool = False) -> Dict[str, Any]:
    """Run the chosen phases in chain order; returns the summary (also written to ``output_root``).

    ``config_dir``: the ``<phase><suffix>.yaml`` configs (default: the ones shipped with the package);
    ``overrides`` (``["max_steps=10"]`` or a dict) go to every chosen phase that has the key (a key of no phase
    is an error); ``init_from_model`` is the
    first phase's starting model (needed for the ``_750M`` configs). Raises MyPTInputError for bad input before
    training anything. ``summary["passed"]`` is true only when every phase ran and passed its gate.
    ``resume``: continue an interrupted chain under ``output_root`` (:mod:`mypt_hf.phases.resume`): finished
    phases are kept, the interrupted one continues from its newest complete checkpoint, the rest run.
    """
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    names = resolve_phases(phases, init_from_model)
    config_dir = Path(config_dir) if config_dir is not None else packaged_config_dir()
    if not config_dir.is_dir():
        raise MyPTInputError("config directory not found", path=str(config_dir), field="config_dir")
    output_root = Path(output_root).resolve()
    pairs = parse_overrides(overrides)
    plan = _plan(names, config_dir, config_suffix, output_root, init_from_model, pairs)
    state = PartialState()

    def say(message: str) -> None:
        if state.is_main_process:
            print(message, flush=True)

    started = time.perf_counter()
    summary: Dict[str, Any] = {
        "output_root": str(output_root), "config_dir": str(config_dir.resolve()), "config_suffix": config_suffix,
        "overrides": [arg for key, value in pairs for arg in (f"--{key}", value)],
        "continue_on_fail": continue_on_fail,
        "resume": resume,
        "passed": False, "total_wall_s": 0.0,
        "upstream_phases": upstream_rows(output_root, plan[0], config_suffix) if state.is_main_process else [],
        "phases": [{"phase": e["phase"], "title": PHASES[e["phase"]].title, "output_dir": e["output_dir"],
                    "init_from_model": e["init_from_model"], "config": e["config"], "verdict": "PENDING",
                    "wall_s": None, "exit_code": None, "buckets": {}, "gated_buckets": [], "error": None}
                   for e in plan],
    }
    n = len(plan)
    decisions = [ResumeDecision("run") for _ in plan]
    if resume:  # decided once, on the main process, before anything changes on disk
        decisions = broadcast_object_list([plan_resume(plan) if state.is_main_process else None])[0]
        if all(d.action == "run" and not d.notes for d in decisions):
            say(f"[chain] --resume: no finished or interrupted phase of this chain under {output_root}; "
                "every phase runs")
    stop_reason: Optional[BaseException] = None
    for index, (entry, row, decision) in enumerate(zip(plan, summary["phases"], decisions), start=1):
        tag = f"[chain {index}/{n}] {entry['phase']}"
        for note in decision.notes:
            say(f"{tag}: {note}")
        if decision.action == "keep":
            row.update(decision.row, resumed="kept")
            say(f"{tag}: kept (finished in an earlier run): {row['verdict']} ({gated_rates(row)})")
        else:
            argv = list(entry["argv"])
            if decision.action == "continue":
                if state.is_main_process:
                    remove_unusable_checkpoints(entry)
                argv += ["--resume_from_checkpoint", decision.checkpoint]
                row["resumed"] = f"continued from {Path(decision.checkpoint).name}"
            source = entry["init_from_model"] or "a fresh model"
            say(f"{tag}: start from {source} -> {entry['output_dir']}"
                + (f" ({row['resumed']})" if decision.action == "continue" else ""))
            if state.is_main_process:
                mark_started(entry)
            code, stop_reason, wall0 = _run_one(entry["phase"], argv, row)
            if state.is_main_process:
                row.update(phase_result(entry, wall0))
            if code >= 2:
                row["verdict"] = "ERROR"
            elif row.get("gate_passed") is None:
                row["verdict"] = "FAIL" if code else "NO GATE"
            else:
                row["verdict"] = ("PASS" if row["gate_passed"] else "RED LINE" if row.get("red_lines") else "FAIL")
            # the main process's verdict for every rank; also a sync point after the main process saved the phase
            row["verdict"] = broadcast_object_list([row["verdict"]])[0]
            if state.is_main_process and code < 2:
                mark_done(entry, row)
            say(f"{tag}: {row['verdict']} in {row['wall_s']:.1f} s "
                f"({gated_rates(row)})" + (f" - {row['error']}" if row["error"] else ""))
        summary["total_wall_s"] = time.perf_counter() - started
        if state.is_main_process:
            write_summary(output_root, summary)
        if stop_reason is not None or (not continue_on_fail and row["verdict"] != "PASS"):
            for later in summary["phases"][index:]:
                later["verdict"] = "SKIPPED"
            if stop_reason is None:
                say(f"[chain] stopping after {entry['phase']}: its gate did not pass (the guide: do not go on to the "
                    "next phase; --continue_on_fail runs the rest anyway)")
            break
    summary["kept_skills"] = None
    last = summary["phases"][-1]
    ran_to_end = stop_reason is None and (last["verdict"] == "PASS" or (
        continue_on_fail and last["verdict"] in ("FAIL", "RED LINE")))
    if ran_to_end and PHASES[last["phase"]].gate_kind == "suite":
        # the final model, every bucket the chain gated, suite and held-out (mypt_hf.phases.kept_skills)
        kept = None
        if state.is_main_process:
            from ..evaluation.retention import format_kept_skills

            say(f"[chain] kept skills: asking {last['phase']} every bucket the chain gated, suite and held-out")
            t0 = time.perf_counter()
            report = run_kept_skills(last, summary["upstream_phases"] + summary["phases"])
            kept = summary_row(report) | {"wall_s": time.perf_counter() - t0}
            say(format_kept_skills(report) + f" ({kept['wall_s']:.0f} s)")
        summary["kept_skills"] = broadcast_object_list([kept])[0]
    summary["total_wall_s"] = time.perf_counter() - started
    summary["passed"] = (all(row["verdict"] == "PASS" for row in summary["phases"])
                         and (summary["kept_skills"] is None or bool(summary["kept_skills"]["passed"])))
    summary["exit_code"] = 0 if summary["passed"] else (2 if isinstance(stop_reason, MyPTInputError) else 1)
    if state.is_main_process:
        text = write_summary(output_root, summary)
        say("\n" + text + f"\nTotal wall time: {summary['total_wall_s']:.0f} s "
            f"(summary: {output_root / (SUMMARY_NAME + '.md')})")
    if stop_reason is not None:
        raise stop_reason
    return summary


def run_from_args(args: argparse.Namespace) -> int:
    """Run the chain from the parsed ``run-phases`` options; GateFailure when a phase did not pass (exit 1)."""
    output_root = args.output_root
    if output_root is None:
        output_root = "outputs/tiny" if not args.config_suffix else f"outputs/{args.config_suffix.lstrip('_')}"
    summary = run_phases(phases=args.phases, config_dir=args.config_dir, output_root=output_root,
                         overrides=args.overrides, continue_on_fail=args.continue_on_fail,
                         config_suffix=args.config_suffix,
                         init_from_model=args.init_from_model, resume=args.resume)
    if not summary["passed"]:
        failed = [f"{row['phase']} {row['verdict']}" for row in summary["phases"] if row["verdict"] != "PASS"]
        kept = summary.get("kept_skills")
        if kept is not None and not kept["passed"]:
            failed.append("kept skills FAIL (" + "; ".join(kept["failed"]) + ")")
        raise GateFailure("chain did not pass: " + ", ".join(failed))
    return 0


__all__ = ["run_phases", "parse_overrides", "run_from_args"]
