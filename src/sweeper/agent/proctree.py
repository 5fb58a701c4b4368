"""A trial's whole process tree ends with its trial (Linux).

A program may leave processes behind: `sleep 300 &`, a DataLoader worker, a daemon that
forks twice and calls setsid. A process group does not hold them (setsid leaves it), and no
cgroup can be made here (cgroup v1, read-only). What does hold them is the kernel's child
subreaper (prctl PR_SET_CHILD_SUBREAPER, Linux 3.4): the trial's child process marks itself
one, so every orphan among its descendants is reparented to it rather than to init, and stays
in its tree until it is killed.

What is guaranteed: when a trial ends, every process descended from its trial child (the
program, its children, a double-forked setsid daemon) is killed and reaped, unless it escaped
the tree altogether: started by another service (systemd-run, at, a container engine, sshd),
or left in a new PID namespace whose init outlived it. The agent kills a trial it gives up on
(timeout, grace over, lost) with :func:`kill_tree`, which freezes the tree before it kills,
so nothing forks its way out meanwhile.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
"""From <linux/prctl.h>."""


def become_subreaper() -> bool:
    """Mark this process the subreaper of its descendants; False where the kernel refuses."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return False
    status: int = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # ctypes' default restype
    return status == 0


def _parents() -> dict[int, int]:
    """{pid: parent pid} of every process visible in /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:  # gone meanwhile
            continue
        # `pid (comm) state ppid ...`; comm may hold spaces and parentheses: split after the last
        out[int(entry.name)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every living process below `pid`, parents before their children."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += children.get(child, [])
    return found


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _reap(pids: list[int]) -> None:
    """Collect the exit status of those that are our own children (no zombies left)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)


def end_descendants(grace: float = 2.0) -> int:
    """Kill every process below this one (a subreaper: orphans included); returns how many.

    SIGTERM first, so a program's children can flush, then SIGKILL to what is left after
    `grace` seconds. Repeats until none is left (for at most `grace` seconds more: a process
    stuck in the kernel may never go): a killed process's own children are reparented here
    and found on the next pass.

    Args:
        grace: seconds between SIGTERM and SIGKILL.

    Returns:
        The number of processes that were found and ended.
    """
    me = os.getpid()
    found = descendants(me)
    if not found:
        return 0
    _signal(found, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for pid in found:  # reap our own children as they exit, so they stop counting
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        if not descendants(me):
            return len(found)
        time.sleep(0.05)
    ended = set(found)
    deadline = time.monotonic() + grace  # bounded: a process in D state may never go
    while (left := descendants(me)) and time.monotonic() < deadline:
        ended.update(left)
        _signal(left, signal.SIGKILL)
        _reap(left)
        time.sleep(0.05)
    return len(ended)


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and everything below it, frozen first (SIGSTOP) so that no process
    forks a new one between the listing and the kill."""
    stopped: set[int] = set()
    while True:
        tree = [pid, *descendants(pid)]
        new = [p for p in tree if p not in stopped]
        if not new:
            break
        _signal(new, signal.SIGSTOP)
        stopped.update(new)
    _signal(list(stopped), signal.SIGKILL)
