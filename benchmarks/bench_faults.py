"""Reliability figures at a size above the tests: load held, faults survived, bad inputs tried.

Every figure is counted from the SQLite store with plain sqlite3 (not through the code under
test) after real `sweeper` processes ran in a scratch folder:

1. load held: `sweeper launch --agents 4` on a grid of short no-op trials; finished,
   duplicated, missing and still-active grid points.
2. agents killed: agents on a grid of ~1 s trials; an agent holding a running trial is
   `kill -9`ed K times (a fresh agent replaces it each time); its trial must be requeued
   after the heartbeat lapses and finish exactly once.
3. preempted and resumed: SIGTERM to an agent mid-trial (the probe trainer checkpoints every
   epoch), then a new agent: the epoch the trial resumed from.
4. bad inputs: specs, options and stores a user gets wrong, through the real CLI, each in
   its own folder: exit code, output lines, wall time, and whether any file changed.

    uv run python benchmarks/bench_faults.py [--grid 200] [--kills 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = [ROOT / "benchmarks" / "plugins", ROOT / "tests" / "plugins"]
ENV = {
    **os.environ,
    "SWEEPER_PLUGINS": "noop_trainer,testing_trainers",
    "PYTHONPATH": os.pathsep.join(
        [*map(str, PLUGINS), *filter(None, [os.environ.get("PYTHONPATH")])]
    ),
    "WANDB_SILENT": "true",
    "NO_ALBUMENTATIONS_UPDATE": "1",
}
ENV.pop("SWEEPER_STORE", None)
ACTIVE = ("pending", "preempted", "running")


def sweeper(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweeper", *map(str, args)]


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def noop_grid(path: Path, points: int, sleep: float) -> tuple[Path, list[float]]:
    """A grid spec of `points` no-op trials, each sleeping `sleep` seconds."""
    grid = [float(i) for i in range(points)]
    spec = {
        "name": path.stem,
        "trainer": "noop",
        "metric": {"name": "loss", "goal": "minimize"},
        "base": {"sleep": sleep},
        "search": {"x": grid},
    }
    return write_yaml(path, spec), grid


def read_runs(store: Path) -> list[dict[str, Any]]:
    """Every run of the store, read independently of sweeper's own backend."""
    db = sqlite3.connect(store, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT id, params, state, attempt, agent, summary FROM runs").fetchall()
        return [
            {
                **dict(row),
                "params": json.loads(row["params"]),
                "summary": json.loads(row["summary"]),
            }
            for row in rows
        ]
    finally:
        db.close()


def history_steps(store: Path, run_id: str) -> list[int]:
    db = sqlite3.connect(store, timeout=30)
    try:
        rows = db.execute("SELECT step FROM history WHERE run_id = ?", (run_id,)).fetchall()
        return sorted(step for (step,) in rows)
    finally:
        db.close()


def grid_audit(store: Path, key: str, grid: list[float]) -> dict[str, int]:
    """Finished, duplicated, missing and still-active grid points of the store's runs."""
    runs = read_runs(store)
    per_point = Counter(r["params"][key]["value"] for r in runs)
    finished = Counter(r["params"][key]["value"] for r in runs if r["state"] == "finished")
    return {
        "runs": len(runs),
        "finished": sum(finished.values()),
        "finished once": sum(1 for x in grid if finished[x] == 1),
        "duplicated": sum(n - 1 for n in per_point.values() if n > 1),
        "missing": sum(1 for x in grid if x not in per_point),
        "not terminal": sum(1 for r in runs if r["state"] in ACTIVE),
        "failed/crashed": sum(1 for r in runs if r["state"] in ("failed", "crashed")),
        "attempt > 1": sum(1 for r in runs if r["attempt"] > 1),
        "agents that ran the final attempts": len(
            {r["agent"].rsplit("/", 1)[0] for r in runs if r["agent"]}
        ),
    }


def create_sweep(store: Path, spec: Path) -> str:
    """A sweep made the way `launch` makes one, for agents this script starts itself."""
    for folder in PLUGINS:
        sys.path.insert(0, str(folder))
    os.environ["SWEEPER_PLUGINS"] = ENV["SWEEPER_PLUGINS"]
    from sweeper.agent.launch import create_stage
    from sweeper.backends.local import LocalBackend
    from sweeper.spec.load import load_spec

    backend = LocalBackend(store)
    try:
        return create_stage(backend, load_spec(spec))
    finally:
        backend.close()


def start_agent(sweep_id: str, store: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            sweeper("agent", sweep_id, "--store", store, "--wandb", "disabled", *args),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ENV,
        )


def agent_pid(agent: str) -> int:
    """The agent process id inside a run's `agent` column: host-PID-tag/slot."""
    return int(agent.rsplit("/", 1)[0].rsplit("-", 2)[1])


# 1. load held --------------------------------------------------------------------------------


def load_held(scratch: Path, points: int, agents: int, sleep: float) -> dict[str, Any]:
    spec, grid = noop_grid(scratch / "load.yaml", points, sleep)
    store = scratch / "load" / "sweeper.db"
    start = time.perf_counter()
    done = subprocess.run(
        sweeper("launch", spec, "--agents", agents, "--store", store, "--wandb", "disabled"),
        env=ENV,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"load: launch exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return {"seconds": seconds, **grid_audit(store, "x", grid)}


# 2. agents killed ----------------------------------------------------------------------------


def agents_killed(
    scratch: Path, points: int, agents: int, kills: int, trial_s: float, rng: random.Random
) -> dict[str, Any]:
    folder = scratch / "kills"
    folder.mkdir()
    spec, grid = noop_grid(folder / "kills.yaml", points, trial_s)
    store = folder / "sweeper.db"
    sweep_id = create_sweep(store, spec)
    flags = ("--heartbeat-timeout", "3", "--threads", "1")
    log = folder / "agents.log"
    alive = {p.pid: p for p in (start_agent(sweep_id, store, log, *flags) for _ in range(agents))}
    victims: list[str] = []
    start = time.perf_counter()
    deadline = time.monotonic() + 600
    while len(victims) < kills and time.monotonic() < deadline:
        time.sleep(rng.uniform(1.0, 3.0))
        holding = [
            (agent_pid(r["agent"]), r["id"])
            for r in read_runs(store)
            if r["state"] == "running" and r["agent"] and agent_pid(r["agent"]) in alive
        ]
        if not holding:
            if all(p.poll() is not None for p in alive.values()):
                break  # the sweep ended before every kill was made
            continue
        pid, run_id = rng.choice(holding)
        os.kill(pid, signal.SIGKILL)
        alive.pop(pid).wait()
        victims.append(run_id)
        fresh = start_agent(sweep_id, store, log, *flags)
        alive[fresh.pid] = fresh
    codes = [p.wait(timeout=600) for p in alive.values()]
    seconds = time.perf_counter() - start
    runs = {r["id"]: r for r in read_runs(store)}
    audit = grid_audit(store, "x", grid)
    return {
        "seconds": seconds,
        "kills (each while its agent held a trial)": len(victims),
        "distinct trials killed": len(set(victims)),
        "of those, finished on a later attempt": sum(
            1 for v in set(victims) if runs[v]["state"] == "finished" and runs[v]["attempt"] > 1
        ),
        "highest attempt": max(r["attempt"] for r in runs.values()),
        "agent exit codes": sorted(Counter(codes).items()),
        **audit,
    }


# 3. preempted and resumed --------------------------------------------------------------------


def preempted(scratch: Path, epochs: int, epoch_s: float, after: int) -> dict[str, Any]:
    folder = scratch / "preempt"
    folder.mkdir()
    spec = write_yaml(
        folder / "probe.yaml",
        {
            "name": "preempt",
            "trainer": "probe",
            "metric": {"name": "loss", "goal": "minimize"},
            "base": {"epochs": epochs, "epoch_seconds": epoch_s},
            "search": {"x": [3.0]},
        },
    )
    store = folder / "sweeper.db"
    sweep_id = create_sweep(store, spec)
    log = folder / "agents.log"
    agent = start_agent(sweep_id, store, log, "--threads", "1")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = read_runs(store)
        if runs and len(history_steps(store, runs[0]["id"])) >= after:
            break
        time.sleep(0.1)
    agent.send_signal(signal.SIGTERM)
    first_exit = agent.wait(timeout=120)
    (run,) = read_runs(store)
    logged = len(history_steps(store, run["id"]))
    state_after_term = run["state"]
    again = start_agent(sweep_id, store, log, "--threads", "1")
    second_exit = again.wait(timeout=300)
    (run,) = read_runs(store)
    steps = history_steps(store, run["id"])
    return {
        "agent exit on SIGTERM": first_exit,
        "state after SIGTERM": state_after_term,
        "epochs logged before SIGTERM": logged,
        "resumed from epoch": run["summary"].get("resumed_from"),
        "epochs run after resume": run["summary"].get("epochs_run"),
        "final state, attempt": (run["state"], run["attempt"]),
        "history steps each once": steps == list(range(epochs)),
        "second agent exit": second_exit,
    }


# 4. bad inputs -------------------------------------------------------------------------------


@dataclass
class Tried:
    name: str
    code: int | str
    lines: int
    seconds: float
    changed: list[str]
    traceback: bool
    first_line: str
    longest: int


@dataclass
class Case:
    name: str
    args: list[str]
    files: dict[str, bytes | str] = field(default_factory=dict)
    """Files the case folder holds before the command runs (name -> content)."""


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)) + ("/" if p.is_dir() else ""): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        )
        for p in folder.rglob("*")
    }


def try_case(case: Case, folder: Path, store: Path | None = None) -> Tried:
    folder.mkdir()
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if store is not None:
        (folder / "good.db").write_bytes(store.read_bytes())
    before = snapshot(folder)
    args = [a.format(folder=folder) for a in case.args]
    start = time.perf_counter()
    process = subprocess.Popen(
        sweeper(*args),
        cwd=folder,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        raw, _ = process.communicate(timeout=120)
        code: int | str = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raw, _ = process.communicate()
        code = "timeout"
    seconds = time.perf_counter() - start
    after = snapshot(folder)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    out = raw.decode("utf-8", "replace").strip()
    lines = out.splitlines()
    return Tried(
        case.name,
        code,
        len(lines),
        seconds,
        changed,
        "Traceback" in out,
        lines[0][:150] if lines else "",
        max((len(line) for line in lines), default=0),
    )


def xor_spec(**changes: Any) -> str:
    spec: dict[str, Any] = {
        "name": "bad",
        "trainer": "xor",
        "metric": {"name": "val_acc", "goal": "maximize"},
        "base": {"epochs": 2},
        "search": {"model.width": [1, 2]},
    }
    spec.update(changes)
    return yaml.safe_dump(spec, sort_keys=False)


def random_spec(dist: dict[str, Any]) -> str:
    return xor_spec(method="random", run_cap=3, search={"optim.lr": dist})


def huge_list_spec(n: int) -> str:
    """A spec whose one search list holds n seeds, written directly (PyYAML's dumper takes
    ~20 s for a million items)."""
    seeds = ", ".join(map(str, range(n)))
    return xor_spec(search={}).replace("search: {}\n", f"search:\n  seed: [{seeds}]\n")


BILLION_LAUGHS = "\n".join(
    [
        "name: bomb",
        "trainer: xor",
        "metric: {name: val_acc}",
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "search: {model.width: *i}",
    ]
)


def bad_cases() -> list[Case]:
    spec = "{folder}/spec.yaml"
    store = ["--store", "{folder}/sweeper.db"]
    ok = {"spec.yaml": xor_spec()}

    def launch(name: str, content: str | bytes, *extra: str) -> Case:
        return Case(
            name, ["launch", spec, *store, "--wandb", "disabled", *extra], {"spec.yaml": content}
        )

    return [
        launch("spec: empty value list", xor_spec(search={"model.width": []})),
        launch(
            "spec: non-UTF-8 bytes",
            b"name: bad\ntrainer: xor\nmetric: {name: val_acc}\n# \xff\xfe\n",
        ),
        launch("spec: binary file", bytes(range(256)) * 64),
        launch(
            "spec: int_uniform 0..1e12 grid",
            xor_spec(search={"seed": {"distribution": "int_uniform", "min": 0, "max": 10**12}}),
        ),
        launch(
            "spec: q_uniform q=1e-9 grid",
            xor_spec(
                search={
                    "data.noise": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 1e-9}
                }
            ),
        ),
        launch("spec: 1.2 M-value list", huge_list_spec(1_200_000)),
        launch("spec: YAML alias bomb (billion laughs)", BILLION_LAUGHS),
        launch(
            "spec: uniform min > max",
            random_spec({"distribution": "uniform", "min": 1.0, "max": 0.1}),
        ),
        launch(
            "spec: log_uniform_values min 0",
            random_spec({"distribution": "log_uniform_values", "min": 0.0, "max": 0.1}),
        ),
        launch(
            "spec: probabilities sum to 0.6",
            random_spec({"values": [0.1, 0.01], "probabilities": [0.3, 0.3]}),
        ),
        launch(
            "spec: normal sigma -1", random_spec({"distribution": "normal", "mu": 0.1, "sigma": -1})
        ),
        launch("spec: duplicate key (method twice)", xor_spec() + "method: grid\nmethod: random\n"),
        launch("spec: metric the trainer never logs", xor_spec(metric={"name": "val_accuracy"})),
        launch("spec: unknown search path", xor_spec(search={"model.nope": [1, 2]})),
        launch("spec: unknown trainer", xor_spec(trainer="nope")),
        launch("spec: value out of the config's bounds", xor_spec(search={"epochs": [0, 1]})),
        launch(
            "spec: gpus_per_trial 2, --gpus 0",
            xor_spec(agents={"gpus_per_trial": 2}),
            "--gpus",
            "0",
        ),
        Case("spec: file missing", ["launch", "{folder}/nope.yaml", *store]),
        Case("spec: a folder", ["launch", "{folder}", *store]),
        launch("--heartbeat-timeout 0", xor_spec(), "--heartbeat-timeout", "0"),
        launch("--agents -1", xor_spec(), "--agents", "-1"),
        launch("--gpus abc", xor_spec(), "--gpus", "abc"),
        launch("--trial-timeout -1", xor_spec(), "--trial-timeout", "-1"),
        launch("--set optim.lr=abc", xor_spec(), "--set", "optim.lr=abc"),
        launch("--wandb loud", xor_spec(), "--wandb", "loud"),
        Case("agent --threads -1", ["agent", "s", *store, "--threads", "-1"]),
        Case("agent --count -3", ["agent", "s", *store, "--count", "-3"]),
        Case("agent --heartbeat-timeout -5", ["agent", "s", *store, "--heartbeat-timeout", "-5"]),
        Case("agent --gpus abc", ["agent", "s", *store, "--gpus", "abc"]),
        Case("agent: no store there", ["agent", "s", *store]),
        Case("store: a folder (launch)", ["launch", spec, "--store", "{folder}"], ok),
        Case("store: a folder (status)", ["status", "s", "--store", "{folder}"]),
        Case(
            "store: corrupt file (launch)",
            ["launch", spec, "--store", "{folder}/bad.db"],
            {**ok, "bad.db": b"not sqlite at all" * 100},
        ),
        Case(
            "store: corrupt file (status)",
            ["status", "s", "--store", "{folder}/bad.db"],
            {"bad.db": b"not sqlite at all" * 100},
        ),
    ]


def store_cases(sweep_id: str) -> list[Case]:
    """Cases that need a real store (a copy of one is put in the folder as good.db)."""
    good = ["--store", "{folder}/good.db"]
    return [
        Case("store: unknown sweep id", ["status", "nosuch", *good]),
        Case(
            "runs --csv into a missing folder",
            ["runs", sweep_id, *good, "--csv", "{folder}/no/such/runs.csv"],
        ),
    ]


def truncated_cases(sweep_id: str) -> list[Case]:
    return [
        Case("store: truncated (runs)", ["runs", sweep_id, "--store", "{folder}/half.db"]),
        Case("store: truncated (status)", ["status", sweep_id, "--store", "{folder}/half.db"]),
    ]


def small_store(folder: Path) -> tuple[Path, str]:
    """A finished 3-run sweep, WAL folded into the file, to copy and damage."""
    spec = write_yaml(
        folder / "small.yaml",
        {
            "name": "small",
            "trainer": "noop",
            "metric": {"name": "loss", "goal": "minimize"},
            "search": {"x": [0.0, 1.0, 2.0]},
        },
    )
    store = folder / "small.db"
    subprocess.run(
        sweeper("launch", spec, "--store", store, "--wandb", "disabled"),
        env=ENV,
        check=True,
        capture_output=True,
    )
    db = sqlite3.connect(store)
    (sweep_id,) = db.execute("SELECT id FROM sweeps").fetchone()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return store, sweep_id


def bad_inputs(scratch: Path) -> list[Tried]:
    folder = scratch / "bad"
    folder.mkdir()
    store, sweep_id = small_store(folder)
    tried = [try_case(case, folder / f"case{i}") for i, case in enumerate(bad_cases())]
    tried += [
        try_case(case, folder / f"store{i}", store) for i, case in enumerate(store_cases(sweep_id))
    ]
    half = store.read_bytes()[: store.stat().st_size // 2]
    for i, case in enumerate(truncated_cases(sweep_id)):
        case.files["half.db"] = half
        tried.append(try_case(case, folder / f"half{i}"))
    return tried


def unbounded_random(scratch: Path) -> str:
    """Random search with no run_cap is not an error: launch must say it runs until stopped.
    Read launch's first lines, then stop it (SIGTERM) and return what it said."""
    folder = scratch / "unbounded"
    folder.mkdir()
    spec = folder / "spec.yaml"
    spec.write_text(xor_spec(method="random", search={"optim.lr": {"min": 0.01, "max": 0.1}}))
    process = subprocess.Popen(
        sweeper("launch", spec, "--store", folder / "s.db", "--wandb", "disabled"),
        env={**ENV, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    said = ""
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "until stopped" in line:
            said = line.strip()
            break
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    return said or "(launch said nothing about running until stopped)"


# the table -----------------------------------------------------------------------------------


def show(title: str, figures: dict[str, Any]) -> None:
    print(f"\n{title}")
    for name, value in figures.items():
        text = f"{value:.1f}" if isinstance(value, float) else str(value)
        print(f"  {name:44} {text}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", type=int, default=200, help="grid points of the load test")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=0.2, help="seconds per load-test trial")
    parser.add_argument("--kill-trials", type=int, default=50)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only",
        choices=["load", "kills", "preempt", "bad"],
        action="append",
        help="run just these",
    )
    args = parser.parse_args()
    only = set(args.only or ["load", "kills", "preempt", "bad"])
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        scratch = Path(tmp)
        if "load" in only:
            figures = load_held(scratch, args.grid, args.agents, args.sleep)
            show(
                f"1. load held: {args.agents} agents, {args.grid}-point grid, "
                f"{args.sleep} s trials",
                figures,
            )
        if "kills" in only:
            figures = agents_killed(scratch, args.kill_trials, 3, args.kills, 1.0, rng)
            show(
                f"2. agents killed: 3 agents, {args.kill_trials} trials of 1 s, "
                f"kill -9 x{args.kills}",
                figures,
            )
        if "preempt" in only:
            show(
                "3. preempted and resumed: SIGTERM once 3 of 8 epochs are logged",
                preempted(scratch, 8, 0.5, 3),
            )
        if "bad" in only:
            tried = bad_inputs(scratch)
            print("\n4. bad inputs through the real CLI (each in its own folder)")
            print(f"  {'input':40} {'exit':>5} {'lines':>5} {'s':>5}  wrote  first line")
            for t in tried:
                wrote = ",".join(t.changed) or "-"
                flag = " TRACEBACK" if t.traceback else ""
                cells = f"{t.code!s:>5} {t.lines:>5} {t.seconds:5.1f}  {wrote:5}"
                print(f"  {t.name:40} {cells}  {t.first_line}{flag}")
            clean = [t for t in tried if t.code == 2 and t.lines == 1 and not t.changed]
            print(
                f"  tried {len(tried)}; exit 2 with one line and nothing written: {len(clean)}; "
                f"tracebacks: {sum(t.traceback for t in tried)}; "
                f"wrote files: {sum(bool(t.changed) for t in tried)}; "
                f"max time {max(t.seconds for t in tried):.1f} s; "
                f"longest line {max(t.longest for t in tried)} chars"
            )
            print(f"  random search, no run_cap (not an error): {unbounded_random(scratch)}")


if __name__ == "__main__":
    main()
