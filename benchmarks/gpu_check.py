#!/usr/bin/env python
"""First run on a GPU: 750M training throughput, MFU and memory, packed-attention correctness, generation speed.

Run this first thing when a GPU is available (<= 8 minutes on one H100/H200; benchmarks/gpu_check.sh wraps it
for a bare machine). It writes a JSON report (``--out``) after every section, so a run cut short still leaves
what it measured, and prints a summary at the end.

Sections, in this order (each guarded: an error is recorded in the report and the next section runs; a global
time budget ``--budget_s`` skips the sections it no longer has time for, and stops a training run early):

1. ``correctness`` — (b): on packed rows (1024-token blocks of several synthetic episodes with restarting
   position_ids, made by ``mypt_hf.data.packing``'s packer and collator) the packed loss equals the per-episode
   loss (each episode run alone), for sdpa and, when installed, flash_attention_2 (varlen: the collator's
   ``cu_seq_lens_q/k`` and ``max_length_q/k`` reach ``_flash_attention_forward`` through the model's ``**kwargs``),
   and flash-attention's packed loss equals sdpa's. The loss is the model's own (sum of CE over supervised
   tokens / supervised tokens). bf16 autocast on CUDA (tolerance 2e-2 relative), fp32 on CPU (1e-5).
2. ``train/<attn>/<shape>`` — (a): the real training path, ``MyPTSFTTrainer`` (TRL's SFTTrainer: its fused-head
   loss, transformers' ``adamw_torch_fused``, bf16 autocast with fp32 master weights, grad clipping, cosine
   schedule), on the 750M shape from ``phase3a1_alpha_750M.yaml`` (``ModelArguments``; random init, no download,
   vocab 50304 = the GPT-2 layout of the converted 750M base), activation checkpointing as the 750M configs set
   it (on). Shapes: ``unpacked`` = α (16 x 512, one full-length episode per row, attention_mask) and ``packed`` =
   operator (16 x 1024 blocks of 20-45-token episodes, as ``phase3a_operator_750M.yaml``). Attention: sdpa and
   flash_attention_2 when installed. Warm-up steps first, then timed steps: tokens/s (row positions) and
   supervised tokens/s, MFU/HFU against the device's peak, peak memory (``torch.cuda.max_memory_allocated``).
   Without TRL (``--train_path manual`` or trl not importable) the same model, the same loss and a fused
   torch AdamW in a plain loop are timed instead; the report says which ran.
3. ``generation/<attn>`` — (c): ``model.generate`` (greedy, KV cache, bf16 weights on CUDA) at batch 1 and 32:
   new tokens/s, prompt of 64 random tokens, 128 new tokens forced (``min_new_tokens``, no eos).
4. ``train/sdpa/<shape>/no_ac`` — the same training without activation checkpointing: the memory it saves and
   the time it costs (last: the figure the memory plan needs least).

MFU (model FLOPs utilisation) = achieved model FLOP/s / the device's dense bf16 peak. Model FLOPs per step, the
PaLM convention (Chowdhery et al. 2022, Appendix B: 6N + 12·L·H·Q·T per token):

    FLOPs = 6 · N · tokens  +  12 · n_layer · d_model · Σ_segments T_s²

N = all parameters, the tied embedding matrix counted once: it stands for the lm_head matmul (2·V·d FLOPs per
token forward; the embedding lookup itself costs nothing), which is how Chinchilla (Hoffmann et al. 2022,
Appendix F) counts the logits. ``tokens`` = row positions (padding included: the linear layers compute it).
The attention term takes each token's attended sequence length T: the row length for an unpacked row, the
episode's length for a packed row (block-diagonal attention). Like PaLM it does not halve for causality.
HFU (hardware FLOPs utilisation) adds the recomputed forward of activation checkpointing (8N and 16·L·d·ΣT²).
The report also gives MFU with N = non-embedding parameters (Kaplan et al. 2020's N) for comparison.

    python benchmarks/gpu_check.py --out gpu_check.json            # the GPU run (<= 8 min on an H100)
    python benchmarks/gpu_check.py --smoke --out /tmp/smoke.json   # tiny, CPU, well under a minute
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

SCHEMA = "mypt_hf.gpu_check/1"
FLASH = "flash_attention_2"
SDPA = "sdpa"
#: every section of a report, in the order they run
SECTION_NAMES = ("setup", "correctness",
                 *(f"train/{i}/{s}" for i in (SDPA, FLASH) for s in ("unpacked", "packed")),
                 *(f"generation/{i}" for i in (SDPA, FLASH)),
                 *(f"train/{SDPA}/{s}/no_ac" for s in ("unpacked", "packed")))

# Dense bf16 tensor-core peak (TFLOP/s) by device name, the vendors' data sheets (sparsity figures halved).
# First match wins, so the specific names come before the generic ones.
PEAK_BF16_TFLOPS: Sequence[Tuple[str, float, str]] = (
    ("GH200", 989.0, "GH200 (H100/H200 SXM class)"),
    ("H200", 989.0, "H200 SXM"),
    ("H100 PCIE", 756.0, "H100 PCIe"),
    ("H100 NVL", 835.0, "H100 NVL"),
    ("H100", 989.0, "H100 SXM"),
    ("H800", 989.0, "H800 SXM"),
    ("B200", 2250.0, "B200"),
    ("A100", 312.0, "A100"),
    ("A800", 312.0, "A800"),
    ("L40S", 362.0, "L40S"),
    ("L40", 181.0, "L40"),
    ("L4", 121.0, "L4"),
    ("A10G", 70.0, "A10G"),
    ("A10", 125.0, "A10"),
)


def peak_bf16_tflops(device_name: Optional[str]) -> Tuple[Optional[float], str]:
    """The dense bf16 peak for a CUDA device name and where it came from; (None, why) when unknown."""
    if not device_name:
        return None, "no CUDA device: MFU not computed"
    upper = device_name.upper()
    for pattern, tflops, label in PEAK_BF16_TFLOPS:
        if pattern in upper:
            return tflops, f"table: {label} dense bf16 {tflops:g} TFLOP/s (matched {pattern!r} in {device_name!r})"
    return None, f"unknown device {device_name!r}: not in the peak table, MFU reported as null"


def step_model_flops(n_params: int, n_layer: int, d_model: int, tokens: int, segments_sq: int,
                     recompute: bool = False) -> float:
    """Model FLOPs of one training step (see the module docstring); ``recompute`` gives hardware FLOPs with
    activation checkpointing (one more forward: 8N and 16·L·d·ΣT² instead of 6N and 12·L·d·ΣT²)."""
    dense, attention = (8, 16) if recompute else (6, 12)
    return float(dense * n_params * tokens + attention * n_layer * d_model * segments_sq)


# --------------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------------

@dataclass
class Shapes:
    """Everything sized: the model, the two batch shapes, step counts, generation."""

    model: Dict[str, Any]
    vocab_size: int
    unpacked_batch: int
    unpacked_len: int
    packed_batch: int
    packed_block: int
    episode_min: int
    episode_max: int
    warmup_steps: int
    steps: int
    gen_prompt: int
    gen_new_tokens: int
    gen_batches: Tuple[int, ...]
    check_blocks: int
    source: Dict[str, str] = field(default_factory=dict)


def _packaged_config(name: str) -> Tuple[Dict[str, Any], str]:
    import yaml

    from mypt_hf.phases.registry import find_config

    path = find_config(name)
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}, str(path)


def full_shapes(steps: int, warmup_steps: int) -> Shapes:
    """The 750M shapes, read from the packaged 750M configs (one source of truth for the model and batches)."""
    from mypt_hf.training.modeling import ModelArguments

    alpha, alpha_path = _packaged_config("phase3a1_alpha_750M")
    operator, operator_path = _packaged_config("phase3a_operator_750M")
    names = {f.name for f in dataclasses.fields(ModelArguments)}
    model = {k: v for k, v in alpha.items() if k in names and k != "require_init_from_model"}
    # one model for both shapes: the operator phase's context (1024) covers α's 512
    model["block_size"] = max(int(alpha["block_size"]), int(operator["block_size"]))
    ModelArguments(**model)  # validates
    return Shapes(model=model, vocab_size=50304,
                  unpacked_batch=int(alpha["per_device_train_batch_size"]), unpacked_len=int(alpha["block_size"]),
                  packed_batch=int(operator["per_device_train_batch_size"]),
                  packed_block=int(operator["pack_block_size"]), episode_min=20, episode_max=45,
                  warmup_steps=warmup_steps, steps=steps, gen_prompt=64, gen_new_tokens=128, gen_batches=(1, 32),
                  check_blocks=2,
                  source={"model_and_unpacked": alpha_path, "packed": operator_path,
                          "vocab_size": "50304: the GPT-2 layout of the converted 750M base (original vocab_size)",
                          "episodes": "20-45 tokens, uniform: the generated operator episodes' range (packing.py)",
                          "activation_checkpointing": f"{alpha.get('activation_checkpointing')} (750M configs)",
                          "dropout": f"{alpha.get('dropout')} (phase3a1_alpha_750M)"})


def smoke_shapes() -> Shapes:
    """Tiny shapes for ``--smoke`` (CPU, seconds): the same code paths, nothing measured that matters."""
    model = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, block_size=128, pos_encoding="rope",
                 mlp_type="swiglu", norm_type="rmsnorm", tie_word_embeddings=True, dropout=0.1)
    # vocab above the embedded tokenizer's 531 tokens, so the trainer's tokenizer/model alignment stays in range
    return Shapes(model=model, vocab_size=576, unpacked_batch=4, unpacked_len=64, packed_batch=2, packed_block=128,
                  episode_min=8, episode_max=24, warmup_steps=1, steps=2, gen_prompt=8, gen_new_tokens=8,
                  gen_batches=(1, 32), check_blocks=2, source={"smoke": "tiny built-in shapes"})


# --------------------------------------------------------------------------------------------------
# report and budget
# --------------------------------------------------------------------------------------------------

class Budget:
    """A global wall-clock budget counted from the script's start."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


class Report:
    """The JSON report; rewritten whole (temporary file, then rename) after every section."""

    def __init__(self, path: Optional[str], data: Dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.data.setdefault("sections", {})

    def write(self) -> None:
        if not self.path:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".gpu_check.", suffix=".json", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
        os.replace(tmp, self.path)


def run_section(report: Report, name: str, budget: Budget, need_s: float,
                fn: Callable[[], Dict[str, Any]], skip_reason: Optional[str] = None) -> Dict[str, Any]:
    """Run one section under a guard: skipped (with the reason) when told or when the budget has less than
    ``need_s`` left; an exception is recorded (type, message, traceback tail) and the run goes on."""
    started = budget.elapsed()
    if skip_reason:
        result: Dict[str, Any] = {"status": "skipped", "reason": skip_reason}
    elif budget.left() < need_s:
        result = {"status": "skipped", "reason": f"time budget: {budget.left():.0f} s left of {budget.seconds:.0f} s, "
                                                 f"section needs ~{need_s:.0f} s"}
    else:
        print(f"[gpu_check] {name} ...", flush=True)
        try:
            result = fn()
            result.setdefault("status", "ok")
        except Exception as error:  # noqa: BLE001 - one section's failure must not stop the others
            result = {"status": "error", "error": f"{type(error).__name__}: {error}"[:2000],
                      "traceback": traceback.format_exc()[-4000:]}
        finally:
            _free_memory()
    result["section_seconds"] = round(budget.elapsed() - started, 2)
    report.data["sections"][name] = result
    report.data["elapsed_s"] = round(budget.elapsed(), 1)
    report.write()
    print(f"[gpu_check] {name}: {result['status']}"
          + (f" ({result.get('reason') or result.get('error')})" if result["status"] != "ok" else ""), flush=True)
    return result


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory is best effort
        pass


def flash_attn_status() -> Tuple[bool, str]:
    """Whether flash_attention_2 can run here, and why not."""
    import torch

    if not torch.cuda.is_available():
        return False, "skipped: no CUDA"
    try:
        import flash_attn  # noqa: F401
    except Exception as error:  # noqa: BLE001 - a broken wheel raises more than ImportError
        return False, f"skipped: flash-attn not installed ({type(error).__name__}: {error})"[:500]
    return True, f"flash_attn {getattr(flash_attn, '__version__', '?')}"


def environment() -> Dict[str, Any]:
    """Versions and the device (name, memory, peak)."""
    import torch

    env: Dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                           "torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
                           "cpu_count": os.cpu_count()}
    for module in ("transformers", "trl", "accelerate", "datasets", "flash_attn"):
        try:
            env[module] = __import__(module).__version__
        except Exception as error:  # noqa: BLE001
            env[module] = f"not available ({type(error).__name__})"
    name = None
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        env.update(device_name=name, device_memory_gib=round(props.total_memory / 2 ** 30, 1),
                   device_count=torch.cuda.device_count(), cuda_version=torch.version.cuda,
                   bf16_supported=torch.cuda.is_bf16_supported(),
                   capability=".".join(map(str, torch.cuda.get_device_capability(0))))
    peak, source = peak_bf16_tflops(name)
    env.update(peak_bf16_tflops=peak, peak_source=source)
    return env


# --------------------------------------------------------------------------------------------------
# model and data
# --------------------------------------------------------------------------------------------------

def build_model(shapes: Shapes, device: Any) -> Any:
    """A fresh MyPT of the shapes' size (the library's config and class, random init), on ``device``, fp32."""
    import torch

    from mypt_hf.configuration_mypt import MyPTConfig
    from mypt_hf.modeling_mypt import MyPTForCausalLM

    m = shapes.model
    config = MyPTConfig(vocab_size=shapes.vocab_size, hidden_size=m["hidden_size"],
                        num_hidden_layers=m["num_hidden_layers"], num_attention_heads=m["num_attention_heads"],
                        max_position_embeddings=m["block_size"], pos_encoding=m["pos_encoding"],
                        mlp_type=m["mlp_type"], norm_type=m["norm_type"],
                        tie_word_embeddings=m["tie_word_embeddings"], dropout=float(m.get("dropout") or 0.0),
                        pad_token_id=0, eos_token_id=None)
    config._attn_implementation = SDPA
    torch.manual_seed(0)
    with torch.device(device):  # initialise straight on the GPU: no 2.8 GB host copy, much faster init
        model = MyPTForCausalLM(config)
    return model


def param_counts(model: Any) -> Dict[str, int]:
    """All parameters (tied matrix once), the non-embedding ones, and the embedding matrix."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return {"total": int(total), "embedding": int(embedding), "non_embedding": int(total - embedding)}


def unpacked_columns(rows: int, length: int, vocab: int, seed: int) -> Dict[str, List[List[int]]]:
    """α-shaped rows: one full-length episode per row, its first half a prompt (labels -100)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(rows, length), dtype=np.int64)
    labels = ids.copy()
    labels[:, : length // 2] = -100
    return {"input_ids": ids.tolist(), "labels": labels.tolist()}


def packed_columns(blocks: int, block: int, episode_min: int, episode_max: int, vocab: int,
                   seed: int) -> Dict[str, List[List[int]]]:
    """Operator-shaped rows: synthetic episodes packed whole into blocks by ``mypt_hf.data.packing``.

    Each episode is a prompt (about 60 %, labels -100) and a reply; episodes are drawn until at least
    ``blocks`` blocks are full, and the first ``blocks`` blocks are kept.
    """
    import numpy as np

    from mypt_hf.data.packing import build_blocks, pack_lengths

    rng = np.random.default_rng(seed)
    n_episodes = int(blocks * block / ((episode_min + episode_max) / 2) * 1.05) + 4
    lengths = rng.integers(episode_min, episode_max + 1, size=n_episodes)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat_ids = rng.integers(1, vocab, size=int(offsets[-1]), dtype=np.int64).astype(np.int32)
    flat_labels = flat_ids.copy()
    for i in range(n_episodes):
        flat_labels[offsets[i]: offsets[i] + int(lengths[i] * 0.6)] = -100
    packing = pack_lengths(lengths, block, seed=seed)[:blocks]
    built = build_blocks(flat_ids, flat_labels, offsets, packing, block, pad_token_id=0)
    return {"input_ids": built.input_ids.tolist(), "labels": built.labels.tolist(),
            "seq_lengths": [s.tolist() for s in built.seq_lengths]}


def collator_for(packed: bool, block: int) -> Any:
    from mypt_hf.data.packing import PackedEpisodeCollator

    return PackedEpisodeCollator(pad_token_id=0, packed=packed, pad_to_multiple_of=block)


def _to_device(batch: Dict[str, Any], device: Any) -> Dict[str, Any]:
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}


def _autocast(device: Any):
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _checkpointing_off(model: Any) -> None:
    # transformers 5 renamed gradient_* to activation_checkpointing_*; keep both spellings working
    if hasattr(model, "is_activation_checkpointing"):
        if model.is_activation_checkpointing:
            model.activation_checkpointing_disable()
    elif getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()


def set_attention(model: Any, implementation: str) -> None:
    """Switch the attention implementation in place (transformers checks that it is installed)."""
    model.set_attn_implementation(implementation)
    if model.config._attn_implementation != implementation:
        raise RuntimeError(f"attention is {model.config._attn_implementation!r}, not {implementation!r}")


# --------------------------------------------------------------------------------------------------
# (b) correctness: packed loss == per-episode loss
# --------------------------------------------------------------------------------------------------

def packed_vs_episodes(model: Any, shapes: Shapes, device: Any, implementations: Sequence[str],
                       flash_reason: str) -> Dict[str, Any]:
    """Loss of packed rows vs the same episodes one by one, per attention implementation, and across them."""
    import torch

    cuda = getattr(device, "type", str(device)) == "cuda"
    rtol = 2e-2 if cuda else 1e-5
    columns = packed_columns(shapes.check_blocks, shapes.packed_block, shapes.episode_min, shapes.episode_max,
                             shapes.vocab_size, seed=1)
    features = [dict(zip(columns, row)) for row in zip(*columns.values())]
    batch = collator_for(True, shapes.packed_block)(features)
    # the episodes from the packer's own record (seq_lengths), not from the collator's output under test
    episodes: List[Tuple[Any, Any]] = []
    for ids, labels, segments in zip(columns["input_ids"], columns["labels"], columns["seq_lengths"]):
        start = 0
        for length in segments:
            ep_ids, ep_labels = ids[start:start + length], labels[start:start + length]
            start += length
            if any(y != -100 for y in ep_labels[1:]):  # the pad segment supervises nothing: not an episode
                episodes.append((torch.tensor(ep_ids), torch.tensor(ep_labels)))
    supervised = sum(int((y[1:] != -100).sum()) for _, y in episodes)
    if supervised != int((batch["labels"][:, 1:] != -100).sum()):
        raise RuntimeError("the collated batch supervises other tokens than its episodes do")
    count = torch.tensor(supervised, device=device)
    model.eval()
    result: Dict[str, Any] = {"dtype": "bf16 autocast" if cuda else "fp32", "relative_tolerance": rtol,
                              "packed_rows": int(batch["input_ids"].shape[0]), "block": shapes.packed_block,
                              "episodes": len(episodes), "supervised_tokens": supervised,
                              "loss": "model's loss: sum CE over supervised tokens / supervised tokens"}
    losses: Dict[str, float] = {}
    try:
        for implementation in (SDPA, FLASH):
            if implementation not in implementations:
                result[implementation] = {"status": "skipped", "reason": flash_reason}
                continue
            try:
                set_attention(model, implementation)
                with torch.no_grad(), _autocast(device):
                    packed = model(**_to_device(batch, device), use_cache=False,
                                   num_items_in_batch=count).loss.float().item()
                    per_episode = 0.0
                    for ids, labels in episodes:
                        per_episode += model(input_ids=ids[None].to(device), labels=labels[None].to(device),
                                             use_cache=False, num_items_in_batch=count).loss.float().item()
                diff = abs(packed - per_episode) / max(abs(per_episode), 1e-12)
                losses[implementation] = packed
                result[implementation] = {"status": "ok" if diff <= rtol else "failed", "packed_loss": packed,
                                          "per_episode_loss": per_episode, "relative_difference": diff}
            except Exception as error:  # noqa: BLE001 - flash-attn may be broken while sdpa works
                result[implementation] = {"status": "error", "error": f"{type(error).__name__}: {error}"[:2000],
                                          "traceback": traceback.format_exc()[-3000:]}
        if SDPA in losses and FLASH in losses:
            diff = abs(losses[FLASH] - losses[SDPA]) / max(abs(losses[SDPA]), 1e-12)
            result["flash_vs_sdpa_packed"] = {"status": "ok" if diff <= rtol else "failed",
                                              "relative_difference": diff}
        else:
            result["flash_vs_sdpa_packed"] = {"status": "skipped", "reason": flash_reason if FLASH not in losses
                                              else "sdpa loss missing"}
    finally:
        set_attention(model, SDPA)
        model.train()
    states = [v["status"] for v in result.values() if isinstance(v, dict)]
    result["status"] = "failed" if "failed" in states else "error" if "error" in states else "ok"
    return result


# --------------------------------------------------------------------------------------------------
# (a) training throughput
# --------------------------------------------------------------------------------------------------

def _segments_sq(columns: Dict[str, List[List[int]]], packed: bool, attn_mask_len: int) -> Tuple[int, int]:
    """Per-row (positions, Σ T²) averaged as integers over the dataset: the attention term's input."""
    rows = len(columns["input_ids"])
    if not packed:
        return attn_mask_len, attn_mask_len ** 2
    total_sq = sum(sum(int(s) ** 2 for s in segs) for segs in columns["seq_lengths"])
    return attn_mask_len, total_sq // rows


def _utilisation(seconds: float, steps: int, batch: int, row_len: int, row_sq: int, counts: Dict[str, int],
                 n_layer: int, d_model: int, peak: Optional[float], recompute: bool) -> Dict[str, Any]:
    tokens = steps * batch * row_len
    segs = steps * batch * row_sq
    model_flops = step_model_flops(counts["total"], n_layer, d_model, tokens, segs)
    hardware_flops = step_model_flops(counts["total"], n_layer, d_model, tokens, segs, recompute=recompute)
    non_embedding = step_model_flops(counts["non_embedding"], n_layer, d_model, tokens, segs)
    out = {"model_tflops_per_s": model_flops / seconds / 1e12,
           "hardware_tflops_per_s": hardware_flops / seconds / 1e12}
    if peak:
        out.update(mfu=model_flops / seconds / (peak * 1e12), hfu=hardware_flops / seconds / (peak * 1e12),
                   mfu_non_embedding_n=non_embedding / seconds / (peak * 1e12))
    else:
        out.update(mfu=None, hfu=None, mfu_non_embedding_n=None,
                   mfu_note="device peak unknown (not in the table): MFU not computed")
    return out


def train_throughput(model: Any, tokenizer: Any, shapes: Shapes, device: Any, packed: bool, implementation: str,
                     activation_checkpointing: bool, train_path: str, budget: Budget, counts: Dict[str, int],
                     peak: Optional[float], reserve_s: float) -> Dict[str, Any]:
    """Warm-up steps then timed steps of one configuration; tokens/s, MFU, peak memory."""
    import torch

    cuda = getattr(device, "type", str(device)) == "cuda"
    batch = shapes.packed_batch if packed else shapes.unpacked_batch
    row_len = shapes.packed_block if packed else shapes.unpacked_len
    total_steps = shapes.warmup_steps + shapes.steps
    rows = batch * total_steps
    columns = (packed_columns(rows, row_len, shapes.episode_min, shapes.episode_max, shapes.vocab_size, seed=2)
               if packed else unpacked_columns(rows, row_len, shapes.vocab_size, seed=2))
    row_len, row_sq = _segments_sq(columns, packed, row_len)
    supervised_per_row = sum(sum(1 for y in labels[1:] if y != -100) for labels in columns["labels"]) / rows
    set_attention(model, implementation)
    if not activation_checkpointing:
        _checkpointing_off(model)
    model.train()
    model.zero_grad(set_to_none=True)
    _free_memory()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    weights_bytes = torch.cuda.memory_allocated() if cuda else None
    deadline = budget.left() - reserve_s
    if train_path == "trainer":
        timing = _train_with_trainer(model, tokenizer, columns, packed, row_len, batch, shapes, cuda,
                                     activation_checkpointing, deadline)
    else:
        timing = _train_manual(model, columns, packed, row_len, batch, shapes, device, activation_checkpointing,
                               deadline)
    result: Dict[str, Any] = {
        "train_path": timing.pop("train_path"), "attention": implementation,
        "shape": f"{batch} x {row_len} {'packed' if packed else 'unpacked'}",
        "activation_checkpointing": activation_checkpointing, "precision": "bf16 autocast, fp32 master weights"
        if cuda else "fp32", "warmup_steps": shapes.warmup_steps, **timing}
    steps, seconds = timing["timed_steps"], timing["timed_seconds"]
    if steps < 1 or seconds <= 0:
        result.update(status="failed", reason="no timed steps (time budget ran out during warm-up?)")
        return result
    tokens = steps * batch * row_len
    result.update(tokens_per_s=tokens / seconds, supervised_tokens_per_s=steps * batch * supervised_per_row / seconds,
                  seconds_per_step=seconds / steps, tokens_per_step=batch * row_len,
                  mean_attended_length=(row_sq / row_len) if row_len else None,
                  **_utilisation(seconds, steps, batch, row_len, row_sq, counts, model.config.num_hidden_layers,
                                 model.config.hidden_size, peak, activation_checkpointing))
    if cuda:
        result.update(peak_memory_allocated_gib=torch.cuda.max_memory_allocated() / 2 ** 30,
                      peak_memory_reserved_gib=torch.cuda.max_memory_reserved() / 2 ** 30,
                      weights_memory_gib=weights_bytes / 2 ** 30)
    else:
        result["peak_memory_allocated_gib"] = None
    if timing.get("stopped_early"):
        result["note"] = "stopped early by the time budget; figures from the steps that ran"
    _checkpointing_off(model)
    return result


def _train_with_trainer(model, tokenizer, columns, packed, row_len, batch, shapes, cuda, activation_checkpointing,
                        deadline_left_s) -> Dict[str, Any]:
    """Time MyPTSFTTrainer.train(): a callback starts the clock after the warm-up steps."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from mypt_hf.training import MyPTSFTConfig, MyPTSFTTrainer

    started = time.perf_counter()
    marks: Dict[str, Any] = {"t0": None, "t1": None, "steps": 0, "stopped_early": False}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            now = time.perf_counter()
            if state.global_step == shapes.warmup_steps:
                marks["t0"] = now
            elif marks["t0"] is not None:
                marks["t1"], marks["steps"] = now, state.global_step - shapes.warmup_steps
            if now - started > deadline_left_s:
                marks["stopped_early"] = True
                control.should_training_stop = True
            return control

    with tempfile.TemporaryDirectory(prefix="gpu_check_") as output_dir:
        config = MyPTSFTConfig(output_dir=output_dir, max_steps=shapes.warmup_steps + shapes.steps,
                               per_device_train_batch_size=batch, learning_rate=7e-5, warmup_steps=0,
                               logging_steps=10 ** 6, save_strategy="no", eval_strategy="no", report_to="none",
                               disable_tqdm=True, dataloader_num_workers=0, seed=0, bf16=cuda,
                               activation_checkpointing=activation_checkpointing)
        trainer = MyPTSFTTrainer(model=model, args=config, train_dataset=Dataset.from_dict(columns),
                                 processing_class=tokenizer, data_collator=collator_for(packed, row_len),
                                 callbacks=[Clock()])
        optimizer_name = str(getattr(config.optim, "value", config.optim))
        trainer.train()
        trainer.accelerator.free_memory()
        del trainer
    seconds = (marks["t1"] - marks["t0"]) if marks["t0"] is not None and marks["t1"] is not None else 0.0
    return {"train_path": f"MyPTSFTTrainer.train() (TRL fused-head loss, optim {optimizer_name}, "
                          f"grad clip 1.0, cosine schedule)",
            "timed_steps": int(marks["steps"]), "timed_seconds": seconds, "stopped_early": marks["stopped_early"]}


def _train_manual(model, columns, packed, row_len, batch, shapes, device, activation_checkpointing,
                  deadline_left_s) -> Dict[str, Any]:
    """Without TRL: the same model and loss (sum CE / supervised tokens) with a fused AdamW in a plain loop."""
    import torch

    cuda = getattr(device, "type", str(device)) == "cuda"
    if activation_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable({"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(model.parameters(), lr=7e-5, betas=(0.9, 0.95), weight_decay=0.05, fused=cuda)
    collate = collator_for(packed, row_len)
    features = [dict(zip(columns, row)) for row in zip(*columns.values())]
    started = time.perf_counter()
    t0, steps, stopped = None, 0, False
    for step in range(shapes.warmup_steps + shapes.steps):
        inputs = _to_device(collate(features[step * batch:(step + 1) * batch]), device)
        count = (inputs["labels"][:, 1:] != -100).sum()
        with _autocast(device):
            loss = model(**inputs, use_cache=False, num_items_in_batch=count).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        if step + 1 == shapes.warmup_steps:
            t0 = now
        elif t0 is not None:
            steps, t1 = step + 1 - shapes.warmup_steps, now
        if now - started > deadline_left_s:
            stopped = True
            break
    del optimizer
    seconds = (t1 - t0) if steps else 0.0
    return {"train_path": f"manual loop (model + its loss + torch.optim.AdamW fused={cuda}, grad clip 1.0)",
            "timed_steps": steps, "timed_seconds": seconds, "stopped_early": stopped}


# --------------------------------------------------------------------------------------------------
# (c) generation
# --------------------------------------------------------------------------------------------------

def generation_throughput(shapes: Shapes, device: Any, implementation: str) -> Dict[str, Any]:
    """New tokens/s of greedy ``generate`` with the KV cache, per batch size (bf16 weights on CUDA), on a fresh model
    of the shapes' size."""
    import torch

    cuda = getattr(device, "type", str(device)) == "cuda"
    # A fresh model, not a copy of the trained one: each MyPTSFTTrainer patched that one's forward with TRL's fused
    # head, whose closure points at the original instance, so a deepcopy would still run the fp32 original (and its
    # attention setting). Random weights do not change the speed.
    gen = build_model(shapes, device)
    if cuda:
        gen = gen.to(torch.bfloat16)
    try:
        set_attention(gen, implementation)
        gen.eval()
        generator = torch.Generator().manual_seed(3)
        settings = dict(do_sample=False, use_cache=True, eos_token_id=None, pad_token_id=0, bos_token_id=None,
                        temperature=None, top_k=None, top_p=None)
        out: Dict[str, Any] = {"attention": implementation, "dtype": "bf16 weights" if cuda else "fp32",
                               "prompt_tokens": shapes.gen_prompt, "new_tokens": shapes.gen_new_tokens,
                               "path": "model.generate (GenerationMixin, DynamicCache), greedy, "
                                       "min_new_tokens = max_new_tokens", "batches": {}}
        for batch in shapes.gen_batches:
            prompt = torch.randint(1, shapes.vocab_size, (batch, shapes.gen_prompt), generator=generator).to(device)
            mask = torch.ones_like(prompt)
            with torch.no_grad():
                gen.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=4, min_new_tokens=4, **settings)
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                ids = gen.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=shapes.gen_new_tokens,
                                   min_new_tokens=shapes.gen_new_tokens, **settings)
                if cuda:
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
            new = int(ids.shape[1] - prompt.shape[1])
            out["batches"][str(batch)] = {"seconds": seconds, "new_tokens_per_row": new,
                                          "new_tokens_per_s": batch * new / seconds,
                                          "ms_per_decode_step": 1000 * seconds / max(new, 1)}
        return out
    finally:
        del gen


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

def summary_lines(report: Dict[str, Any]) -> List[str]:
    """The human summary printed at the end (and stored in the report)."""
    env = report.get("environment", {})
    lines = [f"gpu_check ({report['mode']}) on {env.get('device_name') or 'CPU'}: peak "
             f"{env.get('peak_bf16_tflops') or 'unknown'} TFLOP/s; {report.get('elapsed_s')} s of "
             f"{report['budget_s']} s budget"]
    model = report.get("model", {})
    if model:
        lines.append(f"model: {model.get('params', {}).get('total', 0) / 1e6:.1f}M parameters "
                     f"({model.get('params', {}).get('non_embedding', 0) / 1e6:.1f}M non-embedding)")
    for name, section in report["sections"].items():
        status = section.get("status")
        if name.startswith("train/") and status == "ok":
            mfu = section.get("mfu")
            mem = section.get("peak_memory_allocated_gib")
            lines.append(f"{name:<32} {section['tokens_per_s']:>10.0f} tok/s  "
                         f"MFU {'n/a' if mfu is None else f'{100 * mfu:5.1f}%'}  "
                         f"peak {'n/a' if mem is None else f'{mem:6.1f} GiB'}  ({section['shape']})")
        elif name.startswith("generation/") and status == "ok":
            speeds = ", ".join(f"batch {b}: {v['new_tokens_per_s']:.0f} tok/s" for b, v in section["batches"].items())
            lines.append(f"{name:<32} {speeds}")
        elif name == "setup" and status == "ok":
            lines.append(f"{'setup':<32} ok: model built ({section.get('params', {}).get('total')} parameters)")
        elif name == "correctness":
            parts = []
            for key in (SDPA, FLASH, "flash_vs_sdpa_packed"):
                sub = section.get(key, {})
                detail = f" (rel {sub['relative_difference']:.2e})" if "relative_difference" in sub else ""
                parts.append(f"{key}: {sub.get('status', status)}{detail}")
            lines.append(f"{'correctness (packed == episodes)':<32} " + "; ".join(parts))
        else:
            lines.append(f"{name:<32} {status}: {section.get('reason') or section.get('error')}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the JSON report here (rewritten after every section)")
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU: the same code, in seconds")
    parser.add_argument("--budget_s", type=float, default=420.0, help="global wall-clock budget in seconds")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per configuration")
    parser.add_argument("--warmup_steps", type=int, default=5, help="untimed steps first")
    parser.add_argument("--train_path", choices=("auto", "trainer", "manual"), default="auto",
                        help="auto: MyPTSFTTrainer when trl imports, else the manual loop")
    parser.add_argument("--no_flash", action="store_true", help="leave flash_attention_2 out even if installed")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available; --smoke: cpu)")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded; never wait on a network
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    budget = Budget(args.budget_s)
    report = Report(args.out, {"schema": SCHEMA, "mode": "smoke" if args.smoke else "full",
                               "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                               "budget_s": args.budget_s, "argv": list(sys.argv if argv is None else argv),
                               "mfu_formula": "MFU = (6*N*tokens + 12*n_layer*d_model*sum_segments(T^2)) / seconds / "
                                              "peak; N = all parameters (tied embedding once = the lm_head matmul), "
                                              "PaLM (Chowdhery et al. 2022, App. B) / Chinchilla (Hoffmann et al. "
                                              "2022, App. F) convention; T = attended sequence length (the episode "
                                              "for packed rows); HFU adds the checkpointing recompute (8N, 16*L*d*T^2); "
                                              "mfu_non_embedding_n uses N without the embedding (Kaplan et al. 2020)",
                               "sections": {}})
    import torch

    device = torch.device(args.device or ("cpu" if args.smoke or not torch.cuda.is_available() else "cuda"))
    cuda = device.type == "cuda"
    env = environment()
    report.data["environment"] = env
    report.data["device"] = str(device)
    shapes = smoke_shapes() if args.smoke else full_shapes(args.steps, args.warmup_steps)
    if args.smoke:
        shapes.steps, shapes.warmup_steps = min(args.steps, shapes.steps), min(args.warmup_steps, shapes.warmup_steps)
    report.data["shapes"] = dataclasses.asdict(shapes)
    flash_ok, flash_reason = flash_attn_status() if cuda else (False, "skipped: no CUDA")
    if args.no_flash:
        flash_ok, flash_reason = False, "skipped: --no_flash"
    implementations = [SDPA] + ([FLASH] if flash_ok else [])
    report.data["flash_attention_2"] = flash_reason
    train_path = args.train_path
    if train_path == "auto":
        try:
            import trl  # noqa: F401

            from mypt_hf.training import MyPTSFTTrainer  # noqa: F401

            train_path = "trainer"
        except Exception as error:  # noqa: BLE001
            train_path = "manual"
            report.data["train_path_note"] = f"trl/MyPTSFTTrainer not importable ({error}); manual loop used"
    report.data["train_path"] = train_path
    report.write()

    model_holder: Dict[str, Any] = {}

    def setup() -> Dict[str, Any]:
        model = build_model(shapes, device)
        model_holder["model"] = model
        counts = param_counts(model)
        report.data["model"] = {"shape": shapes.model, "vocab_size": shapes.vocab_size, "params": counts,
                                "source": shapes.source}
        return {"params": counts, "weights_gib": torch.cuda.memory_allocated() / 2 ** 30 if cuda else None}

    setup_result = run_section(report, "setup", budget, 0.0, setup)
    if setup_result["status"] != "ok":
        for name in SECTION_NAMES[1:]:  # every section still gets its entry, saying why it did not run
            report.data["sections"][name] = {"status": "skipped", "reason": f"setup {setup_result['status']}"}
        return finish(report, budget)
    model = model_holder["model"]
    counts = report.data["model"]["params"]
    peak = env.get("peak_bf16_tflops") if cuda else None
    tokenizer = None
    if train_path == "trainer":
        from mypt_hf.tokenization_mypt import load_tokenizer

        tokenizer = load_tokenizer()  # the trainer wants a processing_class; rows are synthetic ids < vocab_size

    # (b) first: cheap, and the answer that matters most if the budget runs short
    run_section(report, "correctness", budget, 20.0 if cuda else 2.0,
                lambda: packed_vs_episodes(model, shapes, device, implementations, flash_reason))
    # (a) with the 750M configs' activation checkpointing
    need = 45.0 if cuda else 3.0
    reserve = 15.0 if cuda else 1.0
    for implementation in (SDPA, FLASH):
        for packed in (False, True):
            name = f"train/{implementation}/{'packed' if packed else 'unpacked'}"
            run_section(report, name, budget, need,
                        lambda p=packed, i=implementation: train_throughput(
                            model, tokenizer, shapes, device, p, i, True, train_path, budget, counts, peak, reserve),
                        skip_reason=None if implementation in implementations else flash_reason)
    # (c)
    for implementation in (SDPA, FLASH):
        run_section(report, f"generation/{implementation}", budget, 30.0 if cuda else 2.0,
                    lambda i=implementation: generation_throughput(shapes, device, i),
                    skip_reason=None if implementation in implementations else flash_reason)
    # memory without activation checkpointing (for the memory plan)
    for packed in (False, True):
        name = f"train/{SDPA}/{'packed' if packed else 'unpacked'}/no_ac"
        run_section(report, name, budget, need,
                    lambda p=packed: train_throughput(model, tokenizer, shapes, device, p, SDPA, False, train_path,
                                                      budget, counts, peak, reserve))
    return finish(report, budget)


def finish(report: Report, budget: Budget) -> int:
    """Write the summary into the report, print it; exit status 1 when a correctness check failed."""
    report.data["elapsed_s"] = round(budget.elapsed(), 1)
    lines = summary_lines(report.data)
    report.data["summary"] = lines
    report.write()
    print("\n".join(lines), flush=True)
    correctness = report.data["sections"].get("correctness", {})
    return 1 if correctness.get("status") == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
