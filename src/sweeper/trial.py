"""Entry point for a plain `wandb agent`: `python -m sweeper.trial --trainer NAME ARGS_JSON_FILE`.

The compiled sweep config's `command` runs this, so a sweep made by `sweeper compile` also
runs on W&B's own agents and servers: wandb.init() picks up the sweep and run ids that the
W&B agent set in the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeper.spec.paths import unflatten
from sweeper.trainers.registry import get_trainer


class WandbLogger:
    """Logs to the active wandb run; W&B's agent stops a run by signalling its process."""

    run_dir: Path | None = None

    def __init__(self, run: Any) -> None:
        self._run = run

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log(dict(metrics), step=step)

    def should_stop(self) -> bool:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeper.trial", description=__doc__)
    parser.add_argument("--trainer", required=True)
    parser.add_argument("args_json_file", type=Path, help="W&B's ${args_json_file}")
    args = parser.parse_args(argv)

    import wandb

    info = get_trainer(args.trainer)
    params = json.loads(args.args_json_file.read_text())
    flat = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in params.items()}
    config = info.config_model().model_validate(unflatten(flat))
    run = wandb.init(config=config.model_dump(mode="json"))
    summary = info.train_fn()(config, WandbLogger(run))
    run.summary.update(summary)
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
