"""What a trial will need from disk, checked before any trial starts (`sweeper validate`).

Torch-free and cheap: a check looks at folders and the first matching file, never decodes data.
Trainers' `check(config)` functions (TrainerInfo.check_ref) build on these helpers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sweeper.errors import SweeperError


class MissingInput(SweeperError):
    """A file or folder a trial will need is missing or unusable: names the config field."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def writable_target(field: str, path: str) -> None:
    """A generator will write `path` (it makes the folder beside it, then renames it in).

    Raises:
        MissingInput: path is a file, or no folder on the way to it can be written.
    """
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise MissingInput(field, f"{path} is a file, not a folder")
        return
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise MissingInput(field, f"cannot create {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise MissingInput(
            field, f"cannot create {path}: {ancestor} is not writable; point {field} elsewhere"
        )


def local_file(field: str, path: str | None) -> None:
    """A weights file a trial loads: it must be a readable file on this machine.

    Raises:
        MissingInput: path is not a file, or not readable.
    """
    if path is None:
        return
    if not Path(path).is_file():
        raise MissingInput(
            field, f"{path} is not a file: give a local weights file, or null for random init"
        )
    if not os.access(path, os.R_OK):
        raise MissingInput(field, f"{path} is not readable")


def first_entry(folder: Path, wanted: Callable[[os.DirEntry[str]], bool]) -> bool:
    """Whether a folder holds an entry `wanted` accepts; stops at the first (a data set's
    folder may hold 50,000 files)."""
    try:
        with os.scandir(folder) as entries:
            return any(wanted(entry) for entry in entries)
    except OSError:
        return False
