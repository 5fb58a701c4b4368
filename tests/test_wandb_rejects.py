"""The W&B backend reports a sweep config that W&B refuses in one line, at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from wandb_server import WandbServer

from sweeper.backends.wandb import WandbBackend
from sweeper.errors import SweeperError


def test_a_refused_sweep_config_fails_fast_in_one_line(
    wandb_server: WandbServer, tmp_path: Path
) -> None:
    """A refused config cannot pass on a later try: retrying it only delays the message."""
    backend = WandbBackend(tmp_path / "store" / "sweeper.db", entity="standin", project="p")
    bad = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": []}},
        "program": "sweeper.agent.wandb_agent_trial",
        "command": ["${env}", "${interpreter}", "-m", "${program}", "--trainer", "probe"],
    }
    started = time.monotonic()

    with pytest.raises(SweeperError) as refused:
        backend.create_sweep(bad, trainer="probe", spec={}, spec_hash="0" * 64)

    elapsed = time.monotonic() - started
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("W&B: create sweep:")
    assert "Invalid sweep config" in message and "'values': []" in message
    assert elapsed < 5, f"took {elapsed:.1f}s: the refusal was retried"
    assert wandb_server.sweeps == {}


STUCK_SERVICE = """
import atexit, sys, threading, types
import sweeper.backends.wandb
from sweeper.cli import app

# wandb whose service process never finishes its last request. Like wandb, it tears the
# service down at exit; teardown waits for the service, here forever.
stuck = types.ModuleType("wandb")
stuck.teardown = lambda exit_code=None: threading.Event().wait()
atexit.register(stuck.teardown)
sys.modules["wandb"] = stuck
sweeper.backends.wandb.RELEASE_WAIT = 0.5
sys.argv = ["sweeper", "validate", sys.argv[1]]
app()
"""


@pytest.mark.slow  # sweeper in a child process beside a stuck wandb service
def test_a_stuck_w_and_b_service_does_not_hold_a_refusal(tmp_path: Path) -> None:
    """Seen in CI: the error line printed, then wandb's exit hook waited on its service."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", STUCK_SERVICE, str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "missing.yaml" in line
    assert elapsed < 15, f"took {elapsed:.1f}s: the exit waited for the service"
