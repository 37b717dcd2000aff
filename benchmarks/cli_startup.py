"""Start-up time of the CLI: `mypt-hf --help` and `mypt-hf prepare-chat-sft --help`.

Each command runs in a fresh interpreter (``python -m mypt_hf.cli ...``) ``--repeats`` times; the median wall
time is reported, plus whether the command imported torch (from one extra run under ``-X importtime``, which
is not timed). Before the lazy package import, `mypt-hf --help` took 8.8-10.3 s on the 2-core dev machine.

    python benchmarks/cli_startup.py
    python benchmarks/cli_startup.py --repeats 9 train --help
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import List, Sequence

DEFAULT_COMMANDS = (("--help",), ("prepare-chat-sft", "--help"))


def run_once(argv: Sequence[str], extra: Sequence[str] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, *extra, "-m", "mypt_hf.cli", *argv], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        raise SystemExit(f"mypt-hf {' '.join(argv)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result


def imported_modules(argv: Sequence[str]) -> List[str]:
    """Top-level modules the command imported (from ``-X importtime``'s report on stderr)."""
    result = run_once(argv, extra=("-X", "importtime"))
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return sorted(names)


def median_seconds(argv: Sequence[str], repeats: int) -> List[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_once(argv)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="one mypt-hf command line (default: the two above)")
    args = parser.parse_args()
    commands = [tuple(args.argv)] if args.argv else DEFAULT_COMMANDS
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f} at start")
    for argv in commands:
        times = median_seconds(argv, args.repeats)
        modules = imported_modules(argv)
        heavy = [name for name in ("torch", "transformers", "numpy", "datasets") if name in modules]
        print(f"mypt-hf {' '.join(argv):<28} median {statistics.median(times):6.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, n={len(times)})  torch imported: "
              f"{'yes' if 'torch' in modules else 'no'}  heavy modules: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
