"""The program the stock `wandb agent` runs for a compiled sweep:
`python -m sweeper.agent.wandb_agent_trial --trainer NAME [--metric NAME] ARGS_JSON_FILE`.

The compiled sweep config's `program` is this module, so a sweep made by `sweeper compile`
also runs on W&B's own agents and servers: wandb.init() picks up the sweep and run ids that
the W&B agent set in the environment. The trial runs as under `sweeper agent`
(agent.trial.run_trial), into a sink wrapping that run. W&B's agent stops a trial (hyperband,
a stopped sweep) with SIGTERM (wandb/wandb_agent.py, `_command_stop`), and wandb's stop checker
in this process stops it with SIGINT once the server says the run was stopped (a user's "Stop
run"; the rule: agent/loop.py); either way the trial ends at the next epoch boundary, keeps its
summary, says `stopped_early` and exits 0, and W&B marks the run `killed`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeper.agent.tracking import StopFlag
from sweeper.agent.trial import TrainerRun, run_trial
from sweeper.backends.base import Claim
from sweeper.backends.wandb import WandbRunSink
from sweeper.spec.paths import unflatten
from sweeper.sweep import RunState


def main(argv: list[str] | None = None) -> int:
    """Run one trial; the exit code is W&B's verdict on the run (0 finished or stopped)."""
    parser = argparse.ArgumentParser(
        prog="python -m sweeper.agent.wandb_agent_trial", description=__doc__
    )
    parser.add_argument("--trainer", required=True)
    # The sweep's metric, written into the command by `sweeper compile`: a program run by
    # `wandb agent` is given its parameters, not the sweep config (wandb/wandb_agent.py).
    parser.add_argument("--metric", help="the sweep's metric: a NaN in it fails the run")
    parser.add_argument("args_json_file", type=Path, help="W&B's ${args_json_file}")
    args = parser.parse_args(argv)

    flag = StopFlag()
    for sig in (signal.SIGTERM, signal.SIGINT):  # W&B's agent; wandb's stop checker (above)
        signal.signal(sig, lambda signum, _frame: flag.stop_by_sweep())

    def opener(meta: Mapping[str, Any]) -> Any:
        import wandb

        # Everything else comes from the variables `wandb agent` set; the config is the
        # trainer's whole one, validated, into which the sweep's parameters merge.
        return wandb.init(config=meta["config"])

    # W&B's args JSON is the run config's top level, nested along the sweep's nested blocks
    # (wandb/sdk/launch/sweeps/utils.py create_sweep_command_args); a spec compiled for a
    # scheduler engine keeps its trainer paths flat (`optim.lr`: wandb's optuna and ax
    # converters read one level), so dotted keys are nested into the trainer's own shape.
    config = unflatten(json.loads(args.args_json_file.read_text()))
    run_id = os.environ.get("WANDB_RUN_ID", "")  # what `wandb agent` gave this trial
    sink = WandbRunSink(Claim(run_id, None, 1, {}), Path.cwd(), opener)
    work = TrainerRun(args.trainer, config, metric=args.metric, keep_files=False)
    state = run_trial(work, sink, flag)
    return 0 if state in (RunState.FINISHED, RunState.STOPPED) else 1


if __name__ == "__main__":
    sys.exit(main())
