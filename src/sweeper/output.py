"""Files sweeper writes for people to open: output folders it owns, and text safe to show.

An output folder named on the command line may be the user's own (`-o .`, `-o ~/data`), so
sweeper only ever writes *into* it. A marker file (:data:`MARKER`) lists the files sweeper made
there; a later run replaces or removes only those, and a non-empty folder without the marker
is refused. Everything is first written to a staging folder inside the target, so a build that
fails leaves the folder as it was.

Text from a sweep (parameter names and values, run errors, sweep names) is the user's, or a
program's: :func:`one_line` drops control characters from it, and :func:`write_csv` writes
tables a spreadsheet cannot run as formulas.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.text import strip_controls

if TYPE_CHECKING:  # pandas only where a CSV is written: `generate` never needs it
    import pandas as pd

MARKER = ".sweeper-output"
"""The file, in an output folder, that lists the files sweeper wrote there (JSON)."""

STAGING = ".sweeper-staging-"
"""Prefix of the staging folder made inside the output folder while it is being written."""


class OutputFolder:
    """A folder that a command writes its files into, replacing only the files it made there.

    Construct it before any slow work (it checks the folder and writes nothing); the `with`
    block gives a staging folder to fill; on leaving the block without an error the staged
    files move into place (each with one rename), the files the previous run listed and this
    one did not write are removed, and the marker lists the new files. On an error the staging
    folder and any folder this made are removed, and nothing else changes.

    Args:
        path: the output folder, new, empty, or one this command wrote before.
        command: who writes it (``"sweeper report"``); a folder written by another command
            is refused, so a report never lands in a generated data set.

    Raises:
        SweeperError: ``path`` is a file, or a non-empty folder sweeper did not write, or its
            marker is damaged or names a path outside the folder.
    """

    def __init__(self, path: Path, command: str) -> None:
        self.path = Path(path)
        self.command = command
        self._staging: Path | None = None
        self._made: list[Path] = []
        if self.path.exists() or self.path.is_symlink():
            if not self.path.is_dir():
                raise SweeperError(f"{self.path}: exists and is not a folder")
            self._owned()
            # what a killed run of its own may leave behind does not make a folder the user's
            leftovers = (MARKER, f"{MARKER}.partial")
            others = [
                p
                for p in self.path.iterdir()
                if p.name not in leftovers and not p.name.startswith(STAGING)
            ]
            if others and not (self.path / MARKER).exists():
                raise SweeperError(
                    f"{self.path}: a folder that is not empty and was not written by {command};"
                    " give a new or empty folder (sweeper never deletes files it did not make)"
                )
        else:
            above = self.path.parent
            while not (above.exists() or above.is_symlink()):
                above = above.parent
            if not above.is_dir():
                raise SweeperError(f"{self.path}: cannot be created: {above} is not a folder")

    def _owned(self) -> set[str]:
        """The files the marker lists (relative POSIX paths), checked to stay inside."""
        marker = self.path / MARKER
        if not marker.exists():
            return set()
        try:
            about = json.loads(marker.read_text(encoding="utf-8"))
            writer, files = about["written_by"], about["files"]
        except (ValueError, KeyError, TypeError):
            raise SweeperError(
                f"{marker}: not a sweeper output marker; give a new or empty folder"
            ) from None
        if writer != self.command:
            raise SweeperError(
                f"{self.path}: written by {writer}, not {self.command}; give another folder"
            )
        if not isinstance(files, list) or not all(_inside(f) for f in files):
            raise SweeperError(
                f"{marker}: lists a path outside the folder; sweeper will not touch it"
            )
        return set(files)

    def __enter__(self) -> Path:
        missing = []
        folder = self.path
        while not (folder.exists() or folder.is_symlink()):
            missing.append(folder)
            folder = folder.parent
        try:
            for folder in reversed(missing):
                folder.mkdir()
                self._made.append(folder)
            self._staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=self.path))
        except BaseException:
            self._discard()
            raise
        return self._staging

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                self._commit()
        except BaseException:
            self._discard()
            raise
        if kind is not None:
            self._discard()

    def _commit(self) -> None:
        assert self._staging is not None
        staged = sorted(
            p.relative_to(self._staging).as_posix() for p in self._staging.rglob("*") if p.is_file()
        )
        owned = self._owned()  # again: the slow work may have run for minutes
        for name in staged:
            target = self.path / name
            if (target.exists() or target.is_symlink()) and name not in owned:
                raise SweeperError(
                    f"{target}: exists and was not written by {self.command}; not replacing it"
                )
        # Listed first, so a crash while moving still leaves every file sweeper wrote listed.
        self._mark(owned | set(staged))
        for name in staged:
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._staging / name, target)
        for name in owned - set(staged):
            stale = self.path / name
            if stale.is_file() or stale.is_symlink():
                stale.unlink()
        self._mark(set(staged))
        shutil.rmtree(self._staging)  # only the staging folder's emptied sub-folders are left

    def _mark(self, files: set[str]) -> None:
        about = {"written_by": self.command, "files": sorted(files)}
        partial = self.path / f"{MARKER}.partial"
        partial.write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, self.path / MARKER)

    def _discard(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
        for folder in reversed(self._made):
            try:
                folder.rmdir()  # only when still empty: never anything else's
            except OSError:
                break


def _inside(name: Any) -> bool:
    """A relative path with no `..`: what sweeper itself writes into an output folder."""
    if not isinstance(name, str) or not name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


# text ----------------------------------------------------------------------------------------

_BREAKS = re.compile(r"[\t\n]+")


def one_line(text: str) -> str:
    """Text with no control characters (C0, DEL, C1, whole escape sequences); tabs and
    newlines become spaces, so one value stays on one line of a table."""
    return _BREAKS.sub(" ", strip_controls(text))


# OWASP, "CSV Injection": a cell starting with one of these is run as a formula by Excel,
# LibreOffice and Google Sheets. https://owasp.org/www-community/attacks/CSV_Injection
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def csv_text(text: str) -> str:
    """A text cell a spreadsheet shows as text: a formula-like start gets a leading `'`.

    A string that is a plain decimal number (``-0.5``, ``+1e-3``) is left alone: spreadsheets
    read it as that number, never as a formula.
    """
    shown = one_line(text)
    starts = text[:1] in _FORMULA_START or shown.lstrip()[:1] in _FORMULA_START
    if starts and not _NUMBER.fullmatch(shown.strip()):
        return "'" + shown
    return shown


def _cell(value: Any) -> Any:
    return csv_text(value) if isinstance(value, str) else value


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a table as CSV (no index) with every text cell and column name passed through
    :func:`csv_text`; numbers are written as numbers, so ``-0.5`` stays ``-0.5``."""
    import pandas as pd

    safe = frame.copy()
    for column in safe.columns:
        if not (pd.api.types.is_numeric_dtype(safe[column]) or safe[column].dtype == bool):
            safe[column] = safe[column].astype(object).map(_cell)
    safe.columns = [_cell(c) for c in safe.columns]
    safe.to_csv(path, index=False)
