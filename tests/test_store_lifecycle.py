"""Lose nothing, run nothing nobody asked for: the store's file and its agents' lifetimes.

- A store deleted (or its folder), replaced by a copy, or truncated under a running process:
  that process stops with one line and writes nowhere else (SQLite alone would write into the
  unlinked file, or create a new empty store at the path).
- A full disk (a real 2 MiB tmpfs, filled mid-trial) under the store or under the run folders:
  "no space left on device (<path>)", the trial requeued rather than failed, the agent
  stopped; a later agent finishes it.
- `kill -9` of launch: its agents die with it; agents hold slot leases, so a second launch, or
  an agent started by hand, never runs more trials at once than the slots.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, start_agent, wait_for, write_spec

from sweeper.agent.launch import create_stage
from sweeper.backends.local import LocalBackend
from sweeper.backends.sqlite import StoreIdentity
from sweeper.errors import StoreLost
from sweeper.spec.load import load_spec


def _make_sweep(backend: LocalBackend, folder: Path, **spec: Any) -> str:
    return create_stage(backend, load_spec(write_spec(folder, probe_spec(**spec))))


def _launch(spec: Path, store: Path, *args: str) -> subprocess.Popen[str]:
    command = ["launch", str(spec), "--store", str(store), "--wandb", "disabled", *args]
    return subprocess.Popen(
        [sys.executable, "-m", "sweeper", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _alive(pid: int) -> bool:
    """A process that has not exited (a zombie waiting for its reaper has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _running(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True, timeout=30) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM runs WHERE state = 'running'").fetchone()[0]
        except sqlite3.OperationalError:  # not made yet
            return 0


@contextmanager
def most_running(store: Path) -> Iterator[list[int]]:
    """Sample how many trials the store lists as running, every 50 ms, while the block runs."""
    seen = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen[0] = max(seen[0], _running(store))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()


def _lines(process: subprocess.Popen[str]) -> list[str]:
    """The process's output lines so far, read by a thread as they come."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


# -- the store's file --------------------------------------------------------------------------


def _delete(store: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)


def _delete_folder(store: Path) -> None:
    shutil.rmtree(store.parent)


def _replace_by_copy(store: Path) -> None:
    copy = store.with_name("copy.db")
    shutil.copy(store, copy)
    os.replace(copy, store)


def _truncate(store: Path) -> None:
    os.truncate(store, 0)


FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "deleted": (_delete, "was deleted"),
    "folder deleted": (_delete_folder, "was deleted"),
    "replaced by a copy": (_replace_by_copy, "was replaced by another file"),
    "truncated": (_truncate, "was truncated"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_no_write_goes_into_a_store_that_is_not_the_one_opened(
    backend: LocalBackend, store: Path, tmp_path: Path, fault: str
) -> None:
    sweep_id = _make_sweep(backend, tmp_path)
    claim = backend.claim(sweep_id, "a")
    assert claim is not None
    # the rows in the file, as after a while
    backend.sqlite.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damage, said = FAULTS[fault]
    there_before = store.read_bytes() if store.exists() else None
    damage(store)
    there = store.read_bytes() if store.exists() else None
    writes = [
        lambda: backend.log(claim.run_id, claim.attempt, 0, {"loss": 1.0}),
        lambda: backend.heartbeat(claim.run_id, claim.attempt),
        lambda: backend.finish(claim.run_id, claim.attempt, "finished", {"loss": 1.0}),
        lambda: backend.claim(sweep_id, "b"),
        lambda: backend.set_sweep_state(sweep_id, "finished"),
    ]
    for write in writes:
        with pytest.raises(StoreLost, match=f"^{store}: the store {said} while in use"):
            write()
    assert (store.read_bytes() if store.exists() else None) == there, "nothing was written"
    assert there_before is not None
    # A trial's child opens the store afresh: it must find the parent's file, or none.
    assert backend.identity is not None
    with pytest.raises(StoreLost, match=said):
        LocalBackend(store, create=False, expect=backend.identity)
    assert (store.read_bytes() if store.exists() else None) == there, "it wrote nothing either"
    if fault in ("deleted", "folder deleted"):
        assert not store.parent.joinpath(store.name).exists(), "no new store was created"


def test_a_child_refuses_another_store_copied_over_in_place(
    backend: LocalBackend, store: Path, tmp_path: Path
) -> None:
    """`cp other.db sweeper.db` keeps the inode; the random store id tells them apart."""
    _make_sweep(backend, tmp_path)
    assert backend.identity is not None
    other = LocalBackend(tmp_path / "other.db")
    assert other.identity is not None and other.identity.store_id != backend.identity.store_id
    mine = LocalBackend(store, create=False, expect=backend.identity)
    assert mine.identity == backend.identity
    mine.close()
    expected = StoreIdentity.parse(str(backend.identity))
    assert expected == backend.identity
    moved = StoreIdentity(expected.device, expected.inode, other.identity.store_id)
    with pytest.raises(StoreLost, match="was replaced by another store"):
        LocalBackend(store, create=False, expect=moved)


@pytest.mark.slow
def test_an_agent_stops_when_its_store_folder_is_deleted_and_recreates_nothing(
    backend: LocalBackend, store: Path, tmp_path: Path
) -> None:
    sweep_id = _make_sweep(backend, tmp_path, base={"epochs": 40, "epoch_seconds": 0.2})
    agent = start_agent(sweep_id, store)
    wait_for(lambda: backend.counts(sweep_id).get("running", 0) == 1, what="a trial to run")
    _delete_folder(store)
    out, _ = agent.communicate(timeout=120)
    assert agent.returncode == 2, out
    assert out.strip().splitlines()[-1] == (
        f"error: {store}: the store was deleted while in use; stopping without writing elsewhere"
    ), out
    assert "Traceback" not in out
    assert not store.parent.exists(), "neither the store nor a run folder was made again"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["deleted", "replaced by a copy"])
def test_launch_exits_2_when_its_store_goes_and_writes_into_no_other(
    store: Path, tmp_path: Path, fault: str
) -> None:
    spec = write_spec(tmp_path, probe_spec(base={"epochs": 40, "epoch_seconds": 0.2}))
    launched = _launch(spec, store)
    wait_for(lambda: _running(store) == 1, timeout=120, what="a trial to run")
    damage, said = FAULTS[fault]
    damage(store)
    there = store.read_bytes() if store.exists() else None
    out, err = launched.communicate(timeout=120)
    assert launched.returncode == 2, out + err
    line = f"error: {store}: the store {said} while in use; stopping without writing elsewhere"
    assert err.strip() == line, err
    assert (store.read_bytes() if store.exists() else None) == there, "nothing was written"


# -- a full disk -------------------------------------------------------------------------------


@contextmanager
def small_disk(folder: Path) -> Iterator[Path]:
    """A real 2 MiB filesystem at `folder` (tmpfs; these tests run as root)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _fill(disk: Path) -> Path:
    """Write a ballast file until the disk refuses another byte."""
    ballast = disk / "ballast"
    with ballast.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError:
            pass
    return ballast


def _finish_after_space_is_freed(store: Path, sweep_id: str, victim: str) -> None:
    agent = start_agent(sweep_id, store, "--heartbeat-timeout", "2")
    out, _ = agent.communicate(timeout=180)
    assert agent.returncode == 0, out
    backend = LocalBackend(store, create=False)
    try:
        assert backend.sqlite.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = backend.runs(sweep_id)
        assert set(runs["state"]) == {"finished"}, runs[["state", "error"]]
        assert backend.run(victim)["attempt"] == 2, "the trial the disk stopped ran again"
        steps = sorted(backend.history([victim])["_step"])
        assert steps == list(range(4)), "each epoch once"
    finally:
        backend.close()


@pytest.mark.slow
def test_a_full_store_disk_requeues_the_trial_and_stops_the_agent(
    store: Path, tmp_path: Path
) -> None:
    with small_disk(store.parent) as disk:
        backend = LocalBackend(store)
        try:
            sweep_id = _make_sweep(
                backend, tmp_path, search={"x": [0.0]}, base={"epochs": 4, "epoch_seconds": 1.0}
            )
            agent = start_agent(sweep_id, store, "--heartbeat-timeout", "2")
            wait_for(
                lambda: len(backend.history(list(backend.runs(sweep_id)["run_id"]))) >= 1,
                what="a first epoch",
            )
            (victim,) = backend.runs(sweep_id)["run_id"]
            ballast = _fill(disk)
            out, _ = agent.communicate(timeout=120)
            assert agent.returncode == 2, out
            said = out.strip().splitlines()[-1]
            assert said.startswith("error: no space left on device ("), out
            assert said.removeprefix("error: no space left on device (").startswith(str(disk))
            assert "damaged" not in out and "Traceback" not in out, out
            run = backend.run(victim)
            assert run["state"] in ("running", "preempted"), "requeued, not failed"
            ballast.unlink()
            _finish_after_space_is_freed(store, sweep_id, victim)
        finally:
            backend.close()


@pytest.mark.slow
def test_a_full_run_folder_disk_requeues_the_trial_and_stops_the_agent(
    backend: LocalBackend, store: Path, tmp_path: Path
) -> None:
    with small_disk(store.parent / "runs") as disk:
        sweep_id = _make_sweep(
            backend, tmp_path, search={"x": [0.0]}, base={"epochs": 4, "epoch_seconds": 1.0}
        )
        agent = start_agent(sweep_id, store)
        wait_for(
            lambda: len(backend.history(list(backend.runs(sweep_id)["run_id"]))) >= 1,
            what="a first epoch",
        )
        (victim,) = backend.runs(sweep_id)["run_id"]
        ballast = _fill(disk)
        out, _ = agent.communicate(timeout=120)
        assert agent.returncode == 2, out
        line = f"no space left on device ({disk / victim})"
        assert out.strip().splitlines()[-1] == f"error: {line}", out
        run = backend.run(victim)
        assert (run["state"], run["error"]) == ("preempted", f"requeued: {line}")
        ballast.unlink()
        _finish_after_space_is_freed(store, sweep_id, victim)


# -- agents and their slots --------------------------------------------------------------------


def test_slot_leases_keep_one_holder_per_slot_and_expire_unrenewed(
    backend: LocalBackend, tmp_path: Path
) -> None:
    lease = backend.lease_slot
    assert lease("s", "h", [], holder="a", pid=1, timeout=60) == (["cpu-0"], set())
    assert lease("s", "h", [], holder="b", pid=2, timeout=60) == (["cpu-1"], set()), "no pool"
    backend.set_cpu_pool("s", "h", 2)  # launch --agents 2
    assert lease("s", "h", [], holder="c", pid=3, timeout=60) == ([], {"a", "b"})
    assert lease("s", "other-host", [], holder="c", pid=3, timeout=60)[0] == ["cpu-0"]
    assert lease("t", "h", [], holder="d", pid=4, timeout=60, cpu_slots=1)[0] == ["cpu-0"]
    assert lease("t", "h", [], holder="e", pid=5, timeout=60, cpu_slots=1) == ([], {"d"})
    assert lease("s", "h", ["0", "1"], holder="g", pid=6, timeout=60)[0] == ["0", "1"]
    assert lease("s", "h", ["1"], holder="f", pid=7, timeout=60) == ([], {"g"})
    assert backend.live_leases("s", "h") == {"cpu-0": "a", "cpu-1": "b", "0": "g", "1": "g"}
    backend.release_leases("b")
    assert lease("s", "h", [], holder="c", pid=3, timeout=60)[0] == ["cpu-1"]
    assert backend.renew_leases("a", 0.1) == {"cpu-0"}
    time.sleep(0.2)  # a's heartbeat lapses: its slot goes to the next that asks
    assert lease("s", "h", [], holder="e", pid=5, timeout=60)[0] == ["cpu-0"]
    assert backend.renew_leases("a", 60) == set(), "a lapsed holder learns it lost the slot"


@pytest.mark.slow
def test_agents_die_with_a_killed_launch_and_the_next_launch_keeps_to_the_slots(
    store: Path, tmp_path: Path
) -> None:
    xs = [float(x) for x in range(4)]
    # 10 s trials: the first agent starts seconds ahead of the second (it is started
    # while the sweep is made), so a short trial could finish between seeing both run and
    # the kill, and the test would count a finished trial where it means a preempted one.
    spec = write_spec(
        tmp_path, probe_spec(search={"x": xs}, base={"epochs": 20, "epoch_seconds": 0.5})
    )
    first = _launch(spec, store, "--agents", "2")
    wait_for(lambda: _running(store) == 2, timeout=120, what="two trials to run")
    backend = LocalBackend(store, create=False)
    (sweep,) = backend.sweeps()
    pids = {
        row["pid"]
        for row in backend.sqlite.db.execute("SELECT pid FROM leases WHERE scope = ?", (sweep.id,))
    }
    assert len(pids) == 2, "each agent holds its slot"
    first.kill()  # SIGKILL: launch cannot pass anything on
    first.communicate()
    wait_for(lambda: not any(map(_alive, pids)), timeout=30, what="the agents to die with launch")
    counts = backend.counts(sweep.id)
    assert "running" not in counts and counts.get("preempted", 0) == 2, counts
    with most_running(store) as seen:
        again = _launch(spec, store, "--agents", "2")
        out, err = again.communicate(timeout=300)
    assert again.returncode == 0, out + err
    assert seen[0] <= 2, f"{seen[0]} trials ran at once on 2 slots"
    runs = backend.runs(sweep.id)
    assert sorted(runs["config.x"]) == xs and set(runs["state"]) == {"finished"}
    backend.close()


@pytest.mark.slow
def test_a_second_launch_joins_the_first_and_never_exceeds_the_slots(
    store: Path, tmp_path: Path
) -> None:
    xs = [float(x) for x in range(4)]
    spec = write_spec(
        tmp_path, probe_spec(search={"x": xs}, base={"epochs": 4, "epoch_seconds": 0.5})
    )
    with most_running(store) as seen:
        first = _launch(spec, store, "--agents", "1")
        wait_for(lambda: _running(store) == 1, timeout=120, what="a trial to run")
        second = _launch(spec, store, "--agents", "1")
        out2, err2 = second.communicate(timeout=300)
        out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, out1 + err1 + out2 + err2
    assert "(resumed," in out2
    assert "joining: 1 slot(s) here (cpu-0) are held by 1 agent(s) of this study" in out2
    assert seen[0] == 1, f"{seen[0]} trials ran at once on 1 slot"
    backend = LocalBackend(store, create=False)
    runs = backend.runs(backend.sweeps()[0].id)
    assert sorted(runs["config.x"]) == xs and set(runs["state"]) == {"finished"}
    backend.close()


@pytest.mark.slow
def test_an_agent_by_hand_waits_for_the_slot_and_takes_it_when_its_holder_stops(
    backend: LocalBackend, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")  # the agents' lines as they say them
    sweep_id = _make_sweep(
        backend,
        tmp_path,
        search={"x": [0.0, 1.0]},
        base={"epochs": 30, "epoch_seconds": 0.5},
        agents={"max_parallel": 1},  # one CPU slot, and no launch to say otherwise
    )
    with most_running(store) as seen:
        # Started together (an agent takes seconds to import torch): one holds, one waits.
        # A 5 s lease: a loaded machine can stall an agent for a second or two.
        agents = [start_agent(sweep_id, store, "--heartbeat-timeout", "5") for _ in range(2)]
        said = [_lines(agent) for agent in agents]
        wait_for(
            lambda: any(
                "waiting for a CPU slot: held by" in line for lines in said for line in lines
            ),
            what="one agent to wait for the slot",
        )
        holder, waiter = agents if any("waiting" in line for line in said[1]) else agents[::-1]
        wait_for(lambda: backend.counts(sweep_id).get("running", 0) == 1, what="a trial to run")
        time.sleep(1.5)  # the waiter keeps asking, and runs nothing
        assert seen[0] == 1, f"{seen[0]} trials ran at once on 1 slot: {said}"
    (victim,) = backend.runs(sweep_id).query("state == 'running'")["run_id"]
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    waiter.wait(timeout=180)
    assert waiter.returncode == 0, said
    runs = {r: backend.run(r) for r in backend.runs(sweep_id)["run_id"]}
    assert all(run["state"] == "finished" for run in runs.values()), runs
    assert runs[victim]["attempt"] == 2, "the killed holder's trial was requeued and rerun"
