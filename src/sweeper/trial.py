"""Entry point for a plain `wandb agent`: `python -m sweeper.trial --trainer NAME ARGS_JSON_FILE`.

The compiled sweep config's `program` is this module, so a sweep made by `sweeper compile`
also runs on W&B's own agents and servers: wandb.init() picks up the sweep and run ids that
the W&B agent set in the environment. W&B's agent stops a trial (hyperband, a stopped sweep)
with SIGTERM; the trial then ends at the next epoch boundary, keeps its summary and exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from sweeper.agent.tracking import NonFiniteMetricError, StopFlag, WandbLogger, summary_to_set
from sweeper.trainers.registry import get_trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeper.trial", description=__doc__)
    parser.add_argument("--trainer", required=True)
    # The sweep's metric, written into the command by `sweeper compile`: a program run by
    # `wandb agent` is given its parameters, not the sweep config (wandb/wandb_agent.py).
    parser.add_argument("--metric", help="the sweep's metric: a NaN in it fails the run")
    parser.add_argument("args_json_file", type=Path, help="W&B's ${args_json_file}")
    args = parser.parse_args(argv)

    flag = StopFlag()
    for sig in (signal.SIGTERM, signal.SIGINT):  # W&B's agent stops a trial with these
        signal.signal(sig, lambda signum, _frame: flag.stop_by_sweep())

    import wandb

    info = get_trainer(args.trainer)
    # W&B's args JSON is the run config's top level, nested along the sweep's nested blocks
    # (wandb/sdk/launch/sweeps/utils.py create_sweep_command_args): the trainer's own shape.
    config = info.config_model().model_validate(json.loads(args.args_json_file.read_text()))
    # The sweep's nested parameters merge into this: one config, the trainer's shape.
    run = wandb.init(config=config.model_dump(mode="json"))
    try:
        summary = info.train_fn()(config, WandbLogger(run, flag, metric=args.metric))
    except NonFiniteMetricError as exc:  # a NaN metric cannot rank: the run fails, as elsewhere
        run.summary["error"] = str(exc)
        run.finish(exit_code=1)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        run.summary["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        run.finish(exit_code=1)
        raise
    run.summary.update(summary_to_set(summary))
    if flag.by_sweep:
        run.summary["stopped_early"] = True
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
