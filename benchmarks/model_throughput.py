"""Training and generation throughput of MyPTForCausalLM vs LlamaForCausalLM at the same config.

Both models get identical weights (MyPT with ``lm_head_bias=False`` so the two are the same function;
``--lm_head_bias`` measures the cost of the original's bias). Measurements alternate between the
two models, repeat ``--repeats`` times, and report medians, so load from other processes on a shared
machine hits both alike.

    python benchmarks/model_throughput.py                 # 4 layers, 256 wide, seq 512 (CPU default)
    python benchmarks/model_throughput.py --repeats 9 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.modeling_mypt import MyPTForCausalLM


def build(args):
    cfg = MyPTConfig(vocab_size=args.vocab, n_embd=args.width, n_head=args.heads, n_layer=args.layers,
                     block_size=max(args.seq, args.prompt + args.new_tokens), lm_head_bias=args.lm_head_bias,
                     tie_word_embeddings=True)
    torch.manual_seed(0)
    mypt = MyPTForCausalLM(cfg)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings, rms_norm_eps=cfg.norm_eps, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta}))
    llama.load_state_dict({k: v for k, v in mypt.state_dict().items() if k != "lm_head.bias"}, strict=True)
    return mypt, llama


def train_step_seconds(model, opt, ids) -> float:
    start = time.perf_counter()
    loss = model(ids, labels=ids, use_cache=False).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - start


@torch.no_grad()
def generate_seconds(model, prompt, new_tokens: int) -> float:
    start = time.perf_counter()
    out = model.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    assert out.shape[1] == prompt.shape[1] + new_tokens
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--train_steps", type=int, default=2, help="paired train steps per repeat")
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new_tokens", type=int, default=64)
    parser.add_argument("--gen_batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps a shared machine fair)")
    parser.add_argument("--lm_head_bias", action="store_true", help="give MyPT the original's lm_head bias")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    mypt, llama = build(args)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g)
    prompt = torch.randint(0, args.vocab, (args.gen_batch, args.prompt), generator=g)
    models = {"mypt": mypt, "llama": llama}
    opts = {n: torch.optim.AdamW(m.parameters(), lr=1e-4) for n, m in models.items()}
    for name, model in models.items():  # warm-up
        model.train()
        train_step_seconds(model, opts[name], ids)
        model.eval()
        generate_seconds(model, prompt, 4)
    # Paired measurements: each step of one model is immediately followed (or preceded, alternately) by the
    # same step of the other, so a burst of load from other processes hits both; the per-pair time ratio is
    # robust to load that changes between pairs.
    times = {n: {"train": [], "gen": []} for n in models}
    for r in range(args.repeats):
        order = ["mypt", "llama"] if r % 2 == 0 else ["llama", "mypt"]
        for name in order:
            models[name].train()
        for _ in range(args.train_steps):
            for name in order:
                times[name]["train"].append(train_step_seconds(models[name], opts[name], ids))
        for name in order:
            models[name].eval()
            times[name]["gen"].append(generate_seconds(models[name], prompt, args.new_tokens))
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(
            f"{n} train {ids.numel() / times[n]['train'][-1]:.0f} tok/s gen "
            f"{args.new_tokens * args.gen_batch / times[n]['gen'][-1]:.1f} tok/s" for n in order), flush=True)

    print(f"\nconfig: {args.layers} layers, width {args.width}, {args.heads} heads, vocab {args.vocab}, "
          f"train batch {args.batch}x{args.seq} (AdamW step), generate {args.gen_batch}x({args.prompt}+"
          f"{args.new_tokens}) greedy with KV cache, {torch.get_num_threads()} threads, "
          f"lm_head_bias={args.lm_head_bias}, {args.repeats} alternating repeats")
    for kind, label, tokens in (("train", "training tokens/s", ids.numel()),
                                ("gen", "generation tokens/s", args.new_tokens * args.gen_batch)):
        m = tokens / statistics.median(times["mypt"][kind])
        l_ = tokens / statistics.median(times["llama"][kind])
        paired = statistics.median(b / a for a, b in zip(times["mypt"][kind], times["llama"][kind]))
        print(f"{label:<22} MyPT {m:9.1f}   Llama {l_:9.1f}   ratio of medians {m / l_:.3f}   "
              f"median paired ratio {paired:.3f}")

if __name__ == "__main__":
    main()
