"""A program's output, kept in its trial's `output.log` within a fixed size.

A program may print without end (a progress bar per batch, a debug dump). The log keeps its
first `head` bytes and its last `tail` bytes, with a `[... N bytes cut ...]` line between: the
start says how the program began, the end why it stopped. On disk it never exceeds
`head + 2 * tail` plus the marker (the tail is compacted each time it doubles), and it holds
at most `tail` bytes in memory while compacting.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import BinaryIO

from sweeper.text import REASON_LIMIT, cap, strip_controls

HEAD = 1 << 20
"""Bytes kept from the start of a program's output."""
TAIL = 4 << 20
"""Bytes kept from the end of a program's output."""
READ = 1 << 16
"""Bytes read from the program's pipe at a time."""


def marker(cut: int) -> bytes:
    return f"\n[... {cut:,} bytes cut ...]\n".encode()


class CappedLog:
    """Appends to a file, keeping its head and its tail (see the module's docstring)."""

    def __init__(self, path: Path, head: int = HEAD, tail: int = TAIL) -> None:
        self.head, self.tail = head, tail
        self.file: BinaryIO = path.open("ab")
        self.start = self.file.tell()  # what was in the file before (sweeper's own lines)
        self.cut = 0
        self.body = 0
        """Where the kept tail begins (after head and marker); 0 until something is cut."""

    def write(self, data: bytes) -> None:
        self.file.write(data)
        size = self.file.tell()
        if size - max(self.body, self.start + self.head) > 2 * self.tail:
            self._compact(size)

    def _compact(self, size: int) -> None:
        """Keep the head and the last `tail` bytes; the rest becomes the marker."""
        self.file.flush()
        head_end = self.start + self.head
        body = max(self.body, head_end)
        with open(self.file.name, "r+b") as file:
            file.seek(size - self.tail)
            kept = file.read(self.tail)
            self.cut += size - self.tail - body
            file.seek(head_end)
            file.write(marker(self.cut))
            self.body = file.tell()
            file.write(kept)
            file.truncate()
        self.file.seek(0, os.SEEK_END)

    def close(self) -> None:
        self.file.close()


def pump(fd: int, log: CappedLog) -> threading.Thread:
    """Copy a pipe into the log until every writer has closed it, on a thread of its own
    (the program must never block on a full pipe while the trial polls its run file)."""

    def copy() -> None:
        try:
            while chunk := os.read(fd, READ):
                log.write(chunk)
        finally:
            os.close(fd)
            log.close()

    thread = threading.Thread(target=copy, name="output", daemon=True)
    thread.start()
    return thread


def exit_reason(code: int | None) -> str:
    """How a trial process ended, in words."""
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


TAIL_BYTES = 1 << 16
"""The most bytes read from the end of a trial's output.log for its last lines."""
LINE_LIMIT = 500
"""The most characters kept of one line of a program's output in a stored reason."""


def output_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a trial's output, as a stored reason may quote them.

    Reads at most TAIL_BYTES from the end, whatever the log's size; each line is cut to
    LINE_LIMIT characters and stripped of terminal control sequences, the whole to
    REASON_LIMIT.
    """
    try:
        with path.open("rb") as file:
            start = max(file.seek(0, os.SEEK_END) - TAIL_BYTES, 0)
            file.seek(start)
            data = file.read(TAIL_BYTES)
    except OSError:
        return ""
    text = strip_controls(data.decode(errors="replace"))
    kept = text.splitlines()[-lines:]
    if start and kept and len(kept) == len(text.splitlines()):  # the first read from its middle
        kept[0] = "[...]" + kept[0]
    return cap("\n".join(cap(line, LINE_LIMIT) for line in kept), REASON_LIMIT)
