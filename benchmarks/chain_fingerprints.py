#!/usr/bin/env python
"""Fingerprints of a chain run: sha256 of every phase's prepared data (arrow shards) and saved weights.

Used to show that a change of structure left behaviour alone: run it before and after on the same arguments
and compare the two listings (they must be equal line for line)::

    python benchmarks/chain_fingerprints.py --output_root /tmp/fp --set max_steps=20 > after.txt

``--skip_run`` hashes an existing output root without training. Runs the chain in this process through
``mypt-hf run-phases`` (so whichever ``mypt_hf`` is first on ``sys.path`` is measured).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path


def fingerprints(output_root: Path) -> list[str]:
    """``phase/relative/path sha256`` for the arrow shards and the safetensors weights of every phase dir."""
    from mypt_hf.io_utils import sha256_file

    lines = []
    for phase_dir in sorted(p for p in output_root.iterdir() if p.is_dir()):
        files = sorted(phase_dir.glob("data/*/*.arrow")) + sorted(phase_dir.glob("*.safetensors"))
        lines += [f"{f.relative_to(output_root)} {sha256_file(f)}" for f in files]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_root", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--phases", default=None)
    parser.add_argument("--skip_run", action="store_true")
    args = parser.parse_args()
    root = Path(args.output_root)
    if not args.skip_run:
        import mypt_hf
        from mypt_hf.cli import main as cli

        print(f"# mypt_hf from {Path(mypt_hf.__file__).parent}", file=sys.stderr)
        argv = ["run-phases", "--output_root", str(root)] + [f"--set={o}" for o in args.overrides]
        if args.phases:
            argv += ["--phases", args.phases]
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the fingerprints only
            code = cli(argv)
        print(f"# run-phases exit {code}", file=sys.stderr)
    for line in fingerprints(root):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
