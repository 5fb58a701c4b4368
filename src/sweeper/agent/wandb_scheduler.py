"""The process `launch --backend wandb` runs beside a `scheduler:` sweep's agents: the sweep's
scheduler, as `wandb sweep-scheduler` runs it (one per sweep), until the sweep ends.

    python -m sweeper.agent.wandb_scheduler ENTITY/PROJECT/SWEEP_ID STORE [SPEC_PATH]

A process of its own, not a thread of launch: wandb's client installs its SIGINT handler and
runs its task exchange on the main thread, and wandb-core serves one scheduler session per
client. launch stops it with SIGINT, which wandb turns into a graceful stop (the current step
finishes; the sweep stays resumable). It prints why it stopped; a failure is one `error:` line
and exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sweeper.backends.wandb import WandbBackend
from sweeper.errors import SweeperError

USAGE = "usage: python -m sweeper.agent.wandb_scheduler ENTITY/PROJECT/SWEEP_ID STORE [SPEC_PATH]"


def command(sweep_id: str, store: Path, spec_path: str | None) -> list[str]:
    """The command line that runs this module for one sweep (launch's)."""
    spec = [spec_path] if spec_path else []
    return [sys.executable, "-m", "sweeper.agent.wandb_scheduler", sweep_id, str(store), *spec]


def main(argv: list[str]) -> int:
    """Run the sweep's scheduler; 0 once it stopped as wandb stops it cleanly, 1 on a failure,
    2 on a wrong command line."""
    if len(argv) not in (2, 3):
        print(USAGE, file=sys.stderr)
        return 2
    sweep_id, store = argv[0], Path(argv[1])
    backend = WandbBackend(store)
    try:
        why = backend.run_scheduler(sweep_id, spec_path=argv[2] if len(argv) == 3 else None)
    except SweeperError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        backend.close()
    print(f"scheduler of {sweep_id}: {why}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
