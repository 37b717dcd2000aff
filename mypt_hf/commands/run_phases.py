"""`mypt-hf run-phases`: the Phase 3a chain ((tiny base →) α → β → γ → 3a-2 → operators), each from the previous one.

The work is in mypt_hf/phases/chain.py; the options live here so `mypt-hf --help` stays light.
"""

from __future__ import annotations

from mypt_hf.phases.registry import CHAIN, SHORT_NAMES

HELP = ("Run the Phase 3a chain (tiny base ->) alpha -> beta -> gamma -> 3a-2 -> operators (each phase from the "
        "previous output); "
        "prints and writes a gate table (chain_summary.md/json).")

PHASE_NAMES = CHAIN


def add_arguments(parser) -> None:
    parser.add_argument("--phases", default=None,
                        help="comma-separated phases, run in chain order (default: the whole chain; "
                             "without tiny_base when --init_from_model is given): "
                             f"{', '.join(PHASE_NAMES)} or {', '.join(SHORT_NAMES)}")
    parser.add_argument("--output_root", default=None,
                        help="phase outputs go to <output_root>/<phase> (default outputs/tiny; "
                             "outputs/750M with --config_suffix _750M)")
    parser.add_argument("--config_dir", default=None,
                        help="directory of the <phase><suffix>.yaml configs (default: the configs shipped with the "
                             "package, mypt_hf/phases/configs)")
    parser.add_argument("--config_suffix", default="",
                        help="config variant: '' (tiny default) or _750M (needs --init_from_model)")
    parser.add_argument("--init_from_model", default=None,
                        help="starting model of the first chosen phase (a converted MyPT base for _750M; "
                             "default: fresh for tiny_base, else <output_root>/<previous phase>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key in every phase that has it (repeatable), e.g. --set max_steps=10")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted chain under --output_root with the same options: finished "
                             "phases are kept (their saved gate reports), the interrupted phase continues from its "
                             "newest complete checkpoint, the later phases run")
    parser.add_argument("--continue_on_fail", action="store_true",
                        help="go on after a phase fails its gate (default: stop there, as the guide says: do not "
                             "proceed to the next phase; every model is saved either way)")
    parser.add_argument("--stop_on_fail", action="store_true",
                        help="the default (kept so that older command lines work)")


def run(args) -> int:
    from mypt_hf.phases.chain import run_from_args

    return run_from_args(args)
