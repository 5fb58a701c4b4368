"""Text that came from a program (its output, an error it raised) made safe to store and print.

A program's output may hold terminal control sequences (wandb colours its own lines, tqdm
moves the cursor, a hostile program may retitle the terminal or clear it). Stored as they are,
they reach whoever runs `sweeper status` or reads the run table later; so every reason and
output tail is passed through :func:`strip_controls` before it is stored or printed, and
through :func:`cap` so one huge line cannot become a huge row.
"""

from __future__ import annotations

import re

# ECMA-48 (the standard terminals follow), in 7-bit and 8-bit forms:
#  - CSI: ESC [ (or 0x9B), parameter bytes 0x30-0x3F, intermediate bytes 0x20-0x2F, a final
#    byte 0x40-0x7E (colours, cursor moves, clear screen);
#  - OSC, DCS, SOS, PM, APC: ESC ] P X ^ _ (or 0x9D 0x90 0x98 0x9E 0x9F) up to ST (ESC \ or
#    0x9C) or BEL, or to the end of the text when unterminated (window titles, hyperlinks);
#  - any other escape: ESC, its intermediate bytes 0x20-0x2F and its final byte (charset
#    switches such as ESC ( B);
#  - every other C0 and C1 control character and DEL, except tab and newline.
_CONTROLS = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)

CUT = "[... {n} characters cut ...]"

REASON_LIMIT = 4000
"""The most characters of a stored reason (an error, a program's last lines)."""


def strip_controls(text: str) -> str:
    """Drop terminal control sequences and control characters, keeping tabs and newlines.

    A carriage return is dropped too (a progress bar's redraws then read as one line).

    Args:
        text: output or an error message from a program.

    Returns:
        The printable text, every escape sequence removed whole.
    """
    return _CONTROLS.sub("", text)


def cap(text: str, limit: int) -> str:
    """Keep the head and the tail of ``text`` within ``limit`` characters, marking the cut.

    The tail is the larger part (an error's last lines say what failed); the marker says how
    much was cut so a reader knows the text is not whole.

    Args:
        text: any text.
        limit: the most characters returned (at least the marker's length plus a few).

    Returns:
        ``text`` when it fits, else its head, a ``[... N characters cut ...]`` marker and its tail.
    """
    if len(text) <= limit:
        return text
    # the marker is sized for the most that could be cut, so head + marker + tail fits
    keep = max(limit - len(CUT.format(n=len(text))), 0)
    marker = CUT.format(n=len(text) - keep)
    head = keep // 4
    tail = keep - head
    return text[:head] + marker + (text[-tail:] if tail else "")
