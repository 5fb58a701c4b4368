"""Errors a user can fix. The CLI prints them on one line and exits with code 2."""

from __future__ import annotations

import errno


class SweeperError(Exception):
    """Bad input or a missing resource: said in one line, never a traceback."""


class SpecError(SweeperError):
    """A spec (or config) value that fails validation, located by file and field path."""

    def __init__(self, file: str, field: str, message: str) -> None:
        self.file, self.field, self.message = file, field, message
        super().__init__(f"{file}: {field}: {message}" if field else f"{file}: {message}")


class NotFoundError(SweeperError):
    """An unknown sweep, run or trainer."""


class SweepGone(NotFoundError):
    """A sweep deleted on its W&B server while an agent ran it: the server answers the agent's
    heartbeat with 404 (wandb's SweepNotFoundError)."""


class Unreachable(SweeperError):
    """A server that did not answer, even after retries: callers that can wait (an agent with
    trials running) try again later; the rest say it in one line."""


SHOWN = 60
"""Characters of a user's value quoted in an error line; a longer one is cut, marked `…`."""


def shown(value: object, limit: int = SHOWN) -> str:
    """A value as an error line quotes it: its repr, cut to ``limit`` characters.

    A 50,000-character name must not become a 50,000-character line (nor quadratic work for
    whatever prints it).
    """
    text = repr(value[: limit + 1] if isinstance(value, str) else value)
    return text if len(text) <= limit else f"{text[:limit]}…"


class StoreLost(SweeperError):
    """The store file a process opened was deleted, replaced or truncated under it: nothing
    more may be written (SQLite would quietly write into the unlinked file, or a new one)."""


class NoSpace(SweeperError):
    """ENOSPC or SQLITE_FULL: the disk of the store or of a run folder is full. A trial that
    meets it is requeued, not failed: it did nothing wrong, and reruns once space is freed."""

    @classmethod
    def at(cls, path: object) -> NoSpace:
        """The error for a full disk met writing `path` (a file or folder, shown as given)."""
        return cls(f"no space left on device ({path})")


def no_space(exc: BaseException, where: object) -> NoSpace | None:
    """The NoSpace behind `exc` when a full disk raised it, naming the file (else `where`).

    Looks down the chain: torch.save writing to a file object re-raises the file's ENOSPC
    OSError with its own RuntimeError as the context.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NoSpace):
            return cause
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return NoSpace.at(cause.filename or where)
        cause = cause.__cause__ or cause.__context__
    return None
