"""A trial's processes, output and secrets: what a program leaves behind never outlives,
outgrows or leaks out of its trial. Real agents, real programs, a real SQLite store."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import probe_spec, wait_for

from sweeper.agent.loop import Agent, AgentOptions
from sweeper.backends.local import LocalBackend
from sweeper.spec.load import load_sweep_file
from sweeper.spec.plain import PlainSweep

LEAKY = """
import os, subprocess, sys, time
kid = subprocess.Popen(["sleep", "300"])  # left running, as `cmd &` leaves it
r, w = os.pipe()
if os.fork() == 0:  # a daemon: fork, setsid, fork again; the middle one exits
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        time.sleep(300)
        os._exit(0)
    os._exit(0)
os.close(w)
daemon = int(os.read(r, 64))
open("pids-" + os.environ["WANDB_RUN_ID"], "w").write(f"{kid.pid} {daemon}")
mode = sys.argv[1].split("=", 1)[1]
if mode == "hang":
    time.sleep(300)
sys.exit(3 if mode == "crash" else 0)
"""


def _plain(folder: Path, source: str, **config: Any) -> Path:
    (folder / "train.py").write_text(source)
    sweep = {"name": "mine", "program": "train.py", "method": "grid", **config}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def _create(backend: LocalBackend, path: Path) -> str:
    loaded = load_sweep_file(path)
    assert isinstance(loaded, PlainSweep)
    return backend.create_sweep(
        loaded.config,
        trainer="",
        spec=loaded.record(),
        spec_hash=loaded.hash,
        spec_path=loaded.path,
    )


def _dead(pid: int) -> bool:
    """Gone, or a zombie: killed, waiting only for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def leftovers() -> Iterator[Callable[[list[int]], None]]:
    """Checks pids are dead; kills whatever a failing test left alive."""
    seen: list[int] = []

    def check(pids: list[int]) -> None:
        seen.extend(pids)
        for pid in pids:
            wait_for(lambda pid=pid: _dead(pid), timeout=5, what=f"process {pid} to end")

    yield check
    for pid in seen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("mode", ["exit", "crash", "hang"])
def test_a_programs_children_and_setsid_daemons_end_with_its_trial(
    backend: LocalBackend,
    tmp_path: Path,
    leftovers: Callable[[list[int]], None],
    mode: str,
) -> None:
    """Exit 0, exit non-zero, or killed at the trial timeout: `sleep 300` and a double-forked
    setsid daemon started by the program are gone when the agent returns."""
    path = _plain(tmp_path, LEAKY, parameters={"mode": {"value": mode}})
    sweep_id = _create(backend, path)
    timeout = 3 if mode == "hang" else None
    Agent(AgentOptions(sweep_id, store=backend.path, poll=0.05, trial_timeout=timeout)).run()

    (run,) = backend.runs(sweep_id).to_dict("records")
    assert run["state"] == "failed", run["error"]  # no wandb.init, exit 3, or timed out
    pids = [int(p) for p in (tmp_path / f"pids-{run['run_id']}").read_text().split()]
    leftovers(pids)


def test_a_trainers_workers_and_children_end_with_its_trial(
    make_sweep: Callable[[dict[str, Any]], str],
    backend: LocalBackend,
    tmp_path: Path,
    leftovers: Callable[[list[int]], None],
) -> None:
    """A built-in trainer's forked workers (as a DataLoader's) and setsid'd children."""
    sweep_id = make_sweep(probe_spec(base={"epochs": 1, "leak": True}, search={"x": [0.0]}))
    Agent(AgentOptions(sweep_id, store=backend.path, poll=0.05, wandb_mode="disabled")).run()

    (run,) = backend.runs(sweep_id).to_dict("records")
    assert run["state"] == "finished", run["error"]
    (leaked,) = tmp_path.glob("leaked-*")
    leftovers([int(p) for p in leaked.read_text().split()])
