#!/usr/bin/env python
"""Why not plain TRL with a Llama config? The operator phase's data and model shape, trained both ways.

    OMP_NUM_THREADS=2 python benchmarks/peer_trl.py [--seconds 240] [--json peer_trl.json]
    python benchmarks/peer_trl.py --smoke            # the same code at tiny size, ~30 s

One run, the same generated operator episodes (``mypt_hf.data.operators`` with the tiny operator phase's settings,
read from its packaged config, validation split with unseen templates and payloads included), the same
tokenizer and chat template, the same model shape and the same initial weights, trained for the same wall-clock
budget (``--seconds`` each) at the same learning rate, batch size, warm-up, optimizer settings and seed:

(a) mypt_hf: ``prepare_dataset`` with whole-episode packing by ``_meta.operator`` into the phase's block, then
    ``MyPTSFTTrainer`` on ``MyPTForCausalLM``;
(b) plain TRL: ``trl.SFTTrainer`` on the conversational episodes (``messages``) with ``packing=True`` (its default
    BFD strategy, which makes the batches padding-free), ``assistant_only_loss=True`` (the template's
    ``{% generation %}`` markers), ``max_length`` = (a)'s block, on a ``transformers.LlamaForCausalLM`` of the same
    shape, loaded from (a)'s initial weights (``mypt_hf.convert.export_llama``: same logits at the start).

Reported for both: packing fill (real tokens / row capacity), positions computed per optimizer step, supervised
tokens/s, optimizer steps, episodes that lost supervised tokens on the way to the model (each episode's template
tokens against the segments of the rows the trainer reads), exact match on the operator validation split (greedy,
``mypt_hf.evaluation.exact_match``, same decoding for both), and whether a packed row attends across episodes
(the logits of a packed batch against those of each episode alone, before training). The table's "ahead"
column names whichever side is ahead on each figure, TRL included.

Differences the comparison keeps on purpose (they are what each stack does by default, said in the output):
the LR schedule is constant after warm-up for both (a time budget has no known last step, so the phase's cosine
decay cannot be honoured by either); MyPT decays only >= 2-D non-embedding weights, TRL every weight but biases
and norms; MyPT's lm_head has a bias (zero at the start; Llama's has none); TRL runs with gradient checkpointing
off (its default is on, which only costs time here).

Timings are only meaningful on an otherwise idle machine; the step counts depend on them, so only the data
figures (fill, cuts) are deterministic run to run. ``--max_steps`` caps both runs at the same step count.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

IGNORE = -100
#: a step cap no run reaches: the time budget ends training (the LR schedule is constant after warm-up)
UNREACHED_STEPS = 10_000_000


# --------------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------------

def operator_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The tiny operator phase's settings (its packaged config), with this run's overrides and the smoke size."""
    from mypt_hf.phases.settings import parse_phase_args

    phase = parse_phase_args("phase3a_operator", [])
    ops, train, model = phase.group("operator"), phase.train, phase.model
    s = {
        "n_train": ops.operator_n_train, "n_val": ops.operator_n_val, "max_tokens": ops.operator_max_tokens,
        "novel_word_share": ops.operator_novel_word_share, "bracket_contrast": ops.operator_bracket_contrast,
        "episode_seed": phase.data.episode_seed, "block": phase.data.pack_block_size,
        "pack_by_field": phase.data.pack_by_field, "hidden_size": model.hidden_size,
        "num_hidden_layers": model.num_hidden_layers, "num_attention_heads": model.num_attention_heads,
        "learning_rate": train.learning_rate, "batch_size": train.per_device_train_batch_size,
        "warmup_steps": train.warmup_steps, "seed": train.seed, "adam_beta2": train.adam_beta2,
        "weight_decay": train.weight_decay, "max_grad_norm": train.max_grad_norm,
        "max_new_tokens": train.eval_max_new_tokens, "eval_batch_size": phase.data.eval_batch_size,
        "seconds": 240.0, "eval_limit": None, "max_steps": None,
    }
    if args.smoke:  # the same code at a size that runs in ~30 s
        s.update(n_train=600, n_val=48, block=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 batch_size=4, warmup_steps=2, seconds=4.0, eval_limit=24)
    for key in ("seconds", "n_train", "n_val", "block", "batch_size", "learning_rate", "seed", "eval_limit",
                "max_steps"):
        value = getattr(args, key)
        if value is not None:
            s[key] = value
    return s


# --------------------------------------------------------------------------------------------------
# measurement helpers
# --------------------------------------------------------------------------------------------------

class BatchMeter:
    """Counts what reaches the model's forward in training mode: supervised targets (labels after the shift
    the loss applies), positions computed, forward calls. A forward pre-hook, so both trainers are measured
    the same way, whatever they do around the call."""

    def __init__(self, model) -> None:
        self.supervised = 0
        self.positions = 0
        self.forwards = 0
        self.widest_row = 0
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        if not module.training:
            return None
        labels = kwargs.get("labels")
        ids = kwargs.get("input_ids", args[0] if args else None)
        if labels is not None:
            self.supervised += int(labels[..., 1:].ne(IGNORE).sum())
        if ids is not None:
            self.positions += int(ids.numel())
            self.widest_row = max(self.widest_row, int(ids.shape[-1]))
        self.forwards += 1
        return None

    def close(self) -> None:
        self._handle.remove()


def make_budget_callback(seconds: float, max_steps: Optional[int]):
    """A TrainerCallback that stops training after ``seconds`` of the training loop (or ``max_steps``)."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.start = None
            self.elapsed = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.elapsed = time.perf_counter() - self.start
            if self.elapsed >= seconds or (max_steps is not None and state.global_step >= max_steps):
                control.should_training_stop = True

        def on_train_end(self, args, state, control, **kwargs):
            self.elapsed = time.perf_counter() - self.start

    return TimeBudget()


def reference_episodes(episodes, tokenizer) -> Tuple[Counter, Dict[Tuple[int, ...], int], int]:
    """Each episode as the chat template renders it: a multiset of token-id tuples, each tuple's supervised
    target count (assistant mask after the first position, which is never a target), and the total."""
    from mypt_hf.tokenization_mypt import encode_messages

    counts: Counter = Counter()
    supervised: Dict[Tuple[int, ...], int] = {}
    for row in episodes:
        enc = encode_messages(tokenizer, row["messages"])
        key = tuple(enc["input_ids"])
        counts[key] += 1
        supervised[key] = int(sum(enc["assistant_masks"][1:]))
    total = sum(supervised[k] * n for k, n in counts.items())
    return counts, supervised, total


def row_segments(dataset, pad_token_id: int):
    """(ids, labels) of every segment of every row, by its ``seq_lengths``; a trailing pad run (all labels
    ignored, all ids the pad id: mypt_hf's last segment of a part-filled block) is left out."""
    for row in dataset.select_columns(["input_ids", "labels", "seq_lengths"]):
        ids, labels, start = row["input_ids"], row["labels"], 0
        for length in row["seq_lengths"]:
            seg_ids, seg_labels = ids[start:start + length], labels[start:start + length]
            start += length
            if all(y == IGNORE for y in seg_labels) and all(x == pad_token_id for x in seg_ids):
                continue
            yield seg_ids, seg_labels
        if start < len(ids):  # rows without a recorded remainder: the rest is one more segment
            seg_ids, seg_labels = ids[start:], labels[start:]
            if not (all(y == IGNORE for y in seg_labels) and all(x == pad_token_id for x in seg_ids)):
                yield seg_ids, seg_labels


def packing_and_cuts(dataset, block: int, reference: Tuple[Counter, Dict, int], pad_token_id: int) -> Dict[str, Any]:
    """Fill of the rows (episode tokens / rows x block) and the episodes that did not reach them whole.

    A segment whose ids equal an episode's template tokens is that episode, intact; every episode left over
    lost tokens (truncated, split or dropped); its supervised loss is what it should have had minus what the
    remaining (cut) segments carry. Targets count as the collators leave them: the first position of every
    segment is never a target (both collators mask it).
    """
    counts, supervised, expected_total = reference
    left = Counter(counts)
    real_tokens = 0
    in_rows = 0
    leftover_segments = 0
    leftover_supervised = 0
    for seg_ids, seg_labels in row_segments(dataset, pad_token_id):
        real_tokens += len(seg_ids)
        sup = sum(1 for y in seg_labels[1:] if y != IGNORE)
        in_rows += sup
        key = tuple(seg_ids)
        if left.get(key, 0) > 0:
            left[key] -= 1
        else:
            leftover_segments += 1
            leftover_supervised += sup
    cut = sum(n for n in left.values() if n > 0)
    lost = sum(supervised[k] * n for k, n in left.items() if n > 0) - leftover_supervised
    rows = len(dataset)
    return {"rows": rows, "block": block, "real_tokens": real_tokens, "fill": real_tokens / (rows * block),
            "episodes": sum(counts.values()), "episodes_cut": cut, "cut_segments": leftover_segments,
            "supervised_expected": expected_total, "supervised_in_rows": in_rows,
            "supervised_lost": max(0, lost)}


def cross_episode_attention(model, collator, rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Max |logit difference| between a packed batch (as the trainer's collator builds it) and each of its
    episodes run alone: ~1e-5 means block-diagonal attention, more means a packed row attends across episodes."""
    import torch

    batch = collator([dict(r) for r in rows])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    was_training = model.training
    model.eval()
    worst = 0.0
    episodes = 0
    try:
        with torch.no_grad():
            logits = model(**inputs).logits
            position_ids = batch["position_ids"]
            for b in range(position_ids.shape[0]):
                starts = (position_ids[b] == 0).nonzero().flatten().tolist() + [position_ids.shape[1]]
                for s, e in zip(starts[:-1], starts[1:]):
                    if bool(batch["labels"][b, s:e].eq(IGNORE).all()):
                        continue  # a pad run, not an episode
                    alone = model(input_ids=batch["input_ids"][b:b + 1, s:e]).logits
                    worst = max(worst, float((alone[0] - logits[b, s:e]).abs().max()))
                    episodes += 1
    finally:
        model.train(was_training)
    return {"max_abs_logit_diff": worst, "episodes_checked": episodes, "input_shape": list(batch["input_ids"].shape),
            "attends_across_episodes": worst > 1e-3}


def step_seconds(model, batch: Dict[str, Any], repeats: int = 3) -> float:
    """Median seconds of one forward + backward of ``model`` on ``batch`` (after one untimed call), with the
    model's own loss: the cost of a batch layout on a model, apart from either trainer."""
    import statistics

    was_training = model.training
    model.train()
    times = []
    try:
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            model(**batch).loss.backward()
            if i:
                times.append(time.perf_counter() - t0)
            model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    return statistics.median(times)


def layout_costs(models: Dict[str, Any], batches: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Every model on every trainer's first batch: which of model and batch layout makes a step cost what."""
    out: Dict[str, Dict[str, Any]] = {}
    for batch_name, batch in batches.items():
        for model_name, model in models.items():
            out[f"{model_name} on {batch_name} batch"] = {
                "shape": list(batch["input_ids"].shape), "seconds": step_seconds(model, batch)}
    return out


def build_models(s: Dict[str, Any], tokenizer, tmp: Path):
    """A fresh MyPT of the phase's shape and a LlamaForCausalLM holding the same initial weights."""
    import torch
    from transformers import LlamaForCausalLM

    from mypt_hf.convert import export_llama
    from mypt_hf.training.modeling import ModelArguments, build_fresh_model

    mypt, _ = build_fresh_model(ModelArguments(hidden_size=s["hidden_size"], num_hidden_layers=s["num_hidden_layers"],
                                               num_attention_heads=s["num_attention_heads"], block_size=s["block"]),
                                tokenizer=tokenizer, seed=s["seed"])
    mypt.save_pretrained(tmp / "mypt_init")
    tokenizer.save_pretrained(tmp / "mypt_init")
    with contextlib.redirect_stdout(io.StringIO()):
        export_llama(tmp / "mypt_init", tmp / "llama_init")
    llama = LlamaForCausalLM.from_pretrained(tmp / "llama_init", dtype=torch.float32)
    probe = torch.tensor([tokenizer.apply_chat_template([{"role": "user", "content": "Copy: `abc`"}],
                                                        add_generation_prompt=True, tokenize=True,
                                                        return_dict=True)["input_ids"]])
    mypt.eval(), llama.eval()
    with torch.no_grad():
        init_diff = float((mypt(input_ids=probe).logits - llama(input_ids=probe).logits).abs().max())
    mypt.train(), llama.train()
    return mypt, llama, init_diff


def common_train_args(s: Dict[str, Any], output_dir: Path) -> Dict[str, Any]:
    """The trainer arguments both runs share (the phase's lr, batch, warm-up, optimizer settings, seed)."""
    return dict(output_dir=str(output_dir), max_steps=UNREACHED_STEPS, per_device_train_batch_size=s["batch_size"],
                learning_rate=s["learning_rate"], warmup_steps=s["warmup_steps"],
                lr_scheduler_type="constant_with_warmup", lr_scheduler_kwargs={}, adam_beta1=0.9,
                adam_beta2=s["adam_beta2"], weight_decay=s["weight_decay"], max_grad_norm=s["max_grad_norm"],
                seed=s["seed"], data_seed=s["seed"], save_strategy="no", eval_strategy="no", logging_steps=10**6,
                disable_tqdm=True, dataloader_num_workers=0, report_to="none", bf16=False, use_cpu=True,
                activation_checkpointing=False)


def train_and_measure(trainer, model, s: Dict[str, Any]) -> Dict[str, Any]:
    """Train under the time budget; what reached the model, per second of the training loop."""
    from transformers.trainer_callback import PrinterCallback

    meter = BatchMeter(model)
    budget = make_budget_callback(s["seconds"], s["max_steps"])
    trainer.add_callback(budget)
    trainer.remove_callback(PrinterCallback)  # its end-of-run dict would only repeat the table
    try:
        result = trainer.train()
    finally:
        meter.close()
    steps = trainer.state.global_step
    return {"train_s": budget.elapsed, "optimizer_steps": steps, "supervised_tokens": meter.supervised,
            "supervised_tokens_per_s": meter.supervised / budget.elapsed if budget.elapsed else 0.0,
            "positions_per_step": meter.positions / steps if steps else 0.0, "widest_row": meter.widest_row,
            "mean_train_loss": float(result.training_loss)}


def exact_match(model, tokenizer, episodes, s: Dict[str, Any]) -> Dict[str, Any]:
    """Bucket E's rule on the operator validation split, greedy, the same decoding for both models."""
    from mypt_hf.evaluation.exact_match import episode_exact_match

    t0 = time.perf_counter()
    result = episode_exact_match(model, tokenizer, episodes, batch_size=s["eval_batch_size"],
                                 max_new_tokens=s["max_new_tokens"])
    return {"exact_match": result["exact_match"], "passed": result["passed"], "total": result["total"],
            "by_operator": {k: v["rate"] for k, v in result["by_operator"].items()},
            "eval_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------------
# the two runs
# --------------------------------------------------------------------------------------------------

def run_mypt_hf(model, tokenizer, data, s: Dict[str, Any], reference, tmp: Path) -> Dict[str, Any]:
    """(a) prepare with whole-episode packing by operator, then MyPTSFTTrainer."""
    from mypt_hf.data.prepare import PrepareConfig, prepare_dataset
    from mypt_hf.training import MyPTSFTConfig, MyPTSFTTrainer

    t0 = time.perf_counter()
    config = PrepareConfig(enable_packing=True, pack_block_size=s["block"], pack_by_field=s["pack_by_field"],
                           seed=s["episode_seed"])
    dataset, metadata = prepare_dataset(data["train"], tokenizer, config, val_file=data["validation"], verbose=False)
    prepare_s = time.perf_counter() - t0
    packing = packing_and_cuts(dataset["train"], s["block"], reference, tokenizer.pad_token_id)
    args = MyPTSFTConfig(**common_train_args(s, tmp / "mypt_hf"))
    with contextlib.redirect_stdout(io.StringIO()):  # the coverage line of a step cap no run reaches
        trainer = MyPTSFTTrainer(model=model, args=args, train_dataset=dataset["train"], processing_class=tokenizer,
                                 dataset_metadata=metadata)
    attention = cross_episode_attention(model, trainer.data_collator, dataset["train"].select(range(2)))
    first = trainer.data_collator([dataset["train"][i] for i in range(s["batch_size"])])
    out = {"prepare_s": prepare_s, **packing, "attention": attention,
           "attn_implementation": model.config._attn_implementation}
    out.update(train_and_measure(trainer, model, s))
    return out, first


def run_trl(model, tokenizer, data, s: Dict[str, Any], reference, tmp: Path) -> Dict[str, Any]:
    """(b) plain TRL: SFTTrainer on the conversational episodes, packing=True (BFD), assistant-only loss."""
    from trl import SFTConfig, SFTTrainer

    # The generator's JSONL holds messages + _meta; TRL reads the messages (the _meta column is dropped so that
    # its tokenization sees exactly the conversational format it documents).
    episodes = data["train"].select_columns(["messages"])
    args = SFTConfig(**common_train_args(s, tmp / "trl"), packing=True, max_length=s["block"],
                     assistant_only_loss=True, dataset_num_proc=None)
    t0 = time.perf_counter()
    trainer = SFTTrainer(model=model, args=args, train_dataset=episodes, processing_class=tokenizer)
    prepare_s = time.perf_counter() - t0
    packing = packing_and_cuts(trainer.train_dataset, s["block"], reference, tokenizer.pad_token_id)
    attention = cross_episode_attention(model, trainer.data_collator, trainer.train_dataset.select(range(2)))
    first = trainer.data_collator([trainer.train_dataset[i] for i in range(s["batch_size"])])
    out = {"prepare_s": prepare_s, **packing, "attention": attention,
           "attn_implementation": model.config._attn_implementation,
           "packing_strategy": args.packing_strategy, "padding_free": bool(trainer.padding_free)}
    out.update(train_and_measure(trainer, model, s))
    return out, first


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------

#: (label, key, higher is better, format)
FIGURES = [
    ("packing fill (real tokens / row capacity)", "fill", True, "{:.2%}"),
    ("rows (packed blocks)", "rows", False, "{:,}"),
    ("positions computed per optimizer step", "positions_per_step", None, "{:,.0f}"),
    ("widest row the model saw", "widest_row", None, "{:,}"),
    ("supervised tokens / s", "supervised_tokens_per_s", True, "{:,.1f}"),
    ("optimizer steps in the budget", "optimizer_steps", True, "{:,}"),
    ("supervised tokens trained on", "supervised_tokens", True, "{:,}"),
    ("episodes cut (lost supervised tokens)", "episodes_cut", False, "{:,}"),
    ("supervised tokens lost to cuts", "supervised_lost", False, "{:,}"),
    ("exact match, operator validation split", "exact_match", True, "{:.1%}"),
    ("data preparation s (TRL: SFTTrainer())", "prepare_s", False, "{:.1f}"),
    ("training loop s", "train_s", None, "{:.1f}"),
    ("mean training loss over the run", "mean_train_loss", False, "{:.3f}"),
]


def ratios(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """mypt_hf / TRL for every figure (None where TRL's is 0 or missing)."""
    out = {}
    for _, key, _, _ in FIGURES:
        x, y = a.get(key), b.get(key)
        out[key] = (x / y) if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y else None
    return out


def ahead(x: Any, y: Any, higher: Optional[bool]) -> str:
    if higher is None or x is None or y is None:
        return ""
    if abs(x - y) <= 1e-12 * max(1.0, abs(x), abs(y)):
        return "tie"
    return "mypt_hf" if (x > y) == higher else "TRL"


def format_table(a: Dict[str, Any], b: Dict[str, Any], r: Dict[str, Optional[float]]) -> str:
    lines = [f"| {'figure':<42} | {'mypt_hf':>12} | {'plain TRL':>12} | {'mypt_hf/TRL':>11} | {'ahead':<7} |",
             f"|{'-' * 44}|{'-' * 14}|{'-' * 14}|{'-' * 13}|{'-' * 9}|"]
    for label, key, higher, fmt in FIGURES:
        x, y = a.get(key), b.get(key)
        fx = fmt.format(x) if x is not None else "-"
        fy = fmt.format(y) if y is not None else "-"
        fr = f"{r[key]:.2f}x" if r.get(key) is not None else "-"
        lines.append(f"| {label:<42} | {fx:>12} | {fy:>12} | {fr:>11} | {ahead(x, y, higher):<7} |")
    return "\n".join(lines)


def findings(a: Dict[str, Any], b: Dict[str, Any], s: Dict[str, Any],
             costs: Dict[str, Dict[str, Any]]) -> List[str]:
    """Plain sentences on what the figures mean, including where TRL is ahead."""
    out = []
    for name, run in (("mypt_hf", a), ("plain TRL", b)):
        att = run["attention"]
        verdict = ("ATTENDS ACROSS EPISODES" if att["attends_across_episodes"] else
                   "block-diagonal (no attention across episodes)")
        out.append(f"{name} on {run['attn_implementation']}: packed batch {att['input_shape']} vs each of "
                   f"{att['episodes_checked']} episodes alone: max |logit diff| {att['max_abs_logit_diff']:.2e} -> "
                   f"{verdict}")
    if not b["attention"]["attends_across_episodes"]:
        out.append("TRL's padding-free batches carry position_ids that restart per episode and no attention_mask; "
                   "transformers' create_causal_mask (masking_utils.find_packed_sequence_indices) turns them into a "
                   "block-diagonal mask on sdpa too, so plain TRL on CPU does not attend across episodes.")
    width = b.get("widest_row", 0)
    if width > s["block"]:
        out.append(f"TRL's padding-free collator concatenates the whole batch into one row ({width} positions "
                   f"here, vs mypt_hf's {a.get('widest_row')}-token rows): without a varlen kernel (flash attention), "
                   "sdpa computes attention over the whole row with a dense block-diagonal mask, about batch-size "
                   "times the attention work of (B, block) rows.")
    same_batch = costs["Llama on mypt_hf batch"]["seconds"] / costs["MyPT on mypt_hf batch"]["seconds"]
    layout = costs["Llama on TRL batch"]["seconds"] / costs["Llama on mypt_hf batch"]["seconds"]
    out.append(f"apart from the trainers: Llama / MyPT on the same (B, block) batch {same_batch:.2f}x the time (the "
               f"model), Llama on TRL's batch / on mypt_hf's {layout:.2f}x (the batch layout).")
    out.append(f"episodes longer than max_length: TRL's bfd truncates them (keep_start) and never splits an "
               f"episode across rows; mypt_hf refuses them (overlong=error). Cut here: mypt_hf "
               f"{a['episodes_cut']}, TRL {b['episodes_cut']} of {b['episodes']}.")
    for key, label in (("fill", "packing fill"), ("supervised_tokens_per_s", "supervised tokens/s"),
                       ("optimizer_steps", "optimizer steps"), ("exact_match", "exact match")):
        if b.get(key) is not None and a.get(key) is not None and b[key] > a[key]:
            out.append(f"TRL is ahead on {label}: {b[key]:.4g} vs mypt_hf's {a[key]:.4g}.")
    if b["fill"] > a["fill"]:
        out.append("TRL packs all operators together (BFD over the whole set) where mypt_hf keeps one operator per "
                   "block (pack_by_field, as the original recipe), so TRL's rows can be fuller.")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="training wall-clock budget of EACH run "
                                                                      "(default 240; --smoke 4)")
    parser.add_argument("--smoke", action="store_true", help="the same code at tiny size (~30 s)")
    parser.add_argument("--max_steps", type=int, default=None, help="also stop each run after this many steps")
    parser.add_argument("--n_train", type=int, default=None, help="operator train episodes (default: the phase's)")
    parser.add_argument("--n_val", type=int, default=None, help="operator validation episodes (default: the phase's)")
    parser.add_argument("--eval_limit", type=int, default=None, help="score only the first N validation episodes")
    parser.add_argument("--block", type=int, default=None, help="pack block = TRL max_length (default: the phase's)")
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--learning_rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None, help="model init and trainer seed (default: the phase's)")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    import datasets
    import torch
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import trl

    from mypt_hf.data.operators import operators
    from mypt_hf.tokenization_mypt import load_tokenizer

    s = operator_settings(args)
    started = time.perf_counter()
    tokenizer = load_tokenizer()
    data = operators(n_train=s["n_train"], n_val=s["n_val"], max_tokens=s["max_tokens"], seed_train=s["episode_seed"],
                     novel_word_share=s["novel_word_share"], bracket_contrast=s["bracket_contrast"],
                     tokenizer=tokenizer)
    validation = list(data["validation"])
    if s["eval_limit"]:
        validation = validation[:s["eval_limit"]]
    reference = reference_episodes(data["train"], tokenizer)
    print(f"operator episodes: {s['n_train']} train / {s['n_val']} validation (scored: {len(validation)}), embedded "
          f"tokenizer, block {s['block']}, model {s['hidden_size']}x{s['num_hidden_layers']} "
          f"({s['num_attention_heads']} heads), batch {s['batch_size']}, lr {s['learning_rate']}, warm-up "
          f"{s['warmup_steps']}, seed {s['seed']}, {s['seconds']:g} s of training each, "
          f"torch threads {torch.get_num_threads()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="peer_trl_") as tmp_name:
        tmp = Path(tmp_name)
        mypt, llama, init_diff = build_models(s, tokenizer, tmp)
        print(f"initial weights: MyPT -> Llama export, max |logit diff| {init_diff:.2e}", flush=True)
        torch.manual_seed(s["seed"])
        a, batch_a = run_mypt_hf(mypt, tokenizer, data, s, reference, tmp)
        print(f"mypt_hf: {a['optimizer_steps']} steps in {a['train_s']:.1f} s", flush=True)
        a.update(exact_match(mypt, tokenizer, validation, s))
        torch.manual_seed(s["seed"])
        b, batch_b = run_trl(llama, tokenizer, data, s, reference, tmp)
        print(f"plain TRL: {b['optimizer_steps']} steps in {b['train_s']:.1f} s", flush=True)
        b.update(exact_match(llama, tokenizer, validation, s))
        costs = layout_costs({"MyPT": mypt, "Llama": llama}, {"mypt_hf": batch_a, "TRL": batch_b})

    r = ratios(a, b)
    print()
    print(format_table(a, b, r))
    print()
    print("one forward + backward (median of 3), each model on each trainer's first batch:")
    for name, cost in costs.items():
        print(f"  {name:<24} {str(cost['shape']):<12} {cost['seconds']:.3f} s")
    print()
    notes = findings(a, b, s, costs)
    for note in notes:
        print(f"- {note}")
    print(f"(same for both: constant LR after warm-up, AdamW betas (0.9, {s['adam_beta2']}), weight decay "
          f"{s['weight_decay']}, clip {s['max_grad_norm']}, greedy decoding of {s['max_new_tokens']} new tokens; "
          f"total {time.perf_counter() - started:.0f} s)")
    summary = {
        "benchmark": "peer_trl", "smoke": bool(args.smoke), "settings": s, "init_max_abs_logit_diff": init_diff,
        "mypt_hf": a, "trl": b, "ratios_mypt_hf_over_trl": r, "layout_costs": costs, "findings": notes,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "load_avg": os.getloadavg()},
        "total_s": time.perf_counter() - started,
    }
    if args.json:
        from mypt_hf.io_utils import write_json

        write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
