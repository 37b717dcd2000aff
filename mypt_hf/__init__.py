"""mypt_hf: the MyPT Phase 3a supervised fine-tuning pipeline on the Hugging Face stack.

Importing the package registers MyPT with transformers' Auto classes (``AutoConfig``,
``AutoModelForCausalLM``), so a saved MyPT directory loads without ``trust_remote_code``.

The import itself is light: it loads no torch and no transformers, so ``mypt-hf --help`` and
``import mypt_hf.tokens`` stay instant. ``MyPTConfig``, ``MyPTModel`` and ``MyPTForCausalLM`` are
loaded on first access (PEP 562), and the registration happens when transformers is loaded (see
below); nobody can use an Auto class before that.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import sys
from typing import Any, Iterator, List

from .tokens import DEFAULT_SYSTEM_PROMPT, TAGS  # light: tokens.py imports only dataclasses and typing

__version__ = "0.1.0"

_LAZY_NAMES = {
    "MyPTConfig": ".configuration_mypt",
    "MyPTModel": ".modeling_mypt",
    "MyPTForCausalLM": ".modeling_mypt",
}

__all__ = ["__version__", "DEFAULT_SYSTEM_PROMPT", "TAGS", "defer_auto_registration", *_LAZY_NAMES]


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name], __name__), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


# --------------------------------------------------------------------------- Auto-class registration
#
# The registration calls live at the bottom of configuration_mypt.py and modeling_mypt.py, which import
# torch; running them here would cost every `import mypt_hf` (and so the CLI) several seconds. They are
# only needed once transformers is loaded, so when it is not loaded yet a finder on sys.meta_path waits
# for the top-level "transformers" import and, once transformers' own __init__ has run, imports
# mypt_hf.modeling_mypt (which imports configuration_mypt): both modules register themselves as they finish.
#
# Only that point is safe: transformers' __init__ is a lazy module that leaves no transformers module
# half-initialised, whereas a hook on torch or on transformers.models.auto fires in the middle of
# transformers.modeling_utils / modeling_layers, whose names modeling_mypt needs.
#
# One more case: when the chain that first loads transformers starts in configuration_mypt itself
# (`from mypt_hf.configuration_mypt import MyPTConfig` as a program's first import), MyPTConfig does not
# exist yet when transformers finishes, so the finder also waits for configuration_mypt to finish.
# When the chain starts in modeling_mypt, importing it from the hook just returns the half-loaded module;
# its registration runs when it finishes.

_TRANSFORMERS = "transformers"
_CONFIG_MODULE = __name__ + ".configuration_mypt"
_MODELING_MODULE = __name__ + ".modeling_mypt"


class _RegisterWhenTransformersLoads(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loaders of transformers and configuration_mypt (see above)."""

    def __init__(self) -> None:
        self.paused = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if self.paused or fullname not in (_TRANSFORMERS, _CONFIG_MODULE):
            return None
        spec = None
        for finder in sys.meta_path:  # the normal finders, in their order, without this one
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # nothing to wrap per module (a class-level loader is shared): leave it alone
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            del loader.exec_module  # back to the class's method (an importlib.reload runs it plain)
            original(module)
            _register_when_ready()

        loader.exec_module = exec_module  # this spec's own loader instance: nothing else shares it
        return spec


_finder = _RegisterWhenTransformersLoads()


def _register_when_ready() -> None:
    config_module = sys.modules.get(_CONFIG_MODULE)
    if config_module is not None and not hasattr(config_module, "MyPTConfig"):
        return  # configuration_mypt is still importing transformers; the hook runs again when it finishes
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_finder)
    importlib.import_module(_MODELING_MODULE)


def _arm() -> None:
    if _TRANSFORMERS in sys.modules:
        _register_when_ready()
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


@contextlib.contextmanager
def defer_auto_registration(catch_up: bool = True) -> Iterator[None]:
    """Inside the block, loading transformers does not register MyPT (so it does not import torch).

    For the CLI, whose parsers may use ``transformers.HfArgumentParser``. When transformers stays unloaded,
    nothing changes: the registration still happens when it loads. When it was loaded inside the block, the
    registration is caught up as the block ends normally (this imports torch) if ``catch_up`` is true;
    otherwise, and when the block raises (argparse's ``SystemExit`` after ``--help``), it waits until
    ``mypt_hf.configuration_mypt`` or ``mypt_hf.modeling_mypt`` is imported, or ``MyPTConfig`` /
    ``MyPTForCausalLM`` is first used.
    """
    was_paused, _finder.paused = _finder.paused, True
    try:
        yield
    finally:
        _finder.paused = was_paused
    if catch_up and not was_paused:
        _arm()


_arm()
