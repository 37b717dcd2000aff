#!/usr/bin/env python
"""Start-up time of the CLI: wall time of `python -m mypt_hf.cli --help` and `... prepare-chat-sft --help` (median of
``--repeats`` fresh interpreters each), and whether torch was imported on the way.

    python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PROBE = ("import runpy, sys\nsys.argv = ['mypt-hf', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('mypt_hf.cli', run_name='__main__')\n"
         "except SystemExit:\n    pass\nprint('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for argv in (["--help"], ["prepare-chat-sft", "--help"], ["run-phases", "--help"]):
        times, torch_line = [], ""
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            torch_line = result.stderr.strip().splitlines()[-1]
        print(f"mypt-hf {' '.join(argv):28s} median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}; {args.repeats} runs); {torch_line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
