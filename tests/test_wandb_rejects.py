"""The W&B backend reports a sweep config that W&B refuses in one line, at once."""

from __future__ import annotations

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
        "program": "sweeper.trial",
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
