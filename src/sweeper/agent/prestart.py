"""An agent process started ahead of its sweep, so that its imports overlap `launch`'s own.

`launch` spends ~1.5 s validating the spec and making the sweep (W&B's `sweeps` engine imports
scipy); an agent spends as long importing the same engine before its first claim. Started
serially, the first trial waits for both. So `launch` starts one process at once, which
imports what every agent needs and then waits on its stdin for the command line (`sweeper
agent SWEEP ...`), the environment and the log file that `launch` would have started an agent
with; it then runs as exactly that agent. Given nothing (launch refused the spec, or is gone:
its end of the pipe closes), it exits having written nothing. This module starts and hands
over that process; its entry, which runs the CLI app, is the caller's (`sweeper.cli.standby`).

Its parent is `launch`, as a directly started agent's is, so it dies with `launch` the same
way (sweeper.agent.loop._follow_launcher).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_standby: subprocess.Popen[bytes] | None = None
"""The process this `launch` started ahead, until an agent's start takes it."""


def start(entry: str) -> None:
    """Start the process ahead (once per launch); it costs nothing if never taken.

    Args:
        entry: the module it runs (`python -m entry`): one that imports ahead, then reads the
            order `take` writes (`sweeper.cli.standby`).
    """
    global _standby
    if _standby is None:
        _standby = subprocess.Popen(
            [sys.executable, "-m", entry],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # as launch's agents: a terminal's Ctrl-C reaches launch only
        )


def take(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes] | None:
    """Turn the process started ahead into the agent `argv` (`sweeper ...` arguments) with
    `env`, writing to `log`; None when there is none to take (not started, already taken, or
    it died), and the caller starts the agent itself."""
    global _standby
    process, _standby = _standby, None
    if process is None or process.stdin is None or process.poll() is not None:
        return None
    try:
        process.stdin.write(json.dumps({"argv": argv, "env": env, "log": str(log)}).encode())
        process.stdin.close()
    except OSError:  # it died meanwhile
        process.kill()
        process.wait()
        return None
    return process
