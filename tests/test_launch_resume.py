"""`launch` as users stop it: SIGTERM reaches its agents, nothing is orphaned or lost, and the
same launch again resumes the study (finishes the open stage, then creates the next)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import probe_spec, wait_for, write_spec

from sweeper.backends.local import LocalBackend


def _launch(spec: Path, store: Path, *args: str) -> subprocess.Popen[str]:
    command = ["launch", str(spec), "--store", str(store), "--wandb", "disabled", *args]
    return subprocess.Popen(
        [sys.executable, "-m", "sweeper", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _agents_alive(sweep_ids: list[str]) -> list[str]:
    found = subprocess.run(["pgrep", "-af", "sweeper agent"], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if any(s in line for s in sweep_ids)]


@pytest.mark.slow  # a real launch and its agents, stopped and resumed
def test_sigterm_stops_launch_and_its_agents_and_the_same_launch_resumes(
    store: Path, tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path,
        probe_spec(
            search={},
            # 5 s trials: a 1 s one could end before the SIGTERM below reaches it (the first
            # agent starts seconds ahead of the second), leaving nothing to preempt.
            base={"epochs": 20, "epoch_seconds": 0.25},
            stages=[
                {"name": "x", "search": {"x": [0.0, 1.0, 2.0, 3.0]}},
                {"name": "lr", "search": {"optim.lr": [0.1, 0.01]}},
            ],
        ),
    )
    first = _launch(spec, store, "--agents", "2")

    def running() -> bool:
        if not store.exists():
            return False
        db = LocalBackend(store, create=False, readonly=True)
        return any(db.counts(s.id).get("running", 0) for s in db.sweeps())

    wait_for(running, what="trials to start")
    time.sleep(0.5)
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 143, out
    backend = LocalBackend(store, create=False)
    (stage_one,) = backend.sweeps()
    assert not _agents_alive([stage_one.id]), "no agent outlives its launch"
    counts = backend.counts(stage_one.id)
    assert counts.get("preempted", 0) >= 1 and "running" not in counts, counts

    again = _launch(spec, store, "--agents", "2")
    out, _ = again.communicate(timeout=180)
    assert again.returncode == 0, out
    assert "(resumed," in out
    stages = backend.sweeps(stage_one.study)
    assert [s.stage_name for s in stages] == ["x", "lr"], "the open stage finished, then the next"
    runs = backend.runs([s.id for s in stages])
    assert len(runs) == 6 and set(runs["state"]) == {"finished"}, runs[["state", "error"]]
    xs = runs[runs["sweep_id"] == stage_one.id]["config.x"]
    assert sorted(xs) == [0.0, 1.0, 2.0, 3.0], "each point once, none lost"

    fresh = _launch(spec, store, "--fresh")
    out, _ = fresh.communicate(timeout=180)
    assert fresh.returncode == 0 and "(created," in out, out
    assert len(backend.sweeps()) == 4
