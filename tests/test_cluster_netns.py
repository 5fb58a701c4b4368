"""Many nodes, one PostgreSQL store, with faults: a cluster of network namespaces on this machine
(tests/netns_cluster.py). The server lives in its own namespace; three nodes, two agents each,
reach it only over their own veth link. One sweep of short no-op trials runs through an
agent killed with SIGKILL, a node's link cut for longer than the heartbeat timeout, and a
server restart, and must still finish every grid point exactly once, with the store's
password and a planted W&B key nowhere.

What this does not prove: separate machines (one kernel, one clock, no real network latency
or packet loss; a link cut here is a clean `link down`, not a partition that drops packets
one way).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from conftest import wait_for, write_spec
from netns_cluster import Cluster, netns_cluster, unavailable
from postgres_server import PASSWORD

from sweeper.agent.launch import create_stage
from sweeper.backends.local import LocalBackend
from sweeper.spec.load import load_spec

pytestmark = pytest.mark.slow

POINTS = 200
"""The grid's size, as the issue asks."""
SLEEP = 1.0
"""Seconds each trial (the torchless test trainer) sleeps: faults land on running trials."""
HEARTBEAT_TIMEOUT = 4.0
"""The agents' --heartbeat-timeout (s): short, so lapses are seen within the test."""
WANDB_KEY = "planted0wandb0key0" + "7" * 22
"""A W&B API key in every agent's environment (40 characters, as W&B's are)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with netns_cluster(3) as built:
        yield built


def _held(cluster: Cluster, db: str, pids: list[int]) -> list[tuple[str, int]]:
    """(run id, attempt) of the running trials the agents with these pids hold."""
    if not pids:
        return []
    like = " OR ".join(f"agent LIKE '%-{pid}-%'" for pid in pids)
    rows = cluster.psql(f"SELECT id, attempt FROM runs WHERE state = 'running' AND ({like});", db)
    return [(line.split("|")[0], int(line.split("|")[1])) for line in rows.split()]


def _record(backend: LocalBackend, run_id: str) -> tuple[str, int, str]:
    run = backend.run(run_id)
    return str(run["state"]), int(run["attempt"]), str(run["agent"])


def _finished_again(backend: LocalBackend, run_id: str, attempt: int) -> bool:
    """The run finished, in a later attempt than `attempt` (so requeued first)."""
    state, again, _ = _record(backend, run_id)
    return state == "finished" and again > attempt


def _logs(folder: Path) -> str:
    """Every agent's output, for a failure's message."""
    return "\n".join(f"{p}:\n{p.read_text()[-3000:]}" for p in sorted(folder.glob("*/agent*.log")))


def test_a_sweep_across_three_namespaced_nodes_survives_kill_cut_and_restart(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = "cluster1"
    cluster.create_database(db)
    spec = {
        "name": "noop",
        "trainer": "torchless",
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "base": {"seconds": SLEEP},
        "search": {"x": [i / 10 for i in range(POINTS)]},  # x is bounded to +-100
    }
    backend = LocalBackend(cluster.local_url(db))
    sweep_id = create_stage(backend, load_spec(write_spec(tmp_path, spec)))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "WANDB"))}
    env |= {"PGPASSWORD": PASSWORD, "WANDB_API_KEY": WANDB_KEY}
    agents: dict[int, list[subprocess.Popen[bytes]]] = {}
    for node in cluster.nodes:
        folder = tmp_path / node.name
        folder.mkdir()
        argv = [sys.executable, "-m", "sweeper", "agent", sweep_id]
        argv += ["--store", cluster.url(node, db), "--gpus", "", "--wandb", "disabled"]
        argv += ["--heartbeat-timeout", str(HEARTBEAT_TIMEOUT), "--outage-limit", "120"]
        agents[node.index] = [
            cluster.spawn(
                node, argv, cwd=folder, env=env, output=(folder / f"agent{j}.log").open("wb")
            )
            for j in range(2)
        ]

    def done() -> int:
        """Trials finished so far (every agent still at work: a dead one fails at once)."""
        early = [p for node in agents.values() for p in node if p.poll() is not None]
        assert len(early) <= len(dead), _logs(tmp_path)
        return backend.counts(sweep_id).get("finished", 0)

    killed: list[tuple[str, int]] = []
    dead: list[subprocess.Popen[bytes]] = []

    wait_for(lambda: done() >= 20, 120, "20 trials finished")

    # 1. kill -9 of an agent holding a trial: requeued after its heartbeat lapses, done elsewhere
    for victim in agents[1]:  # the second one if the first was between trials when it died
        pid = victim.pid
        wait_for(lambda: bool(_held(cluster, db, [pid])), 30, "the victim holding a trial")  # noqa: B023
        victim.send_signal(signal.SIGKILL)
        dead.append(victim)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        killed += _held(cluster, db, [victim.pid])  # what the dead agent still holds
        if killed:
            break
    assert killed, "neither victim held a trial when it died"

    # 2. node 2's link cut for longer than the heartbeat timeout
    node2 = cluster.nodes[1]
    node2_pids = [p.pid for p in agents[2]]
    wait_for(lambda: bool(_held(cluster, db, node2_pids)), 30, "node 2 holding a trial")
    cluster.cut(node2)
    cut = _held(cluster, db, node2_pids)
    cut_at = time.time()
    try:
        for run_id, attempt in killed + cut:
            wait_for(
                partial(_finished_again, backend, run_id, attempt),
                60,
                f"run {run_id} requeued and finished elsewhere",
            )
        assert time.time() - cut_at > HEARTBEAT_TIMEOUT
    finally:
        cluster.mend(node2)
    mended_at = time.time()
    for run_id, attempt in killed + cut:
        state, again, agent = _record(backend, run_id)
        assert state == "finished" and again > attempt, (run_id, state, again)
        assert not any(f"-{p.pid}-" in agent for p in dead)
        assert not any(f"-{p}-" in agent for p in node2_pids)

    # node 2 comes back and goes on with new work
    def node2_finished_since(when: float) -> bool:
        like = " OR ".join(f"agent LIKE '%-{pid}-%'" for pid in node2_pids)
        count = cluster.psql(
            f"SELECT count(*) FROM runs WHERE state = 'finished' AND finished_at > {when}"
            f" AND ({like});",
            db,
        )
        return int(count) > 0

    wait_for(lambda: node2_finished_since(mended_at), 60, "node 2 finishing new trials")

    # 3. the server restarted mid-sweep
    assert done() < POINTS, "the sweep ended before the restart: raise POINTS or SLEEP"
    cluster.pg_ctl("restart", "-m", "fast")

    survivors = [p for node in agents.values() for p in node if p not in dead]
    for process in survivors:
        assert process.wait(timeout=240) == 0, _logs(tmp_path)
    # the cut runs' late writes were refused: each still holds its second holder's record,
    # and the cut agent says its attempt was lost
    said = " ".join(" ".join(p.read_text().split()) for p in (tmp_path / node2.name).glob("*.log"))
    for run_id, attempt in cut:
        state, again, agent = _record(backend, run_id)
        assert state == "finished" and again > attempt
        assert not any(f"-{p}-" in agent for p in node2_pids)
        assert f"trial {run_id} (attempt {attempt}) lost" in said, said

    table = backend.runs(sweep_id)
    # every point once: none twice, none missing, none left active
    assert sorted(table["config.x"]) == [i / 10 for i in range(POINTS)]
    assert set(table["state"]) == {"finished"}
    assert backend.counts(sweep_id) == {"finished": POINTS}

    # the password and the W&B key: in no file, log, report or stored row
    store = ["--store", cluster.local_url(db, password=False)]
    report = subprocess.run(
        [sys.executable, "-m", "sweeper", "report", sweep_id, *store, "-o", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=env,
    )
    status = subprocess.run(
        [sys.executable, "-m", "sweeper", "status", sweep_id, *store],
        capture_output=True,
        text=True,
        env=env,
    )
    assert report.returncode == 0, report.stderr
    assert status.returncode == 0 and f"{POINTS}/{POINTS}" in status.stdout, status.stderr
    printed = report.stdout + report.stderr + status.stdout + status.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "output.log" for p in files)
    dump = cluster.pg_dump(db)
    assert sweep_id in dump
    for secret in (PASSWORD, WANDB_KEY):
        assert secret not in printed and secret not in dump
        assert not [p for p in files if secret.encode() in p.read_bytes()]
