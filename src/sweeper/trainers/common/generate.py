"""Generated stand-in data sets (shapes, VeRi, X-ray): written once where a config points."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def ensure_generated(root: str | Path, write: Callable[[Path], Any]) -> Path:
    """Write a data set at `root` with `write(folder)` unless something is there already.

    It is written into a scratch folder beside `root` and renamed into place, so concurrent
    trials of a sweep that race to generate it never see a half-written set: the first rename
    wins and the others drop their identical copies.

    Raises:
        OSError: the folder beside `root` cannot be created or written.
    """
    root = Path(root)
    if root.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        write(scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    try:
        scratch.rename(root)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not root.exists():  # not a lost race: a real failure to rename
            raise
    return root
