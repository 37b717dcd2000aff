"""Model names as the original MyPT resolves them: a bare name is a folder of the project's checkpoints directory.

The guide's commands name models (``--model phase3a1_alpha``, ``--init_from_model domain_v5_sft_ready``); the
original looks them up as ``checkpoints/<name>``, and ``train --model_name X`` saves to ``checkpoints/X``. Here:

* a value holding a path separator, starting with ``.`` or ``~``, or absolute is a **path**, used as given;
* any other value is a **name**: ``<checkpoints>/<name>`` where ``<checkpoints>`` is ``$MYPT_CHECKPOINTS_DIR``
  or ``checkpoints`` under the current directory (the original's layout). A name that is not there but is a
  folder of the current directory is used as that folder (so ``--model mymodel`` keeps working from its parent);
* an unknown name is a :class:`~mypt_hf.errors.MyPTInputError` listing the models that exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

from .errors import MyPTInputError

CHECKPOINTS_ENV = "MYPT_CHECKPOINTS_DIR"
DEFAULT_CHECKPOINTS_DIR = "checkpoints"


def checkpoints_dir() -> Path:
    """The project's checkpoints directory: ``$MYPT_CHECKPOINTS_DIR``, else ``./checkpoints``."""
    return Path(os.environ.get(CHECKPOINTS_ENV) or DEFAULT_CHECKPOINTS_DIR)


def is_bare_name(spec: str) -> bool:
    """True for ``phase3a1_alpha``; False for ``outputs/x``, ``./x``, ``~/x``, ``/abs/x``."""
    return not (not spec or os.sep in spec or (os.altsep and os.altsep in spec) or spec.startswith((".", "~"))
                or os.path.isabs(spec))


def known_models(root: Optional[Path] = None) -> List[str]:
    """The model folders (those with a ``config.json``) under the checkpoints directory, sorted."""
    root = checkpoints_dir() if root is None else root
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir() if (path / "config.json").is_file())


def resolve_model(spec: str, field: str = "model") -> Path:
    """The directory ``spec`` (a name or a path, see the module docstring) stands for; checked to exist.

    ``field`` names the option in the error (``model``, ``init_from_model``, ...).
    """
    spec = str(spec)
    if not is_bare_name(spec):
        path = Path(spec).expanduser()
        if not path.exists():
            raise MyPTInputError("model directory not found", path=str(path), field=field)
        return path
    root = checkpoints_dir()
    named = root / spec
    if named.exists():
        return named
    if Path(spec).is_dir():
        return Path(spec)
    names = known_models(root)
    listing = (f"models there: {', '.join(names)}" if names else
               f"{root} {'holds no model' if root.is_dir() else 'does not exist'}")
    raise MyPTInputError(f"no model named {spec!r} in the checkpoints directory {root} ({listing}; set "
                         f"{CHECKPOINTS_ENV} to look elsewhere, or give a path)", field=field)


def output_dir_for(model_name: str) -> Path:
    """Where ``train --model_name NAME`` saves: ``<checkpoints>/<NAME>`` (the original's layout)."""
    return checkpoints_dir() / model_name


__all__ = ["CHECKPOINTS_ENV", "checkpoints_dir", "is_bare_name", "known_models", "resolve_model", "output_dir_for"]
