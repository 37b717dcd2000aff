#!/usr/bin/env python
"""The 750M memory plan and phase wall times: computed, not measured (except where a table says so).

Prints markdown tables (``--json PATH`` writes the same figures as JSON):

1. parameters, counted with the real model class on the meta device (no memory, no download);
2. model states per parameter (weights, gradients, AdamW m and v, fp32 masters) for bf16 autocast (what
   ``MyPTSFTConfig(bf16=True)`` does: fp32 weights, bf16 compute) and pure bf16 (bf16 weights with fp32
   masters; and without masters, lossy);
3. activations per token per decoder layer, by formula from the layer shapes (CUDA, bf16 autocast, sdpa's
   flash / memory-efficient kernel or flash-attn: no T x T scores kept) AND measured on CPU at the real width
   with ``torch.autograd.graph.saved_tensors_hooks`` (the bytes of every distinct tensor autograd saves, two
   layers minus one); ``--no_measure`` skips the measurement;
4. per-GPU totals for α (16 x 512) and the operator phase (16 x 1024 packed) with and without activation
   checkpointing, on 1 GPU, 8-GPU DDP and 8-GPU FSDP (full shard);
5. wall time per 750M phase (steps and tokens from the packaged 750M configs) at an ASSUMED MFU on an ASSUMED
   GPU, and, with ``--gpu_check_report``, at the throughput benchmarks/gpu_check.py measured.

    python benchmarks/memory_plan.py                       # ~20 s on CPU (the measurement); --no_measure: ~5 s
    python benchmarks/memory_plan.py --mfu 0.40 --gpu "H100 SXM" --gpu_check_report outputs/gpu_check/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

GIB = 2 ** 30
PHASES = ("phase3a1_alpha", "phase3a1_beta", "phase3a1_gamma", "phase3a2", "phase3a_operator")
GPU_PEAK_TFLOPS = {"H100 SXM": 989.0, "H100 PCIe": 756.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}
#: Packed blocks of the 750M operator phase: 9000 operator episodes (operator_n_train, seed 42, GPT-2 tokenizer)
#: packed by operator into 1024-token blocks -> 290 blocks (counted with --count_operator_blocks on
#: ../shared/data/gpt2.tiktoken); about 31 episodes of ~33 tokens per block.
OPERATOR_BLOCKS = 290
OPERATOR_MEAN_EPISODE_TOKENS = 33


# --------------------------------------------------------------------------------------------------
# 1. parameters
# --------------------------------------------------------------------------------------------------

def config_values(phase: str) -> Dict[str, Any]:
    """The packaged ``<phase>_750M.yaml`` as a dict."""
    import yaml

    from mypt_hf.phases.registry import find_config

    return yaml.safe_load(find_config(f"{phase}_750M").read_text(encoding="utf-8")) or {}


def model_config(vocab_size: int = 50304, block_size: Optional[int] = None, **overrides: Any):
    """The 750M MyPTConfig (shape from phase3a1_alpha_750M.yaml, vocab 50304 = the GPT-2 layout)."""
    from mypt_hf.configuration_mypt import MyPTConfig

    alpha = config_values("phase3a1_alpha")
    values = dict(vocab_size=vocab_size, hidden_size=alpha["hidden_size"],
                  num_hidden_layers=alpha["num_hidden_layers"], num_attention_heads=alpha["num_attention_heads"],
                  max_position_embeddings=block_size or alpha["block_size"], pos_encoding=alpha["pos_encoding"],
                  mlp_type=alpha["mlp_type"], norm_type=alpha["norm_type"],
                  tie_word_embeddings=alpha["tie_word_embeddings"])
    values.update(overrides)
    return MyPTConfig(**values)


def count_parameters(config) -> Dict[str, int]:
    """Parameter counts of MyPTForCausalLM(config), built on the meta device (tied weights counted once)."""
    import torch

    from mypt_hf.modeling_mypt import MyPTForCausalLM
    from mypt_hf.training.freezing import decay_parameter_names

    with torch.device("meta"):
        model = MyPTForCausalLM(config)
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    layer = sum(p.numel() for p in model.model.layers[0].parameters())
    decay = set(decay_parameter_names(model))
    decayed = sum(p.numel() for n, p in model.named_parameters() if n in decay)
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding, "per_layer": layer,
            "layers": config.num_hidden_layers, "lm_head_bias": config.vocab_size if config.lm_head_bias else 0,
            "decayed": decayed, "not_decayed": total - decayed}


# --------------------------------------------------------------------------------------------------
# 2. model states
# --------------------------------------------------------------------------------------------------

#: bytes per parameter: (weights, gradients, fp32 master copy, AdamW m + v)
STATE_SCHEMES = {
    "bf16 autocast (Trainer bf16=True)": (4, 4, 0, 8),
    "pure bf16 + fp32 masters": (2, 2, 4, 8),
    "pure bf16, no masters (lossy)": (2, 2, 0, 4),
}


def state_bytes(n_params: int, scheme: str) -> Dict[str, float]:
    weights, grads, masters, adam = STATE_SCHEMES[scheme]
    return {"weights": weights * n_params, "gradients": grads * n_params, "fp32_masters": masters * n_params,
            "adam_m_v": adam * n_params, "total": (weights + grads + masters + adam) * n_params,
            "bytes_per_param": weights + grads + masters + adam}


# --------------------------------------------------------------------------------------------------
# 3. activations
# --------------------------------------------------------------------------------------------------

@dataclass
class LayerActivations:
    """Bytes autograd keeps per token for one decoder layer (bf16 autocast, residual stream in fp32)."""

    norms: int           # 2 RMSNorms x (fp32 input + fp32 normalised output) = 16h
    linear_inputs: int   # bf16 casts of the inputs of q, k, v, o, gate, up = 6 x 2h (down: counted in mlp)
    attention_core: int  # q, k, v, out (bf16) + log-sum-exp (fp32 per head) of the sdpa / flash kernel
    mlp: int             # gate out, SiLU out, up out, product (= down's input), bf16 = 4 x 2i
    dropout_masks: int   # after the attention projection and after the MLP: 1 byte per element = 2h
    rsqrt: int           # the two norms' fp32 rsqrt per token

    @property
    def total(self) -> int:
        return self.norms + self.linear_inputs + self.attention_core + self.mlp + self.dropout_masks + self.rsqrt


def swiglu(hidden: int) -> int:
    """The MLP width the 750M config derives (int(8h/3) rounded up to 64)."""
    from mypt_hf.configuration_mypt import swiglu_hidden_size

    return swiglu_hidden_size(hidden)


def layer_activation_formula(hidden: int, intermediate: int, heads: int, dropout: bool = True,
                             core_bytes: int = 2) -> LayerActivations:
    """Per-token, per-layer saved bytes from the layer shapes (see LayerActivations); ``core_bytes`` the
    element size of q/k/v/out as the attention kernel saves them."""
    return LayerActivations(norms=2 * 2 * 4 * hidden, linear_inputs=6 * 2 * hidden,
                            attention_core=4 * core_bytes * hidden + 4 * heads, mlp=4 * 2 * intermediate,
                            dropout_masks=2 * hidden if dropout else 0, rsqrt=2 * 4)


def measure_layer_activations(hidden: int, heads: int, tokens: int = 512, dropout: float = 0.0) -> Dict[str, Any]:
    """Saved-for-backward bytes per token of one decoder layer, measured on CPU under bf16 autocast.

    Builds the real model class with 1 and 2 layers at the given width (small vocab: the head cancels in the
    difference), runs a forward in train mode with ``saved_tensors_hooks`` recording each distinct storage
    autograd saves, and leaves out parameters and the bf16 weight copies (shape of a parameter). Dropout 0 by
    default: with dropout CPU sdpa falls back to its math kernel, which keeps the T x T probabilities (the CUDA
    kernels regenerate them), so the formula's dropout masks are added separately.
    """
    import torch

    from mypt_hf.configuration_mypt import MyPTConfig
    from mypt_hf.modeling_mypt import MyPTForCausalLM

    def saved_bytes(layers: int) -> int:
        config = MyPTConfig(vocab_size=320, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            max_position_embeddings=tokens, dropout=dropout)
        config._attn_implementation = "sdpa"
        torch.manual_seed(0)
        model = MyPTForCausalLM(config).train()
        param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
        param_shapes = {tuple(p.shape) for p in model.parameters() if p.dim() == 2}
        seen: Dict[int, int] = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in param_ptrs and tuple(tensor.shape) not in param_shapes:
                seen.setdefault(storage.data_ptr(), storage.nbytes())
            return tensor

        ids = torch.randint(0, config.vocab_size, (1, tokens), generator=torch.Generator().manual_seed(0))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
            model.model(input_ids=ids, use_cache=False)
        return sum(seen.values())

    one, two = saved_bytes(1), saved_bytes(2)
    return {"bytes_per_token_layer": (two - one) / tokens, "tokens": tokens, "hidden": hidden, "heads": heads,
            "dropout": dropout, "how": "CPU, bf16 autocast, saved_tensors_hooks, 2 layers minus 1"}


def activation_bytes(per_token_layer: float, hidden: int, layers: int, tokens: int,
                     checkpointing: bool) -> Dict[str, float]:
    """Activations of one micro-batch of ``tokens`` tokens.

    Without checkpointing every layer keeps its saved tensors. With it (HF's GradientCheckpointingLayer, one
    checkpoint per decoder layer) each layer keeps only its fp32 input (4h per token) and one layer's saved
    tensors exist at a time, during its recompute in the backward. The head adds the final norm (8h fp32) and the
    fused lm_head's bf16 hidden copy (2h); TRL's fused head scores in tiles, so no (tokens x vocab) logits.
    """
    head = (8 + 2) * hidden * tokens
    if checkpointing:
        kept = layers * 4 * hidden * tokens + per_token_layer * tokens
    else:
        kept = layers * per_token_layer * tokens
    return {"layers": kept, "head": head, "total": kept + head}


# --------------------------------------------------------------------------------------------------
# 4. per GPU
# --------------------------------------------------------------------------------------------------

def per_gpu_plan(counts: Dict[str, int], per_token_layer: float, hidden: int, shapes: Dict[str, int],
                 world: int = 8) -> List[Dict[str, Any]]:
    """GiB per GPU for each (setup, shape, checkpointing), bf16 autocast states (16 B/param).

    DDP: the model states are replicated and DDP's gradient buckets are a second fp32 copy of the gradients
    (``gradient_as_bucket_view=False``, the default). FSDP full shard: model states / world, plus the gathered
    working set: the root unit (embedding/lm_head, final norm, bias: stays gathered through forward and backward)
    and two decoder layers (current + prefetched) as fp32 weights and gradients. Autocast keeps a bf16 copy of
    each weight that a backward needs: all of them without checkpointing (2N; FSDP: the gathered ones), one
    layer's with it. Allocator fragmentation and the CUDA context (~0.5-1 GiB, not in max_memory_allocated)
    are not included.
    """
    n = counts["total"]
    layers = counts["layers"]
    states = state_bytes(n, "bf16 autocast (Trainer bf16=True)")["total"]
    rows = []
    for shape_name, tokens in shapes.items():
        for checkpointing in (True, False):
            act = activation_bytes(per_token_layer, hidden, layers, tokens, checkpointing)["total"]
            weight_copies_full = 2 * (n if not checkpointing else counts["per_layer"] + counts["embedding"])
            for setup in ("1 GPU", f"{world}-GPU DDP", f"{world}-GPU FSDP full shard"):
                if setup == "1 GPU":
                    model_states, extra, copies = states, 0.0, weight_copies_full
                elif "DDP" in setup:
                    model_states, extra, copies = states, 4.0 * n, weight_copies_full
                else:
                    model_states = states / world
                    extra = (4 + 4) * (counts["embedding"] + counts["lm_head_bias"] + 2 * counts["per_layer"])
                    copies = 2 * (counts["embedding"] + 2 * counts["per_layer"])
                total = model_states + extra + copies + act
                rows.append({"setup": setup, "shape": shape_name, "activation_checkpointing": checkpointing,
                             "model_states_gib": model_states / GIB, "extra_gib": extra / GIB,
                             "bf16_weight_copies_gib": copies / GIB, "activations_gib": act / GIB,
                             "total_gib": total / GIB})
    return rows


# --------------------------------------------------------------------------------------------------
# 5. wall time
# --------------------------------------------------------------------------------------------------

def phase_plan(counts: Dict[str, int], hidden: int, operator_blocks: int) -> List[Dict[str, Any]]:
    """Steps, tokens and model FLOPs of each 750M phase on one GPU (per-device batch of the config).

    Unpacked phases: rows counted at the full block (an upper bound: the collator pads to the batch's longest
    row, shorter in practice). The operator phase: steps = ceil(coverage x blocks / batch) as the trainer
    resolves it; attention over an episode (~33 tokens), not the block. FLOPs: 6N + 12·L·d·T per token (PaLM).
    """
    rows = []
    for phase in PHASES:
        values = config_values(phase)
        batch = int(values["per_device_train_batch_size"])
        block = int(values.get("pack_block_size") or values["block_size"])
        packed = bool(values.get("enable_packing"))
        if values.get("max_steps"):
            steps, how = int(values["max_steps"]), "max_steps"
        else:
            coverage = float(values["coverage"])
            steps = max(1, math.ceil(coverage * operator_blocks / batch))
            how = f"coverage {coverage} x {operator_blocks} blocks / batch {batch}"
        tokens = steps * batch * block
        attended = OPERATOR_MEAN_EPISODE_TOKENS if packed else block
        flops = 6 * counts["total"] * tokens + 12 * counts["layers"] * hidden * attended * tokens
        rows.append({"phase": phase, "steps": steps, "steps_from": how, "batch": batch, "row_tokens": block,
                     "packed": packed, "tokens": tokens, "model_flops": float(flops),
                     "activation_checkpointing": bool(values.get("activation_checkpointing"))})
    return rows


def measured_throughput(report_path: Optional[str]) -> Dict[str, Optional[float]]:
    """Best measured tokens/s (row positions) for unpacked and packed training from a gpu_check report."""
    best: Dict[str, Optional[float]] = {"unpacked": None, "packed": None}
    if not report_path:
        return best
    with open(report_path, encoding="utf-8") as handle:
        report = json.load(handle)
    for name, section in report.get("sections", {}).items():
        parts = name.split("/")
        if parts[0] != "train" or len(parts) != 3 or section.get("status") != "ok":
            continue  # the no_ac runs are not the configs' setting
        value = section.get("tokens_per_s")
        if value and (best[parts[2]] is None or value > best[parts[2]]):
            best[parts[2]] = float(value)
    return best


# --------------------------------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------------------------------

def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def build_plan(args: argparse.Namespace) -> Dict[str, Any]:
    """Every figure of the plan (what main prints)."""
    alpha = config_values("phase3a1_alpha")
    operator = config_values("phase3a_operator")
    config = model_config(block_size=max(alpha["block_size"], operator["block_size"]))
    counts = count_parameters(config)
    h, i, heads = config.hidden_size, config.intermediate_size, config.num_attention_heads
    formula = layer_activation_formula(h, i, heads, dropout=True)
    measured = None
    if not args.no_measure:
        measured = measure_layer_activations(h, heads, tokens=args.measure_tokens)
        measured["formula_same_setting"] = layer_activation_formula(h, i, heads, dropout=False).total
        measured["plus_dropout_masks"] = measured["bytes_per_token_layer"] + formula.dropout_masks
    per_token_layer = measured["plus_dropout_masks"] if measured else formula.total
    shapes = {f"α {alpha['per_device_train_batch_size']} x {alpha['block_size']}":
              alpha["per_device_train_batch_size"] * alpha["block_size"],
              f"operator {operator['per_device_train_batch_size']} x {operator['pack_block_size']} packed":
              operator["per_device_train_batch_size"] * operator["pack_block_size"]}
    peak = GPU_PEAK_TFLOPS[args.gpu]
    measured_tps = measured_throughput(args.gpu_check_report)
    phases = phase_plan(counts, h, args.operator_blocks)
    for row in phases:
        row["assumed_minutes_1gpu"] = row["model_flops"] / (args.mfu * peak * 1e12) / 60
        tps = measured_tps["packed" if row["packed"] else "unpacked"]
        row["measured_tokens_per_s"] = tps
        row["measured_minutes_1gpu"] = row["tokens"] / tps / 60 if tps else None
    return {"config": {"hidden_size": h, "intermediate_size": i, "heads": heads, "layers": config.num_hidden_layers,
                       "vocab_size": config.vocab_size, "tie_word_embeddings": config.tie_word_embeddings},
            "parameters": counts,
            "states": {name: state_bytes(counts["total"], name) for name in STATE_SCHEMES},
            "activation_formula": {**asdict(formula), "total": formula.total}, "activation_measured": measured,
            "per_token_layer_used": per_token_layer,
            "per_gpu": per_gpu_plan(counts, per_token_layer, h, shapes),
            "phases": phases, "assumptions": {"mfu": args.mfu, "gpu": args.gpu, "peak_tflops": peak,
                                              "operator_blocks": args.operator_blocks,
                                              "gpu_check_report": args.gpu_check_report}}


def render(plan: Dict[str, Any]) -> str:
    """The plan as markdown."""
    c, p = plan["config"], plan["parameters"]
    out = [f"### Parameters (MyPTForCausalLM on the meta device: {c['layers']} x {c['hidden_size']}, "
           f"{c['heads']} heads, SwiGLU {c['intermediate_size']}, vocab {c['vocab_size']}, tied)", "",
           _table(["", "parameters"], [
               ["total (tied matrix once)", f"{p['total']:,}"], ["embedding = tied lm_head", f"{p['embedding']:,}"],
               ["non-embedding", f"{p['non_embedding']:,}"], ["per decoder layer", f"{p['per_layer']:,}"],
               ["lm_head bias", f"{p['lm_head_bias']:,}"], ["weight-decayed / not", f"{p['decayed']:,} / "
                                                                                 f"{p['not_decayed']:,}"]]), ""]
    out += ["### Model states (computed)", "",
            _table(["scheme", "weights", "grads", "fp32 masters", "AdamW m+v", "B/param", "total GiB"],
                   [[name, f"{s['weights'] / GIB:.1f}", f"{s['gradients'] / GIB:.1f}", f"{s['fp32_masters'] / GIB:.1f}",
                     f"{s['adam_m_v'] / GIB:.1f}", s["bytes_per_param"], f"{s['total'] / GIB:.1f}"]
                    for name, s in plan["states"].items()]), ""]
    f, m = plan["activation_formula"], plan["activation_measured"]
    out += ["### Activations per token per decoder layer", "",
            _table(["term", "bytes"], [[k, v] for k, v in f.items()]), ""]
    if m:
        out.append(f"Measured ({m['how']}, width {m['hidden']}, {m['tokens']} tokens, dropout 0): "
                   f"{m['bytes_per_token_layer']:,.0f} B vs the formula's {m['formula_same_setting']:,} B for the same "
                   f"setting; + dropout masks = {m['plus_dropout_masks']:,.0f} B used below. (The formula counts six bf16 "
                   "h-wide input casts per layer (q, k, v, o, gate, up); the measurement finds five distinct ones (which "
                   "one shares a storage was not traced), so the formula is 2h bytes high: an upper bound.)")
    else:
        out.append("Not measured (--no_measure): the formula's total is used below.")
    out += ["", "### Per GPU (computed; bf16 autocast states, per-device batch of the configs)", "",
            _table(["setup", "shape", "act. ckpt", "model states", "DDP buckets / FSDP gathered", "bf16 weight copies",
                    "activations", "total GiB"],
                   [[r["setup"], r["shape"], "on" if r["activation_checkpointing"] else "off",
                     f"{r['model_states_gib']:.1f}", f"{r['extra_gib']:.1f}", f"{r['bf16_weight_copies_gib']:.1f}",
                     f"{r['activations_gib']:.1f}", f"**{r['total_gib']:.1f}**"] for r in plan["per_gpu"]]), ""]
    a = plan["assumptions"]
    out += [f"### Wall time per phase (COMPUTED, NOT MEASURED: assumed MFU {a['mfu']:.0%} on {a['gpu']}, "
            f"{a['peak_tflops']:g} TFLOP/s dense bf16; training steps only, no eval/generation/saving)", "",
            _table(["phase", "steps", "tokens (1 GPU)", "PFLOP", "s/step @ assumed MFU", "minutes @ assumed MFU, 1 GPU",
                    "8 GPUs, same tokens (ideal)", "measured tok/s (gpu_check)", "minutes @ measured, 1 GPU"],
                   [[r["phase"], f"{r['steps']} ({r['steps_from']})", f"{r['tokens']:,}",
                     f"{r['model_flops'] / 1e15:,.1f}", f"{60 * r['assumed_minutes_1gpu'] / r['steps']:.3f}",
                     f"{r['assumed_minutes_1gpu']:.1f}", f"{r['assumed_minutes_1gpu'] / 8:.2f}",
                     f"{r['measured_tokens_per_s']:,.0f}" if r["measured_tokens_per_s"] else "____ (run gpu_check)",
                     f"{r['measured_minutes_1gpu']:.1f}" if r["measured_minutes_1gpu"] else "____"]
                    for r in plan["phases"]])]
    total = sum(r["assumed_minutes_1gpu"] for r in plan["phases"])
    out += ["", f"All five phases, 1 GPU at the assumed MFU: {total:.1f} minutes of training steps. The configs fix "
            "max_steps at a per-device batch of 16, so on 8 GPUs unchanged they take the 1-GPU time and see 8x the "
            "tokens; the '8 GPUs, same tokens' column is for steps divided by 8 (inspect-sft-dataset recommends them)."]
    return "\n".join(out)


def count_operator_blocks(tokenizer_spec: str) -> int:
    """Blocks of the 750M operator phase's training data (its generator settings, packed as it packs)."""
    from mypt_hf.data.operators import operators
    from mypt_hf.data.prepare import PrepareConfig, prepare_dataset
    from mypt_hf.tokenization_mypt import load_tokenizer

    values = config_values("phase3a_operator")
    tokenizer = load_tokenizer(tokenizer_spec)
    data = operators(n_train=values["operator_n_train"], n_val=values["operator_n_val"],
                     max_tokens=values["operator_max_tokens"], seed_train=values["episode_seed"], tokenizer=tokenizer)
    dataset, _ = prepare_dataset(data["train"], tokenizer, config=PrepareConfig(
        enable_packing=True, pack_block_size=values["pack_block_size"], pack_by_field=values["pack_by_field"],
        seed=values["episode_seed"], val_split=0.0), verbose=False)
    return len(dataset["train"])


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mfu", type=float, default=0.40, help="assumed model FLOPs utilisation for the wall times")
    parser.add_argument("--gpu", choices=sorted(GPU_PEAK_TFLOPS), default="H100 SXM")
    parser.add_argument("--gpu_check_report", default=None, help="a benchmarks/gpu_check.py JSON report")
    parser.add_argument("--operator_blocks", type=int, default=OPERATOR_BLOCKS,
                        help="packed blocks of the operator phase's training data")
    parser.add_argument("--count_operator_blocks", metavar="TOKENIZER", default=None,
                        help="count them instead (generate + pack with this tokenizer, e.g. a gpt2.tiktoken; ~30 s)")
    parser.add_argument("--no_measure", action="store_true", help="skip the CPU activation measurement")
    parser.add_argument("--measure_tokens", type=int, default=512)
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.mfu <= 1:
        parser.error("--mfu must be in (0, 1]")
    if args.count_operator_blocks:
        args.operator_blocks = count_operator_blocks(args.count_operator_blocks)
    plan = build_plan(args)
    print(render(plan))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(plan, handle, indent=2)


if __name__ == "__main__":
    main()
