"""Prepare + pack throughput: N generated operator episodes at block 1024 -> episodes/s and peak RSS.

    python benchmarks/prepare_throughput.py [--n 100000] [--num_proc 2] [--tokenizer PATH|embedded]

The episodes (90% train, 10% validation, as the generator's own split) are generated once, in a child process
of their own, and saved with ``save_to_disk`` (not timed; reused by later runs of the same ``--n``). The timed part
runs in another fresh child process: ``prepare(train_dir, out, val_file=val_dir, enable_packing=True,
pack_by_field="_meta.operator")`` including the separation gate and ``save_to_disk``; the tokenizer load is timed
separately. Peak RSS is the preparing child's own high-water mark (its tokenization workers are reported apart);
the generation's peak is printed on its own line.

Why two children: Linux keeps a process's RSS high-water mark across ``exec``, and Python's subprocess spawns
through ``vfork``, so a child started by a parent that had generated the episodes in memory reported the parent's
peak as its own (the 825 MB at 100k and 1,815 MB at 400k in issue 19 were mostly the generator's). The parent
here only imports ``datasets``. The CPU is shared: the 1-minute load average is printed before and after, and CPU
seconds are printed so results can be judged under load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GPT2 = REPO.parent / "shared" / "data" / "gpt2.tiktoken"


def _child(args) -> None:
    import datasets

    datasets.disable_progress_bars()
    from mypt_hf.data.prepare import PrepareConfig, load_prepared, prepare
    from mypt_hf.tokenization_mypt import load_tokenizer

    t0 = time.perf_counter()
    tokenizer = load_tokenizer(None if args.tokenizer == "embedded" else args.tokenizer)
    t_tok = time.perf_counter() - t0
    cpu0 = os.times()
    t1 = time.perf_counter()
    prepare(os.path.join(args.data, "train"), args.out, tokenizer, config=PrepareConfig(enable_packing=True, pack_block_size=args.block, pack_by_field="_meta.operator", num_proc=args.num_proc), overwrite=True, val_file=os.path.join(args.data, "validation"), verbose=False)
    wall = time.perf_counter() - t1
    cpu1 = os.times()
    _, meta = load_prepared(args.out)
    episodes = meta.splits["train"]["episodes"] + meta.splits["validation"]["episodes"]
    print(json.dumps({
        "episodes": episodes,
        "prepare_seconds": wall,
        "episodes_per_second": episodes / wall,
        "tokenizer_load_seconds": t_tok,
        "cpu_seconds_self": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
        "cpu_seconds_workers": (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "train_fill": meta.splits["train"]["packing"]["fill"],
        "blocks": meta.splits["train"]["rows"],
    }))


def _generate(args) -> None:
    """The episodes, saved (the operators generator builds them in memory with ``Dataset.from_list``)."""
    import datasets

    datasets.disable_progress_bars()
    from mypt_hf.data.operators import operators
    from mypt_hf.tokenization_mypt import load_tokenizer

    tok = load_tokenizer(None if args.tokenizer == "embedded" else args.tokenizer)
    n_val = args.n // 10
    t = time.perf_counter()
    operators(n_train=args.n - n_val, n_val=n_val, tokenizer=tok).save_to_disk(args.data)
    print(json.dumps({"seconds": time.perf_counter() - t,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="episodes in total (train + validation)")
    parser.add_argument("--num_proc", type=int, default=2)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--tokenizer", default=str(DEFAULT_GPT2) if DEFAULT_GPT2.is_file() else "embedded")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "mypt_prepare_bench"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if args.generate:
        _generate(args)
        return

    import datasets

    datasets.disable_progress_bars()
    tag = "gpt2" if args.tokenizer.endswith(".tiktoken") else args.tokenizer.replace(":", "_")
    data = Path(args.workdir) / f"operators_{args.n}_{tag}"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if not (data / "dataset_dict.json").is_file():
        cmd = [sys.executable, __file__, "--generate", "--n", str(args.n), "--data", str(data),
               "--tokenizer", args.tokenizer]
        generated = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                              env=env).stdout.strip().splitlines()[-1])
        print(f"generated {args.n} operator episodes in {generated['seconds']:.1f}s (not timed), peak RSS of the "
              f"generation {generated['peak_rss_mb']:.0f} MB (its own process) -> {data}")
    load_before = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--child", "--data", str(data), "--out", str(Path(args.workdir) / "prepared"),
           "--num_proc", str(args.num_proc), "--block", str(args.block), "--tokenizer", args.tokenizer]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    load_after = os.getloadavg()[0]
    print(f"tokenizer: {args.tokenizer}  num_proc: {args.num_proc}  block: {args.block}  cores: {os.cpu_count()}  "
          f"load average (1 min) before/after: {load_before:.2f}/{load_after:.2f}")
    print(f"prepared + packed {figures['episodes']} episodes in {figures['prepare_seconds']:.2f}s: "
          f"{figures['episodes_per_second']:,.0f} episodes/s (target >= 20,000)")
    cpu = figures["cpu_seconds_self"] + figures["cpu_seconds_workers"]
    print(f"CPU seconds: {cpu:.2f} ({figures['episodes'] / cpu:,.0f} episodes per CPU-second); "
          f"tokenizer load {figures['tokenizer_load_seconds']:.2f}s (not in the rate)")
    print(f"peak RSS: {figures['peak_rss_mb']:.0f} MB (target <= 1200), tokenization workers "
          f"{figures['peak_rss_workers_mb']:.0f} MB each (forked, pages shared with the parent)")
    print(f"train fill {figures['train_fill']:.4%} in {figures['blocks']} blocks")


if __name__ == "__main__":
    main()
