"""The exit-status contract of every entry point (``mypt-hf``, the recipes, ``python -m mypt_hf.phases``).

====  =================================================================================================
 0    success
 1    a gate or a check failed (:class:`~mypt_hf.errors.GateFailure`)
 2    bad input: a file, row, field or argument (:class:`~mypt_hf.errors.MyPTInputError`, argparse's own
      usage errors), or an input/output file the system refuses (missing, unreadable, unwritable, disk full)
 3    an internal error: a bug in mypt_hf or a library under it; the traceback goes to a log file (and to
      stderr with ``--debug`` or ``MYPT_HF_DEBUG=1``)
 130  interrupted (Ctrl-C); outputs are written atomically, so nothing half-written is left
====  =================================================================================================

Every failure prints one line to stderr; a traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from typing import Callable, List, Optional, Sequence, Tuple

from .errors import GateFailure, MyPTInputError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 3
EXIT_INTERRUPTED = 130

DEBUG_FLAG = "--debug"
DEBUG_ENV = "MYPT_HF_DEBUG"


def pop_debug_flag(argv: Sequence[str]) -> Tuple[List[str], bool]:
    """``argv`` without ``--debug`` (accepted anywhere on the line), and whether debugging is on
    (the flag, or ``MYPT_HF_DEBUG`` set to anything but ``""``/``0``)."""
    rest = [arg for arg in argv if arg != DEBUG_FLAG]
    env = os.environ.get(DEBUG_ENV, "")
    return rest, len(rest) != len(argv) or env not in ("", "0")


def _write_crash_log(prog: str, text: str) -> Optional[str]:
    """Write ``text`` to a fresh file in the temp directory; its path, or None if nothing could be written."""
    try:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        fd, path = tempfile.mkstemp(prefix=f"{prog.split()[0]}-crash-{stamp}-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{prog} {' '.join(sys.argv[1:])}\n\n{text}")
        return path
    except OSError:  # pragma: no cover - a full or read-only temp directory
        return None


def _os_error_message(error: OSError) -> str:
    names = [name for name in (error.filename, error.filename2) if name is not None]
    reason = error.strerror or str(error)
    return f"{' -> '.join(map(str, names))}: {reason}" if names else reason


def call_with_exit_codes(main: Callable[[], Optional[int]], *, prog: str, debug: bool = False) -> int:
    """Run ``main`` and turn its outcome into the exit status of the contract above, printing one line."""
    try:
        return int(main() or EXIT_OK)
    except SystemExit:  # argparse's usage errors (2) and --help (0) keep their own status and message
        raise
    except MyPTInputError as error:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except GateFailure as error:
        print(f"{prog}: FAIL: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        # A path the system refuses (permissions, a missing file a library opened, a full disk) is the user's to
        # fix, not a bug: name the path and the reason. An OSError without a path falls through as internal.
        if error.filename is not None:
            if debug:
                traceback.print_exc()
            print(f"{prog}: error: {_os_error_message(error)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return _internal_error(prog, debug)
    except Exception:  # noqa: BLE001 - the contract: a crash is exit 3, never 1
        return _internal_error(prog, debug)


def _internal_error(prog: str, debug: bool) -> int:
    error_type, error, _ = sys.exc_info()
    text = traceback.format_exc()
    if debug:
        sys.stderr.write(text)
    log = _write_crash_log(prog, text)
    where = f"traceback in {log}" if log else "no log could be written"
    summary = f"{error_type.__name__}: {error}".splitlines()[0] if error_type else "unknown error"
    print(f"{prog}: internal error (a bug, not your input; please report it): {summary} "
          f"[{where}; {DEBUG_FLAG} prints it]", file=sys.stderr)
    return EXIT_INTERNAL_ERROR
