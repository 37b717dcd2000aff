"""`mypt-hf <subcommand>`: one subcommand per original MyPT script, with the same argument names.

Each subcommand lives in ``mypt_hf/commands/<name>.py`` (underscores become dashes) and defines
``HELP`` (one line), ``run(args) -> int`` and either ``add_arguments(parser)`` or
``build_parser(prog) -> argparse.ArgumentParser`` (e.g. an ``HfArgumentParser``); ``run`` gets what that
parser's ``parse_args`` returns. Exit codes (:mod:`mypt_hf.exit_codes`): 0 success, 1 a check or gate failed,
2 bad input, 3 an internal error (traceback in a log file; ``--debug`` anywhere on the line prints it).

Startup is instant: importing this module and building parsers imports no torch. Command modules import
heavy libraries inside ``run``; the top-level parser only lists the subcommands with their ``HELP`` lines,
and a subcommand's own parser is built only when the command line names it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType
from typing import Any, Dict, List, Optional, Tuple

from . import commands as _commands_package
from . import defer_auto_registration
from .exit_codes import DEBUG_FLAG, call_with_exit_codes, pop_debug_flag

PROG = "mypt-hf"
DESCRIPTION = "MyPT Phase 3a SFT on the Hugging Face stack."


def _command_modules() -> Dict[str, str]:
    """Subcommand name (dashes) -> module name (underscores), sorted."""
    names = sorted(info.name for info in pkgutil.iter_modules(_commands_package.__path__)
                   if not info.name.startswith("_"))
    return {name.replace("_", "-"): name for name in names}


def _load(module_name: str) -> ModuleType:
    return importlib.import_module(f"{_commands_package.__name__}.{module_name}")


def _command_parser(module: ModuleType, prog: str) -> argparse.ArgumentParser:
    if hasattr(module, "build_parser"):
        return module.build_parser(prog)
    parser = argparse.ArgumentParser(prog=prog, description=module.HELP)
    module.add_arguments(parser)
    return parser


def build_command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of one subcommand (``command`` as typed, e.g. ``"prepare-chat-sft"``), built alone."""
    modules = _command_modules()
    if command not in modules:
        raise ValueError(f"unknown subcommand {command!r}; expected one of {', '.join(modules)}")
    with defer_auto_registration(catch_up=False):  # building a parser must not import torch
        return _command_parser(_load(modules[command]), f"{PROG} {command}")


def _top_parser() -> Tuple[argparse.ArgumentParser, Any]:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION,
                                     epilog=f"exit status: 0 ok, 1 a gate/check failed, 2 bad input, 3 internal error "
                                            f"({DEBUG_FLAG} prints its traceback)")
    parser.add_argument(DEBUG_FLAG, action="store_true", help="print the traceback of an error (anywhere on the line)")
    return parser, parser.add_subparsers(dest="command", metavar="<subcommand>")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand and all its arguments (for tests and docs).

    ``main`` does not use it: it builds only the parser the command line needs.
    """
    parser, subparsers = _top_parser()
    with defer_auto_registration(catch_up=False):  # building parsers must not import torch
        for command, module_name in _command_modules().items():
            module = _load(module_name)
            own = _command_parser(module, f"{PROG} {command}")
            # parents= copies the command's own parser whole (arguments, groups, defaults, its -h).
            sub = subparsers.add_parser(command, parents=[own], add_help=False, help=module.HELP,
                                        description=own.description, formatter_class=own.formatter_class)
            sub.set_defaults(_run=module.run)
    return parser


def _resolve_model_names(args: argparse.Namespace) -> None:
    """Every ``--model`` / ``--init_from_model`` takes a model name (``<checkpoints>/<name>``, as the original) or a
    path (:mod:`mypt_hf.model_names`); the command gets the directory."""
    from .model_names import resolve_model

    for name in ("model", "init_from_model"):
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            setattr(args, name, str(resolve_model(value, field=name)))


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``mypt-hf`` console script."""
    argv, debug = pop_debug_flag(sys.argv[1:] if argv is None else argv)
    modules = _command_modules()
    command = argv[0] if argv and argv[0] in modules else None
    # Parsers may load transformers (HfArgumentParser); that must not import torch for --help, so the Auto-class
    # registration waits until parsing is done (then it runs, before the command, which may load a model).
    with defer_auto_registration():
        if command is None:
            top, subparsers = _top_parser()
            for name, module_name in modules.items():
                subparsers.add_parser(name, help=_load(module_name).HELP, add_help=False)
            top.parse_args(argv)  # --help, or an error naming the unknown subcommand; both exit
            top.print_help()
            return 2
        module = _load(modules[command])
        args = _command_parser(module, f"{PROG} {command}").parse_args(argv[1:])
    def run() -> int:
        _resolve_model_names(args)
        return module.run(args)

    return call_with_exit_codes(run, prog=f"{PROG} {command}", debug=debug)


if __name__ == "__main__":
    sys.exit(main())
