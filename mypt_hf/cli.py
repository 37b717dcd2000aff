"""`mypt-hf <subcommand>`: one subcommand per original MyPT script, with the same argument names.

Each subcommand lives in ``mypt_hf/commands/<name>.py`` (underscores become dashes) and defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Command modules import
heavy libraries inside ``run`` so ``mypt-hf --help`` stays fast. Exit codes: 0 success,
1 a check or gate failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import List, Optional

from . import commands as _commands_package
from .errors import GateFailure, MyPTInputError


def _command_modules() -> List[str]:
    return sorted(info.name for info in pkgutil.iter_modules(_commands_package.__path__) if not info.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="mypt-hf", description="MyPT Phase 3a SFT on the Hugging Face stack.")
    subparsers = parser.add_subparsers(dest="command", metavar="<subcommand>")
    for module_name in _command_modules():
        module = importlib.import_module(f"{_commands_package.__name__}.{module_name}")
        sub = subparsers.add_parser(module_name.replace("_", "-"), help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``mypt-hf`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except MyPTInputError as error:
        print(f"mypt-hf {args.command}: error: {error}", file=sys.stderr)
        return 2
    except GateFailure as error:
        print(f"mypt-hf {args.command}: FAIL: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
