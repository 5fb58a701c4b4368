"""The PostgreSQL store against Optuna 5's RDB storage on the same PostgreSQL, side by side.

One throwaway PostgreSQL server (tests/postgres_server.py: Debian's binaries, initdb + pg_ctl,
a loopback port) serves both sides, each in its own database:

1. coordination efficiency: N agents (`sweeper launch --agents N`) on a grid of no-op trials
   that each sleep 1 s, beside N Optuna worker processes running the same 1-second objective
   on a GridSampler of the same points. Efficiency = trial-seconds done (finished trials x 1 s)
   / (N x wall), over the trials' span (first start to last end, from each side's own rows)
   and over the whole command (start-up included).
2. per-trial overhead at scale: a claim's time (median, p99) once a sweep holds 1,000, 10,000
   and 100,000 finished runs, grid and random, on PostgreSQL and SQLite; the stores are filled
   through the store primitives (`Transaction.insert_run`), then ANALYZEd on PostgreSQL (as
   autovacuum would within a minute), and every timed claim is a no-op trial (claim, then
   finish). Beside it Optuna's per-trial time (ask, suggest, tell) on
   PostgreSQL at the same sizes, its tables filled with plain inserts: the first trial of a
   freshly loaded study (it reads every trial) and the later ones (its cache is warm).
3. agent footprint: the resident memory (VmRSS, peak VmHWM) of an agent running a plain W&B
   command sweep (a program that calls wandb.init, sleeps, logs), and whether torch is
   loaded in it (libtorch in /proc/PID/maps).

The load average is printed beside each part: on a shared machine it moves every figure.

    uv run --group bench python benchmarks/bench_postgres.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from postgres_server import PASSWORD, PostgresServer, started_server  # noqa: E402

from sweeper.backends.local import LocalBackend  # noqa: E402
from sweeper.backends.postgres import PostgresStore  # noqa: E402
from sweeper.backends.store import RunRecord  # noqa: E402
from sweeper.sweep import RunState  # noqa: E402

PLUGINS = ROOT / "benchmarks" / "plugins"
ENV = {
    **os.environ,
    "SWEEPER_PLUGINS": "noop_trainer",
    "PYTHONPATH": os.pathsep.join([str(PLUGINS), *filter(None, [os.environ.get("PYTHONPATH")])]),
    "PGPASSWORD": PASSWORD,  # the URLs handed to processes carry no password
    "WANDB_SILENT": "true",
    "NO_ALBUMENTATIONS_UPDATE": "1",
}
ENV.pop("SWEEPER_STORE", None)
os.environ["SWEEPER_PLUGINS"] = ENV["SWEEPER_PLUGINS"]  # this process makes the sweep too
sys.path.insert(0, str(PLUGINS))
SLEEP = 1.0
"""Seconds each coordination trial sleeps: its useful work."""
GRID = {"a": list(range(100)), "b": list(range(100)), "c": list(range(20))}
"""200,000 grid points: room for 100,000 stored runs and the claims after them."""


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min), {os.cpu_count()} cores"


def optuna_url(host: str, port: int, dbname: str) -> str:
    """SQLAlchemy's URL for psycopg 3 (`postgresql+psycopg://`)."""
    return f"postgresql+psycopg://sweeper:{PASSWORD}@{host}:{port}/{dbname}"


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: with fewer than 1/(1-q) values, p99 is the largest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


# 1. coordination efficiency ---------------------------------------------------------------


@dataclass
class Place:
    """Where the coordination's processes run and how each reaches the one PostgreSQL."""

    name: str
    new_database: Callable[[], str]
    local_url: Callable[[str], str]
    """This process's URL for a database (password included)."""
    store_url: Callable[[int, str], str]
    """Agent i's --store URL (no password: PGPASSWORD)."""
    optuna_url: Callable[[int, str], str]
    """Worker i's SQLAlchemy URL."""
    spawn: Callable[[int, list[str], Path, IO[bytes]], subprocess.Popen[bytes]]
    """Start process i: argv, working folder, output."""


def loopback(server: PostgresServer) -> Place:
    def spawn(i: int, argv: list[str], cwd: Path, output: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=ENV, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)

    return Place(
        "on loopback (one machine, no network namespaces)",
        server.fresh_database,
        server.url,
        lambda i, db: server.url(db, password=False),
        lambda i, db: optuna_url(server.host, server.port, db),
        spawn,
    )


def namespaced(cluster: Any) -> Place:
    """tests/netns_cluster.py's cluster: agent i on node i mod 3, over that node's veth link."""
    made = itertools.count()

    def new_database() -> str:
        name = f"bench{next(made)}"
        cluster.create_database(name)
        return name

    def node(i: int) -> Any:
        return cluster.nodes[i % len(cluster.nodes)]

    def spawn(i: int, argv: list[str], cwd: Path, output: IO[bytes]) -> subprocess.Popen[bytes]:
        return cluster.spawn(node(i), argv, cwd=cwd, env=ENV, output=output)  # type: ignore[no-any-return]

    return Place(
        f"spread over {len(cluster.nodes)} network-namespaced nodes, each over its veth link",
        new_database,
        cluster.local_url,
        lambda i, db: cluster.url(node(i), db),
        lambda i, db: optuna_url(node(i).server, 5432, db),
        spawn,
    )


def wait_all(processes: list[subprocess.Popen[bytes]], logs: list[Path], what: str) -> None:
    codes = [p.wait() for p in processes]
    if any(codes):
        tail = "".join(log.read_text()[-1500:] for log in logs)
        raise SystemExit(f"{what} exited {codes}:\n{tail}")


def sweeper_coordination(place: Place, folder: Path, agents: int, trials: int) -> dict[str, float]:
    """`agents` x `sweeper agent` on a grid of `trials` no-op trials sleeping SLEEP s."""
    import psycopg

    from sweeper.agent.launch import create_stage
    from sweeper.spec.load import load_spec

    dbname = place.new_database()
    spec = folder / "coordination.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "coordination",
                "trainer": "noop",
                "metric": {"name": "loss", "goal": "minimize"},
                "base": {"sleep": SLEEP},
                "search": {"x": [float(i) for i in range(trials)]},
            }
        )
    )
    backend = LocalBackend(place.local_url(dbname))
    sweep_id = create_stage(backend, load_spec(spec))
    backend.close()
    logs = [folder / f"agent-{i}.log" for i in range(agents)]
    cpu, start = children_cpu(), time.perf_counter()
    processes = []
    for i, log in enumerate(logs):
        argv = [sys.executable, "-m", "sweeper", "agent", sweep_id, "--gpus", ""]
        argv += ["--store", place.store_url(i, dbname), "--wandb", "disabled"]
        with log.open("wb") as output:
            processes.append(place.spawn(i, argv, folder, output))
    wait_all(processes, logs, "sweeper agents")
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    with psycopg.connect(place.local_url(dbname)) as db:
        rows = db.execute(
            "SELECT agent, started_at, finished_at FROM runs WHERE state = 'finished'"
        ).fetchall()
    # The agent column is `{host}-{pid}-{random}/{slot}`: the agent is what precedes the slot.
    return measured(
        [(str(agent).rsplit("/", 1)[0], start, end) for agent, start, end in rows], wall, cpu
    )


OPTUNA_WORKER = """
import os, sys, time
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
url, name, trials, sleep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
study = optuna.load_study(
    study_name=name,
    storage=url,
    sampler=optuna.samplers.GridSampler({"x": [float(i) for i in range(trials)]}),
)

def objective(trial):
    x = trial.suggest_float("x", 0, trials)
    trial.set_user_attr("worker", os.getpid())
    time.sleep(sleep)
    return x

# the grid ends the study when every point is taken; the cap stops workers racing past it
study.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(trials, states=None)])
"""


def optuna_coordination(place: Place, folder: Path, workers: int, trials: int) -> dict[str, float]:
    """`workers` processes, each `study.optimize` on a shared RDB study on PostgreSQL."""
    import optuna
    import psycopg

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dbname = place.new_database()
    local = place.local_url(dbname).replace("postgresql://", "postgresql+psycopg://", 1)
    optuna.create_study(study_name="coordination", storage=local)
    logs = [folder / f"optuna-{i}.log" for i in range(workers)]
    cpu, start = children_cpu(), time.perf_counter()
    processes = []
    for i, log in enumerate(logs):
        argv = [sys.executable, "-c", OPTUNA_WORKER, place.optuna_url(i, dbname)]
        argv += ["coordination", str(trials), str(SLEEP)]
        with log.open("wb") as output:
            processes.append(place.spawn(i, argv, folder, output))
    wait_all(processes, logs, "optuna workers")
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    with psycopg.connect(place.local_url(dbname)) as db:
        rows = db.execute(
            "SELECT a.value_json, extract(epoch FROM t.datetime_start),"
            " extract(epoch FROM t.datetime_complete) FROM trials t"
            " JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'worker'"
            " WHERE t.state = 'COMPLETE'"
        ).fetchall()
    return measured([(str(pid), float(start), float(end)) for pid, start, end in rows], wall, cpu)


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's waited-for descendants: the workers, and
    the trial processes each agent forks and reaps, start-up included (not the server's)."""
    times = os.times()
    return times.children_user + times.children_system


def measured(trials: list[tuple[str, float, float]], wall: float, cpu: float) -> dict[str, float]:
    """Figures of one side's finished trials, each (worker, start, end) on one clock.

    span: first start to last end. steady: from the moment every worker has started its first
    trial to the moment the first worker ended its last, the window in which all of them were
    at work (start-up, when N processes import their libraries on this machine's cores, and the
    tail, when workers run out of trials, fall outside it); in it, trials ended x SLEEP / (N x
    window). ramp: first trial start to the last worker's first start.
    """
    first = min(start for _, start, _ in trials)
    last = max(end for _, _, end in trials)
    workers: dict[str, list[tuple[float, float]]] = {}
    for worker, start, end in trials:
        workers.setdefault(worker, []).append((start, end))
    opened = max(min(start for start, _ in own) for own in workers.values())
    closed = min(max(end for _, end in own) for own in workers.values())
    ended = sum(1 for _, _, end in trials if opened < end <= closed)
    window = closed - opened
    return {
        "done": len(trials),
        "span": last - first,
        "wall": wall,
        "ramp": opened - first,
        "steady": ended * SLEEP / (len(workers) * window) if window > 0 else math.nan,
        "cpu": cpu / len(trials),
    }


def coordination(place: Place, folder: Path, agents: int, trials: int) -> None:
    print(f"1. coordination efficiency: {agents} agents, {trials} trials of {SLEEP:g} s, one")
    print(f"   PostgreSQL, processes {place.name}")
    print(f"   {load()}")
    ours = sweeper_coordination(place, folder, agents, trials)
    theirs = optuna_coordination(place, folder, agents, trials)
    head = f"{'done':>6}{'span s':>9}{'wall s':>9}{'ramp s':>9}{'eff. span':>11}{'eff. wall':>11}"
    print(f"   {'':30}{head}{'eff. steady':>13}{'CPU/trial':>11}")
    for name, got in (
        ("sweeper (agents, PostgreSQL)", ours),
        ("Optuna 5 (RDB, PostgreSQL)", theirs),
    ):
        seconds = got["done"] * SLEEP
        print(
            f"   {name:30}{got['done']:6.0f}{got['span']:9.1f}{got['wall']:9.1f}{got['ramp']:9.1f}"
            f"{seconds / (agents * got['span']):11.3f}{seconds / (agents * got['wall']):11.3f}"
            f"{got['steady']:13.3f}{got['cpu'] * 1e3:8.0f} ms"
        )
    print("   span: first trial start to last trial end; wall: processes started to all exited")
    print("   ramp: first trial start to the last worker's first trial start (start-up)")
    print("   steady: while every worker was at work (after the ramp, before the first ran out)")
    print("   CPU/trial: the workers' CPU time (start-up and trial processes included) per trial;")
    print(f"   this machine has {os.cpu_count()} cores for {agents} workers' share of it")
    print("   efficiency = trials done x 1 s / (agents x seconds); target >= 0.90, ours higher")
    print(f"   {load()}", flush=True)


# 2. per-trial overhead at scale -----------------------------------------------------------


def grid_params(i: int) -> dict[str, Any]:
    """The i-th point of GRID, in W&B's stored form."""
    a, rest = divmod(i, len(GRID["b"]) * len(GRID["c"]))
    b, c = divmod(rest, len(GRID["c"]))
    return {"a": {"value": a}, "b": {"value": b}, "c": {"value": c}}


def random_params(i: int) -> dict[str, Any]:
    return {"x": {"value": random.random()}}


def fill(backend: LocalBackend, sweep_id: str, upto: int, params: Callable[[int], Any]) -> None:
    """Insert finished runs until the sweep holds `upto`, through the store's primitives."""
    have = sum(backend.store.run_counts(sweep_id).values())
    for chunk in range(have, upto, 10_000):
        with backend.store.transaction() as tx:
            now = tx.now
            for i in range(chunk, min(upto, chunk + 10_000)):
                tx.insert_run(
                    RunRecord(
                        id=f"fill{i:07d}",
                        sweep_id=sweep_id,
                        seq=i + 1,
                        params=params(i),
                        state=RunState.FINISHED,
                        attempt=1,
                        summary={"loss": 0.0},
                        created_at=now,
                        started_at=now,
                    )
                )
    if isinstance(backend.store, PostgresStore):
        # A real store gets its planner statistics from autovacuum within a minute of a bulk
        # load; the claims timed next come seconds after this one. (A claim's reads no longer
        # depend on them, see postgres._CLAIM_READ; SQLite has no automatic ANALYZE, so its
        # store is timed as it is.)
        with backend.store.transaction() as tx:
            tx.db.execute("ANALYZE runs")


def sweeper_claims(
    store: str, method: str, sizes: list[int], claims: int
) -> list[tuple[float, list[float]]]:
    """Claim times (s) at each size: the first claim after the fill (a grid's numbers the runs
    just filled, once), then `claims` no-op trials (claim, finish)."""
    metric = {"name": "loss", "goal": "minimize"}
    if method == "grid":
        parameters: dict[str, Any] = {k: {"values": v} for k, v in GRID.items()}
        params = grid_params
    else:
        parameters, params = {"x": {"min": 0.0, "max": 1.0}}, random_params
    config = {"method": method, "metric": metric, "parameters": parameters}
    backend = LocalBackend(store)
    sweep_id = backend.create_sweep(config, trainer="noop", spec={}, spec_hash=f"bench-{method}")
    out = []
    try:
        for size in sizes:
            fill(backend, sweep_id, size, params)
            times = []
            for _ in range(claims + 1):
                start = time.perf_counter()
                claim = backend.claim(sweep_id, "bench")
                times.append(time.perf_counter() - start)
                assert claim is not None
                backend.finish(claim.run_id, claim.attempt, RunState.FINISHED, {"loss": 0.0})
            out.append((times[0], times[1:]))
    finally:
        backend.close()
    return out


def optuna_fill(url: str, study: Any, upto: int, space: dict[str, list[Any]] | None) -> None:
    """Insert COMPLETE trials with plain inserts until the study holds `upto` (a grid's carry
    the grid_id and search_space system attributes GridSampler reads)."""
    import sqlalchemy
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        distribution_to_json,
    )
    from optuna.storages._rdb import models

    engine = sqlalchemy.create_engine(url)
    have = len(study.get_trials(deepcopy=False))
    if space is None:
        names, distributions = ["x"], [distribution_to_json(FloatDistribution(0.0, 1.0))]
    else:
        names = list(space)
        distributions = [distribution_to_json(CategoricalDistribution(space[k])) for k in names]
        points = itertools.product(*space.values())
        grid = list(itertools.islice(points, upto))
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as db:
        (top,) = db.execute(sqlalchemy.text("SELECT coalesce(max(trial_id), 0) FROM trials")).one()
        trials, params, values, attrs = [], [], [], []
        for number in range(have, upto):
            trial_id = top + 1 + number - have
            trials.append(
                {
                    "trial_id": trial_id,
                    "number": number,
                    "study_id": study._study_id,
                    "state": models.TrialState.COMPLETE,
                    "datetime_start": now,
                    "datetime_complete": now,
                }
            )
            point = [random.random()] if space is None else grid[number]
            for name, value, distribution in zip(names, point, distributions, strict=True):
                if space is not None:
                    value = space[name].index(value)  # a categorical's internal value
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": value,
                        "distribution_json": distribution,
                    }
                )
            values.append(
                {
                    "trial_id": trial_id,
                    "objective": 0,
                    "value": 0.0,
                    "value_type": models.TrialValueModel.TrialValueType.FINITE,
                }
            )
            if space is not None:
                for key, value in (("grid_id", number), ("search_space", space)):
                    attrs.append(
                        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                    )
        for model, rows in (
            (models.TrialModel, trials),
            (models.TrialParamModel, params),
            (models.TrialValueModel, values),
            (models.TrialSystemAttributeModel, attrs),
        ):
            if rows:
                db.execute(model.__table__.insert(), rows)
        db.execute(
            sqlalchemy.text(
                "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'),"
                " (SELECT max(trial_id) FROM trials))"
            )
        )
    engine.dispose()


def optuna_trials(
    server: PostgresServer, method: str, sizes: list[int], claims: int, budget: float = 60.0
) -> list[tuple[float, list[float]]]:
    """Per size: the first trial's time in a freshly loaded study, and `claims` later ones (as
    many as `budget` seconds allow, at least 2: a grid's ask grows with the stored trials)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = optuna_url(server.host, server.port, server.fresh_database())

    def sampler() -> optuna.samplers.BaseSampler:
        if method == "grid":
            return optuna.samplers.GridSampler(dict(GRID), seed=0)
        return optuna.samplers.RandomSampler(seed=0)

    def one(study: optuna.Study) -> float:
        start = time.perf_counter()
        trial = study.ask()
        if method == "grid":
            for name, values in GRID.items():
                trial.suggest_categorical(name, values)
        else:
            trial.suggest_float("x", 0.0, 1.0)
        study.tell(trial, 0.0)
        return time.perf_counter() - start

    first = optuna.create_study(study_name=method, storage=url, sampler=sampler())
    one(first)  # the grid's search_space attribute as GridSampler writes it
    stored = first.trials[0].system_attrs.get("search_space")
    space = {k: list(v) for k, v in stored.items()} if method == "grid" else None
    out = []
    for size in sizes:
        optuna_fill(url, first, size, space)
        study = optuna.load_study(study_name=method, storage=url, sampler=sampler())
        cold, times, began = one(study), [], time.perf_counter()
        while len(times) < claims and (len(times) < 2 or time.perf_counter() - began < budget):
            times.append(one(study))
        out.append((cold, times))
    return out


def at_scale(server: PostgresServer, folder: Path, sizes: list[int], claims: int) -> None:
    print()
    print(f"2. per-trial overhead at scale: {claims} no-op trials timed at each size")
    print(f"   (p99 by nearest rank: below 100 samples it is the largest); {load()}")
    header = f"   {'':32}" + "".join(f"{n:>20,}" for n in sizes)
    print(header)
    print(f"   {'median / p99, ms':32}" + "".join(f"{'runs':>20}" for _ in sizes))
    for method in ("grid", "random"):
        stores = {
            "PostgreSQL": server.url(server.fresh_database()),
            "SQLite": str(folder / f"scale-{method}.db"),
        }
        for name, store in stores.items():
            got = sweeper_claims(store, method, sizes, claims)
            cells = "".join(
                f"{statistics.median(t) * 1e3:11.1f} /{percentile(t, 0.99) * 1e3:7.1f}"
                for _, t in got
            )
            print(f"   {f'sweeper claim, {method}, {name}':32}{cells}")
            cells = "".join(f"{first * 1e3:20.1f}" for first, _ in got)
            print(f"   {'  first after the fill':32}{cells}", flush=True)
        optuna_got = optuna_trials(server, method, sizes, claims)
        cells = "".join(
            f"{statistics.median(t) * 1e3:11.1f} /{percentile(t, 0.99) * 1e3:7.1f}"
            for _, t in optuna_got
        )
        print(f"   {f'Optuna ask+tell, {method}, PG':32}{cells}")
        cells = "".join(f"{cold * 1e3:11.1f} (n={len(t):3})" for cold, t in optuna_got)
        print(f"   {'  first after load (n timed)':32}{cells}", flush=True)
    print("   target: flat, <= 50 ms median at 100,000 runs for grid and random")
    print(f"   {load()}")


# 3. agent footprint -------------------------------------------------------------------------

PROGRAM = """
import sys, time
import wandb
run = wandb.init()
time.sleep(float(sys.argv[1]))
wandb.log({"loss": wandb.config["x"]})
run.finish()
"""


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += map(int, (task / "children").read_text().split())
        except OSError:
            continue
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def footprint(server: PostgresServer, folder: Path, trials: int) -> None:
    """Sample the agent of `sweeper launch --agents 1` on a plain W&B command sweep."""
    print()
    print(f"3. agent footprint: one agent on a plain W&B command sweep of {trials} trials")
    print(f"   (the program: wandb.init, sleep 2 s, wandb.log); {load()}")
    (folder / "sleeper.py").write_text(PROGRAM)
    spec = folder / "command.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "footprint",
                "program": "sleeper.py",
                "command": ["${env}", "${interpreter}", "${program}", "2"],
                "method": "grid",
                "metric": {"name": "loss", "goal": "minimize"},
                "parameters": {"x": {"values": [float(i) for i in range(trials)]}},
            }
        )
    )
    store = server.url(server.fresh_database(), password=False)
    command = [sys.executable, "-m", "sweeper", "launch", str(spec), "--agents", "1"]
    launch = subprocess.Popen(
        [*command, "--store", store],
        env=ENV,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    rss: dict[int, int] = {}
    hwm: dict[int, int] = {}
    torch: dict[int, bool] = {}
    agents: set[int] = set()
    while launch.poll() is None:
        # the agent: launch's child running sweeper (`sweeper agent`, or the process started
        # ahead, `sweeper.cli.standby`); its trial children are forks of it (same cmdline)
        found = [pid for pid in children(launch.pid) if b"sweeper" in cmdline(pid)]
        agents.update(found)
        forks = [kid for pid in found for kid in children(pid) if cmdline(kid) == cmdline(pid)]
        for pid in found + forks:
            now_kib, peak_kib = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
            if now_kib is None or peak_kib is None:
                continue
            rss[pid] = max(rss.get(pid, 0), now_kib)
            hwm[pid] = max(hwm.get(pid, 0), peak_kib)
            try:
                maps = Path(f"/proc/{pid}/maps").read_text()
            except OSError:
                continue
            torch[pid] = torch.get(pid, False) or "libtorch" in maps
        time.sleep(0.2)
    _, errors = launch.communicate()
    if launch.returncode != 0:
        logs = "".join(path.read_text()[-1500:] for path in folder.glob(".sweeper/agents/*.log"))
        raise SystemExit(f"footprint launch exited {launch.returncode}: {errors.decode()}{logs}")
    if len(agents) != 1:
        raise SystemExit(f"footprint: expected one agent process, saw {sorted(agents)}")
    (agent,) = agents
    print(f"   agent: RSS up to {rss[agent] / 1024:.1f} MiB while sampled every 0.2 s,")
    print(f"   peak (VmHWM) {hwm[agent] / 1024:.1f} MiB; libtorch loaded: {torch[agent]}")
    forked = [pid for pid in rss if pid != agent]
    if forked:
        top = max(rss[pid] for pid in forked) / 1024
        print(f"   its forked trial children seen: {len(forked)}, RSS up to {top:.1f} MiB each")
    print(f"   libtorch loaded in the agent or a trial child: {any(torch.values())}")


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as folder:
        os.chmod(folder, 0o755)
        yield Path(folder)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="4 agents, 40 trials, small sizes")
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--claims", type=int, default=20)
    parser.add_argument("--footprint-trials", type=int, default=3)
    parser.add_argument(
        "--netns", action="store_true", help="part 1 over three namespaced nodes (root)"
    )
    parser.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 2,3")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.trials, args.sizes, args.claims = 4, 40, "100,1000", 5
        args.footprint_trials = 2
    sizes = [int(n) for n in args.sizes.split(",")]
    random.seed(0)
    with scratch() as folder, started_server() as server:
        os.chdir(folder)  # the stores' run files (.sweeper/) go to the scratch folder
        parts = args.parts.split(",")
        if "1" in parts and args.netns:
            from netns_cluster import netns_cluster, unavailable

            if (why := unavailable()) is not None:
                raise SystemExit(f"--netns: {why}")
            with netns_cluster(3) as cluster:
                coordination(namespaced(cluster), folder, args.agents, args.trials)
        elif "1" in parts:
            coordination(loopback(server), folder, args.agents, args.trials)
        if "2" in parts:
            at_scale(server, folder, sizes, args.claims)
        if "3" in parts:
            footprint(server, folder, args.footprint_trials)


if __name__ == "__main__":
    main()
