"""The standby agent process's entry: `python -m sweeper.cli.standby`, started by `launch`
through `sweeper.agent.prestart` before it validates the spec (see that module for why).

It imports what every agent needs, then waits on its stdin for one JSON line, `{"argv":
[...], "env": {...}, "log": PATH}`: the `sweeper` arguments, environment and log file that
`launch` would have started an agent with. It then runs as exactly that agent through the CLI
app. Given nothing (launch refused the spec, or is gone: its end of the pipe closes), it exits
having written nothing. It lives in `cli/` because it runs the CLI app, which sits above the
agent.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

WARM_MODULES = ("sweeper.cli", "sweeper.agent.loop", "sweeps.bayes_search")
"""What an agent imports before its first claim (sweeps.next_runs imports bayes_search, and
scikit-learn with it, whatever the method)."""


def main() -> None:
    """Import ahead, then run as the agent `launch` writes on stdin (or exit on nothing)."""
    for module in WARM_MODULES:
        importlib.import_module(module)
    order = sys.stdin.readline()
    if not order:  # launch did not need an agent, or is gone
        return
    given = json.loads(order)
    os.environ.clear()
    os.environ.update(given["env"])
    log = os.open(given["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    from sweeper.cli import app

    app(args=given["argv"], prog_name="sweeper")


if __name__ == "__main__":
    main()
