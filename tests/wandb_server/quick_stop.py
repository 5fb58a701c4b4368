"""An environment in which a child process's wandb run hears of a stop within seconds.

wandb learns that a run was asked to stop from the answer to its file_stream POST
(wandb-core's filestream `IsStopped`) and acts on it in its stop checker, which polls
every 15 s (wandb/sdk/lib/run_stopping.py `_POLL_INTERVAL`; no setting or variable
changes it). wandb-core posts file_stream at most every `x_file_stream_transmit_interval`
seconds (default 15, whole seconds; variable WANDB__FILE_STREAM_TRANSMIT_INTERVAL) while
the run logs, and every 30 s when it logs nothing. A test that waits for the real client
must either wait past those intervals (and be marked slow) or run the child in
`quick_stop_env`, where both are `poll_s`, so a run that keeps logging is interrupted
with SIGINT about 2 * `poll_s` after `WandbServer.stop_run`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

SITE = Path(__file__).with_name("quick_stop_site")
POLL_VARIABLE = "STANDIN_WANDB_STOP_POLL_S"


def quick_stop_env(env: Mapping[str, str] | None = None, poll_s: int = 1) -> dict[str, str]:
    """`env` (default: this process's) plus what shortens a child's stop check to `poll_s`.

    Raises:
        ValueError: `poll_s` is under 1 (wandb-core takes whole seconds, 0 meaning 15).
    """
    if poll_s < 1 or not math.isfinite(poll_s):
        raise ValueError(f"poll_s must be a whole number of seconds >= 1, not {poll_s}")
    child = dict(os.environ if env is None else env)
    paths = [str(SITE), *filter(None, [child.get("PYTHONPATH")])]
    child["PYTHONPATH"] = os.pathsep.join(paths)
    child[POLL_VARIABLE] = str(poll_s)
    child["WANDB__FILE_STREAM_TRANSMIT_INTERVAL"] = str(poll_s)
    return child
