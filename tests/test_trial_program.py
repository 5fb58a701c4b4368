"""A trial's processes, output and secrets: what a program leaves behind never outlives,
outgrows or leaks out of its trial. Real agents, real programs, a real SQLite store."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
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


@pytest.mark.slow  # a program and its children run as processes, one until its timeout
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


@pytest.mark.slow  # a trial forks a worker and a setsid child
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


LOUD = """
import os, sys
out = sys.stdout.buffer
chunk = b"0123456789abcdef" * 4095 + b"\\n"  # 64 KiB lines
for _ in range(1000):  # 64 MB
    out.write(chunk)
out.write(b"x" * (20 << 20))  # one 20 MB line, no newline
out.write(b"\\n\\x1b[31mboom\\x1b[0m \\x1b]0;pwned\\x07at the end\\r\\n")
out.flush()
sys.exit(1)
"""


def test_a_program_printing_84_mb_keeps_a_capped_log_and_a_short_plain_reason(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """The log keeps its head and tail within the cap; the stored reason quotes the last lines,
    each cut, with no terminal escapes, within REASON_LIMIT."""
    from sweeper.agent.output import HEAD, TAIL
    from sweeper.text import REASON_LIMIT

    sweep_id = _create(backend, _plain(tmp_path, LOUD, parameters={"x": {"value": 1}}))
    Agent(AgentOptions(sweep_id, store=backend.path, poll=0.05)).run()

    (run,) = backend.runs(sweep_id).to_dict("records")
    log = backend.run_dir(run["run_id"]) / "output.log"
    assert log.stat().st_size <= HEAD + 2 * TAIL + 1000
    data = log.read_bytes()
    assert data.count(b"0123456789abcdef" * 10) > 10  # the head is there
    assert b"bytes cut ...]" in data and data.endswith(b"at the end\r\n")  # so is the tail
    error = run["error"]
    assert error.startswith("the program failed (exit code 1) with no wandb run recorded")
    assert len(error) <= REASON_LIMIT and "characters cut ...]" in error  # the 20 MB line
    assert error.endswith("boom at the end") and "\x1b" not in error and "pwned" not in error


@pytest.mark.parametrize(("fill", "most"), [(b"x", 500), (b"\0", 0)])
def test_the_tail_of_a_huge_log_is_read_in_bounded_memory(
    tmp_path: Path, fill: bytes, most: int
) -> None:
    """output_tail on a 100 MB file of one line (or of control characters only): the peak
    memory of the reader grows by far less than the file (it read 1.55 GB for 200 MB before)."""
    big = tmp_path / "output.log"
    big.write_bytes(fill * (100 << 20))
    probe = (
        "import resource, sys; from pathlib import Path\n"
        "from sweeper.agent.output import output_tail\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "tail = output_tail(Path(sys.argv[1]))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, len(tail))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(big)], capture_output=True, text=True, check=True
    )
    grown_kib, length = map(int, done.stdout.split())
    assert grown_kib < 10_000 and length == most, done.stdout  # the line cut to LINE_LIMIT


SECRET_PROGRAM = """
import os, sys, wandb
assert sys.argv[1] == "--db=" + os.environ["SWEEPER_TEST_PASSWORD"], sys.argv  # it gets the value
run = wandb.init()
wandb.log({"acc": 1.0})
run.finish()
"""


@pytest.mark.slow  # a program run as a child process, importing wandb
def test_an_envvar_secret_in_the_command_is_never_stored(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--db=${envvar:PASSWORD}`: the program gets the value; the store file, its WAL, the run's
    meta and every file sweeper writes keep the macro as written. Siblings: the variable as
    the whole command item that fails to start, in the recorded reason."""
    secret = "s3cr3t-Pa55-" + tmp_path.name
    monkeypatch.setenv("SWEEPER_TEST_PASSWORD", secret)
    monkeypatch.setenv("SWEEPER_TEST_BINARY", f"/nowhere/{secret}")
    command = ["${env}", "${interpreter}", "${program}", "--db=${envvar:SWEEPER_TEST_PASSWORD}"]
    path = _plain(
        tmp_path,
        SECRET_PROGRAM,
        command=command,
        metric={"name": "acc", "goal": "maximize"},
        parameters={"x": {"value": 1}},
    )
    ran = _create(backend, path)
    Agent(AgentOptions(ran, store=backend.path, poll=0.05)).run()
    (tmp_path / "sweep.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "b",
                "method": "grid",
                "command": ["${envvar:SWEEPER_TEST_BINARY}"],
                "parameters": {"x": {"value": 1}},
            }
        )
    )
    unstartable = _create(backend, tmp_path / "sweep.yaml")
    Agent(AgentOptions(unstartable, store=backend.path, poll=0.05)).run()

    (run,) = backend.runs(ran).to_dict("records")
    assert run["state"] == "finished", run["error"]
    meta = backend.run(run["run_id"])["meta"]
    assert meta["command"][-1] == "--db=${envvar:SWEEPER_TEST_PASSWORD}"
    (failed,) = backend.runs(unstartable).to_dict("records")
    assert failed["error"].startswith("cannot start ${envvar:SWEEPER_TEST_BINARY} in ")
    written = [  # the store, its WAL, the runs' folders; while the store is open
        p
        for p in backend.path.parent.rglob("*")
        if p.is_file() and "wandb" not in p.relative_to(backend.path.parent).parts
    ]
    assert backend.path in written
    for file in written:
        assert secret.encode() not in file.read_bytes(), file


CASEBOOK = Path(__file__).parent / "casebook" / "08-program-path-from-repo-root"


def _launch(sweep_file: str, cwd: Path, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            sweep_file,
            "--agents",
            "1",
            "--wandb",
            "disabled",
            "--store",
            str(store),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # a whole `sweeper launch` in a fresh interpreter: ~20 s
def test_a_program_named_from_the_repository_root_runs_there(tmp_path: Path) -> None:
    """Casebook 08: launched from the folder holding tools/ and data/, as `wandb agent` is,
    `program: tools/sweep/train_sweep.py` and its `data/tiny.yaml` are found; an agent
    started later from elsewhere runs in the folder recorded with the sweep."""
    repo = tmp_path / "repo"
    shutil.copytree(CASEBOOK, repo)
    store = tmp_path / "store" / "sweeper.db"
    launched = _launch("tools/sweep/sweep.yaml", repo, store)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert "not in" not in launched.stderr  # no fallback note: it ran where it was launched
    db = LocalBackend(store, create=False)
    [sweep] = db.sweeps()
    assert sweep.spec["folder"] == str(repo)
    runs = db.runs(sweep.id)
    assert list(runs["state"]) == ["finished", "finished"], list(runs["error"])
    for run_id in runs["run_id"]:
        assert "DATA name: tiny" in (db.run_dir(run_id) / "output.log").read_text()


@pytest.mark.slow  # a whole `sweeper launch` in a fresh interpreter: ~20 s
def test_a_program_found_only_beside_the_sweep_file_runs_there_and_says_so(
    tmp_path: Path,
) -> None:
    """The fallback: `program: train_sweep.py` is not in the launcher's folder but beside the
    sweep file; one line on stderr says where the trials run, and they run there."""
    repo = tmp_path / "repo"
    shutil.copytree(CASEBOOK, repo)
    sweep_file = repo / "tools" / "sweep" / "sweep.yaml"
    config = yaml.safe_load(sweep_file.read_text())
    config["program"] = "train_sweep.py"
    config["parameters"]["data"]["value"] = "../../data/tiny.yaml"
    sweep_file.write_text(yaml.safe_dump(config))
    launched = _launch(str(sweep_file), tmp_path, tmp_path / "store" / "sweeper.db")
    assert launched.returncode == 0, launched.stdout + launched.stderr
    notes = [line for line in launched.stderr.splitlines() if "trials run in" in line]
    assert notes == [
        f"{sweep_file}: program train_sweep.py is not in {tmp_path}; trials run in"
        f" {sweep_file.parent}, beside it"
    ]
    db = LocalBackend(tmp_path / "store" / "sweeper.db", create=False)
    [sweep] = db.sweeps()
    assert sweep.spec["folder"] == str(sweep_file.parent)
    assert list(db.runs(sweep.id)["state"]) == ["finished", "finished"]


ELSEWHERE = """
import os, sys, wandb
mode = sys.argv[1].split("=", 1)[1]
elsewhere = os.path.abspath("elsewhere-" + mode)
os.makedirs(elsewhere, exist_ok=True)
if mode == "env":
    os.environ["WANDB_DIR"] = elsewhere
run = wandb.init(dir=elsewhere if mode == "dir" else None, config={"lr": 9.0, "width": 4})
assert run.config.lr == 0.5 and run.config.width == 4 and run.config.depth == 2, dict(run.config)
run.config.update({"width": 8}, allow_val_change=True)
wandb.log({"acc": run.config.lr + run.config.width + run.config.depth})
run.finish()
"""


@pytest.mark.slow  # a program run as a child process, importing wandb
def test_a_program_that_puts_its_run_elsewhere_still_counts(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """`wandb.init(dir=...)`, or WANDB_DIR set by the program: the run file is found where the
    program put it. `config=` defaults under the sweep's own values, config-defaults.yaml and
    allow_val_change keep working as under `wandb agent`."""
    (tmp_path / "config-defaults.yaml").write_text("depth:\n  value: 2\n")
    path = _plain(
        tmp_path,
        ELSEWHERE,
        metric={"name": "acc", "goal": "maximize"},
        parameters={"mode": {"values": ["dir", "env"]}, "lr": {"value": 0.5}},
    )
    sweep_id = _create(backend, path)
    Agent(AgentOptions(sweep_id, store=backend.path, poll=0.05)).run()

    runs = backend.runs(sweep_id).to_dict("records")
    assert [(r["state"], r["error"]) for r in runs] == [("finished", None)] * 2
    assert [r["summary.acc"] for r in runs] == [10.5, 10.5]
    for mode in ("dir", "env"):
        assert list((tmp_path / f"elsewhere-{mode}" / "wandb").glob("offline-run-*"))


ONLINE = """
import os, sys, wandb
case = sys.argv[1].split("=", 1)[1]
if case != "no-key":  # a key, and a server that cannot be reached
    os.environ["WANDB_API_KEY"] = "k" * 40
    os.environ["WANDB_BASE_URL"] = "http://127.0.0.1:9"
try:
    run = wandb.init(mode="online", settings=wandb.Settings(init_timeout=2))
except wandb.errors.Error:
    if case == "caught":  # a program that carries on without wandb
        sys.exit(0)
    raise
wandb.log({"acc": 1.0})
"""


@pytest.mark.slow  # three programs each starting wandb, one waiting out its init_timeout: ~40 s
def test_a_program_that_forces_wandb_online_fails_saying_so(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wandb.init(mode="online") overrides the WANDB_MODE=offline a trial runs under: with no
    key wandb refuses at once, with one it waits for a server that is not there. Either way,
    and whether the program dies of it or carries on, the reason names the forced mode."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    path = _plain(
        tmp_path,
        ONLINE,
        metric={"name": "acc", "goal": "maximize"},
        parameters={"case": {"values": ["no-key", "unreachable", "caught"]}},
    )
    sweep_id = _create(backend, path)
    Agent(AgentOptions(sweep_id, store=backend.path, poll=0.05)).run()

    runs = backend.runs(sweep_id).to_dict("records")
    assert [r["state"] for r in runs] == ["failed"] * 3
    for run in runs:
        reason = run["error"]
        assert "\n" not in reason, reason
        assert "wandb.init(mode='online')" in reason, reason
        assert "trials run offline with no W&B server" in reason, reason
    assert "no API key" in runs[0]["error"]
