"""Errors a user can fix. The CLI prints them on one line and exits with code 2."""


class SweeperError(Exception):
    """Bad input or a missing resource: said in one line, never a traceback."""


class SpecError(SweeperError):
    """A spec (or config) value that fails validation, located by file and field path."""

    def __init__(self, file: str, field: str, message: str) -> None:
        self.file, self.field, self.message = file, field, message
        super().__init__(f"{file}: {field}: {message}" if field else f"{file}: {message}")


class NotFoundError(SweeperError):
    """An unknown sweep, run or trainer."""


class Unreachable(SweeperError):
    """A server that did not answer, even after retries: callers that can wait (an agent with
    trials running) try again later; the rest say it in one line."""
