"""`sweeper launch`: create the sweep (or each stage of a study), run agents, carry the best on."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.agent import prestart
from sweeper.agent.loop import LAUNCHER_ENV, STORE_IDENTITY_ENV
from sweeper.agent.slots import make_slots, threads_per_trial
from sweeper.backends.base import Backend, LiveTrial, SweepRecord, WandbMode
from sweeper.backends.local import LocalBackend
from sweeper.backends.scheduler import SweepScheduler, is_scheduled
from sweeper.backends.store import new_id
from sweeper.errors import (
    NoSpace,
    NotFoundError,
    SpecError,
    StoreLost,
    SweeperError,
    Unreachable,
)
from sweeper.spec.compile import compile_stage
from sweeper.spec.load import LoadedSpec, validate_config
from sweeper.spec.models import Spec, Stage
from sweeper.spec.paths import deep_merge, unflatten
from sweeper.spec.plain import PlainSweep
from sweeper.sweep import ACTIVE, RunState, SweepState, best_configuration, swept_params
from sweeper.sweep.pareto import is_multi_objective, sweep_objectives
from sweeper.sweep.study import carry_over, carry_rule, latest_stages, stage_best, stage_start
from sweeper.sweep.trials import ended_trials, planned_trials
from sweeper.trainers.registry import get_trainer


@dataclass
class Progress:
    """A snapshot for the progress bar."""

    sweep: SweepRecord
    counts: dict[str, int]
    total: int | None
    best: float | None
    """The best configuration's mean so far (sweeper.sweep.best_configuration)."""
    trials: list[LiveTrial] = field(default_factory=list)
    """The running trials, for a line each."""

    @property
    def done(self) -> int:
        return ended_trials(self.counts)

    def tally(self) -> str:
        """`36/36 finished`, or `36/36 done (34 finished, 2 failed)`."""
        total = self.total if self.total is not None else self.done
        ended = {state: n for state, n in self.counts.items() if n and state not in ACTIVE}
        if set(ended) <= {RunState.FINISHED}:
            return f"{self.done}/{total} finished"
        states = ", ".join(f"{n} {state}" for state, n in sorted(ended.items()))
        return f"{self.done}/{total} done ({states})"


@dataclass
class StageResult:
    sweep: SweepRecord
    best_config: dict[str, Any] | None
    rule: str = "-"
    """Which rule chose `best_config` (sweeper.sweep.study.carry_rule)."""


@dataclass(frozen=True)
class AgentSettings:
    """What `launch` passes on to every agent it starts."""

    wandb_mode: WandbMode = "offline"
    heartbeat_timeout: float = 60.0
    trial_timeout: float | None = None
    outage_limit: float = 300.0
    """Seconds the agents wait out a server that does not answer (AgentOptions.outage_limit)."""

    def flags(self) -> list[str]:
        flags = ["--wandb", self.wandb_mode, "--heartbeat-timeout", str(self.heartbeat_timeout)]
        flags += ["--outage-limit", str(self.outage_limit)]
        return flags + (["--trial-timeout", str(self.trial_timeout)] if self.trial_timeout else [])


REMOTE_GRACE = 30.0
"""Seconds a W&B sweep's scheduler gets to finish its step once launch asks it to stop."""


class Interrupted(Exception):
    """`launch` got SIGINT or SIGTERM: its agents were stopped, their trials requeued."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _agent_command(
    backend: Backend, sweep_id: str, slot: str | None, threads: int, settings: AgentSettings
) -> list[str]:
    return [
        "agent",
        sweep_id,
        "--backend",
        backend.kind,
        "--store",
        backend.store_arg if isinstance(backend, LocalBackend) else str(backend.path),
        "--gpus",
        slot or "",
        "--threads",
        str(threads),
        *settings.flags(),
    ]


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def run_agents(
    backend: Backend,
    sweep: SweepRecord,
    n_agents: int,
    slots: list[str | None],
    settings: AgentSettings,
    on_progress: Callable[[Progress], None],
    on_note: Callable[[str], None] = lambda line: None,
) -> None:
    """Start the agent processes for one sweep and report progress until they all exit.

    Agents get their own session, so a terminal's Ctrl-C reaches only `launch`; `launch`
    passes SIGINT or SIGTERM on to each agent once, waits for them to requeue their trials,
    and raises Interrupted. They die with it even so (SIGTERM when it dies, SIGKILL included),
    and hold slot leases in a local store: a second launch of the study joins the agents still
    running instead of doubling them (the rule: sweeper.agent.slots).

    Raises:
        StoreLost: the store was deleted, replaced or truncated meanwhile (agents stopped).
    """
    logs = backend.root / "agents"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    threads = threads_per_trial(sweep.agents["cpus_per_trial"], n_agents)
    env = {**os.environ, LAUNCHER_ENV: str(os.getpid())}
    if isinstance(backend, LocalBackend):
        if backend.identity is not None:
            env[STORE_IDENTITY_ENV] = str(backend.identity)
        env.update(backend.child_env())  # a URL's password: never on a command line
        _join_slots(backend, sweep, n_agents if slots == [None] else None, on_note)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        for i in range(n_agents):
            args = _agent_command(backend, sweep.id, slots[i % len(slots)], threads, settings)
            path = logs / f"{sweep.key}-{i}.log"
            ahead = prestart.take(args, env, path)  # the first agent is already warm
            if ahead is not None:
                processes.append(ahead)
                continue
            with open(path, "ab") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "sweeper", *args],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        env=env,
                    )
                )
        total = planned_trials(sweep.config)
        metric, goal = sweep.metric
        state = SweepState.RUNNING  # a sweep paused before this launch is said paused too
        fault: SweeperError | None = None  # what the last snapshot met, if it failed
        scheduler = _scheduler(backend, sweep, settings)
        remote = _start_remote_scheduler(backend, sweep, logs, env)
        try:
            while any(p.poll() is None for p in processes):
                if isinstance(backend, LocalBackend):
                    backend.check_store()
                if scheduler is not None and not _step(scheduler, on_note):
                    scheduler = None  # its agents take the lease and meet the fault too
                if remote is not None:
                    _check_remote(remote, sweep, logs, processes)
                try:
                    progress = _snapshot(backend, sweep, total, metric, goal)
                    on_progress(progress)
                    state, fault = _say_pause(progress.sweep, state, on_note), None
                except StoreLost:
                    raise
                except SweeperError as exc:  # the agents meet it too: they wait out an outage
                    fault = exc  # or end on it (sweeper.agent.loop.Agent._end_on); so does launch
                time.sleep(backend.progress_every)
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut this short
            _stop_agents(processes, signum)
            raise Interrupted(signum) from None
        except StoreLost:  # the agents find out at their next write; do not wait for that
            _stop_agents(processes, signal.SIGKILL)
            raise
        finally:
            if scheduler is not None:  # an agent takes it over at once
                with contextlib.suppress(SweeperError):
                    scheduler.release()
            if remote is not None:
                _stop_remote(remote)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if isinstance(backend, LocalBackend):  # agents that stopped on it: say that, not their codes
        backend.check_store()
    failed = [p.returncode for p in processes if p.returncode]
    if failed and fault is not None:  # the agents ended on a server fault: theirs is the line
        raise _agents_failed(sweep, failed, logs, n_agents)
    on_progress(_snapshot(backend, sweep, total, metric, goal))
    if failed and not backend.is_complete(sweep.id):
        raise _agents_failed(sweep, failed, logs, n_agents)


def _scheduler(
    backend: Backend, sweep: SweepRecord, settings: AgentSettings
) -> SweepScheduler | None:
    """A `scheduler:` sweep's scheduler for `launch` on a local store: launch, like each of
    its agents, takes the sweep's lease when it is free and then steps the scheduler (the
    rule: sweeper.backends.scheduler); None for any other sweep."""
    if not isinstance(backend, LocalBackend) or not is_scheduled(sweep.config):
        return None
    holder = f"launch-{socket.gethostname()}-{os.getpid()}-{new_id(4)}"
    return SweepScheduler(backend.store, sweep.id, holder, lease=settings.heartbeat_timeout)


def _start_remote_scheduler(
    backend: Backend, sweep: SweepRecord, logs: Path, env: dict[str, str]
) -> subprocess.Popen[bytes] | None:
    """A `scheduler:` sweep on a W&B server: launch runs its scheduler beside the agents, as
    `wandb sweep-scheduler` runs (one per sweep: W&B's docs warn that two duplicate runs), in
    a process of its own (sweeper.agent.wandb_scheduler) logging to `<sweep>-scheduler.log`;
    the agents, here or on other nodes, only run the runs it queues. None for any other sweep
    (a local store's scheduler is stepped by `_scheduler`'s lease holder)."""
    if backend.kind != "wandb" or not is_scheduled(sweep.config):
        return None
    from sweeper.agent.wandb_scheduler import command

    with open(logs / f"{sweep.key}-scheduler.log", "ab") as log:
        return subprocess.Popen(
            command(sweep.id, backend.path, sweep.spec_path),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def _check_remote(
    remote: subprocess.Popen[bytes],
    sweep: SweepRecord,
    logs: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """A scheduler that failed stops the agents (SIGTERM: their runs are requeued) and ends
    launch with its `error:` line, as `wandb sweep-scheduler` exits on one, the sweep
    resumable; one that stopped cleanly (the sweep finished or its optimizer ended it)
    leaves the agents to end as the server tells them.

    Raises:
        SweeperError: the scheduler exited non-zero (one line).
    """
    code = remote.poll()
    if not code:
        return
    _stop_agents(processes, signal.SIGTERM)
    why = (_last_error(logs, f"{sweep.key}-scheduler", None) or "").removeprefix(
        f"sweep {sweep.id}: "
    )
    raise SweeperError(
        f"sweep {sweep.id}: its scheduler exited with code {code}"
        f"{f' ({why})' if why else ''}; see {logs}/{sweep.key}-scheduler.log"
    )


def _stop_remote(remote: subprocess.Popen[bytes]) -> None:
    """Stop the scheduler as Ctrl-C stops `wandb sweep-scheduler`: SIGINT, which wandb's client
    turns into a graceful stop (its step finishes, the sweep stays resumable); killed if it
    has not exited after REMOTE_GRACE seconds."""
    if remote.poll() is None:
        remote.send_signal(signal.SIGINT)
    try:
        remote.wait(REMOTE_GRACE)
    except subprocess.TimeoutExpired:
        remote.kill()
        remote.wait()


def _step(scheduler: SweepScheduler, on_note: Callable[[str], None]) -> bool:
    """One poll of launch's scheduler; False once its optimizer failed (the user's `source`,
    an engine error): launch says so, gives the lease up and steps it no more, so an agent
    takes the lease, meets the same fault and ends on it once its trials finish
    (`Agent._step_scheduler`), and launch reports the agents' failure. An unreachable store
    is waited out, as the agents wait it out.

    Raises:
        StoreLost, NoSpace: the store is gone or full (launch's own faults).
    """
    try:
        scheduler.poll()
    except Unreachable:
        return True
    except (StoreLost, NoSpace):
        raise
    except SweeperError as exc:
        on_note(str(exc))
        with contextlib.suppress(SweeperError):
            scheduler.release()
        return False
    return True


def _agents_failed(sweep: SweepRecord, codes: list[int], logs: Path, n_agents: int) -> SweeperError:
    """One line: the agents' exit codes and the first one's `error:` line."""
    why = _last_error(logs, sweep.key, n_agents)
    return SweeperError(
        f"sweep {sweep.id}: agents exited with codes {codes} before it completed"
        f"{f' ({why})' if why else ''}; see {logs}/{sweep.key}-*.log"
    )


def _say_pause(
    sweep: SweepRecord, before: SweepState, on_note: Callable[[str], None]
) -> SweepState:
    """Say once that the sweep was paused (its agents wait; `launch` waits with them), and
    once that it was resumed; the sweep's state, for the next call."""
    if sweep.state == SweepState.PAUSED and before != SweepState.PAUSED:
        on_note(f"sweep {sweep.id} is paused: no new trials until `sweeper resume {sweep.id}`")
    elif sweep.state == SweepState.RUNNING and before == SweepState.PAUSED:
        on_note(f"sweep {sweep.id} resumed")
    return sweep.state


def _stop_agents(processes: list[subprocess.Popen[bytes]], signum: int) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signum)
    for process in processes:
        process.wait()


def _join_slots(
    backend: LocalBackend, sweep: SweepRecord, cpu_slots: int | None, on_note: Callable[[str], None]
) -> None:
    """Set this host's CPU slot count for the study (None: GPU slots) and say, in one line,
    which slots live agents of it already hold: this launch joins them, it does not double them.
    """
    scope, host = sweep.study or sweep.id, socket.gethostname()
    if cpu_slots is not None:
        backend.set_cpu_pool(scope, host, cpu_slots)
    live = backend.live_leases(scope, host)
    if live:
        holders = len(set(live.values()))
        on_note(
            f"joining: {len(live)} slot(s) here ({', '.join(sorted(live))}) are held by "
            f"{holders} agent(s) of this study; this launch's agents take the free slots and "
            "wait for those (a held slot whose agent died is freed when its lease lapses, "
            "within the heartbeat timeout)"
        )


def _last_error(logs: Path, key: str, n_agents: int | None) -> str | None:
    """Why an agent stopped: the `error:` line near the end of its log (the first agent's);
    `n_agents` None: of the one log `<key>.log`."""
    names = [f"{key}.log"] if n_agents is None else [f"{key}-{i}.log" for i in range(n_agents)]
    for name in names:
        with contextlib.suppress(OSError):
            lines = (logs / name).read_text(errors="replace").splitlines()
            for line in reversed(lines[-20:]):
                if line.startswith("error: "):
                    return line.removeprefix("error: ")
    return None


def _run_stage(
    backend: Backend,
    sweep: SweepRecord,
    n_agents: int,
    slots: list[str | None],
    settings: AgentSettings,
    on_progress: Callable[[Progress], None],
    on_note: Callable[[str], None],
) -> None:
    """Run a stage's agents to completion; one that completed before this launch is shown
    full and said complete in one line (`36/36 finished`), not run again."""
    if not backend.is_complete(sweep.id):
        run_agents(backend, sweep, n_agents, slots, settings, on_progress, on_note)
        if backend.sweep(sweep.id).state == SweepState.RUNNING:  # not stopped or canceled
            backend.set_sweep_state(sweep.id, SweepState.FINISHED)
        return
    metric, goal = sweep.metric
    done = _snapshot(backend, sweep, planned_trials(sweep.config), metric, goal)
    on_progress(done)
    on_note(f"sweep {sweep.id} is complete: {done.tally()}")


def _snapshot(
    backend: Backend, sweep: SweepRecord, total: int | None, metric: str | None, goal: str
) -> Progress:
    sweep = backend.sweep(sweep.id)  # as it is now: paused, stopped or canceled meanwhile
    runs = backend.runs(sweep.id)
    # several metrics have a Pareto front, not one best (sweeper.sweep.pareto): none is shown
    best = (
        best_configuration(runs, swept_params(sweep.config, columns=runs.columns), metric, goal)
        if metric and not is_multi_objective(sweep.config)
        else None
    )
    mean = best.mean if best else None
    return Progress(sweep, backend.counts(sweep.id), total, mean, backend.live_trials(sweep.id))


def stage_carry(
    backend: Backend, sweep: SweepRecord, stage: Stage, carried: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A finished stage's best configuration (mean over repeats; with several metrics, the run
    of its Pareto front the spec's `select:` picks), and what the next stage inherits from it
    (the rule: sweeper.sweep.study.carry_over).

    Raises:
        SweeperError: no run of the stage finished with the metric (one line).
    """
    select = sweep.spec.get("select")
    carry = carry_over(backend.runs(sweep.id), sweep.config, stage.search, carried, select)
    if carry is None:
        names = [repr(m) for m, _ in sweep_objectives(sweep.config)] or ["''"]
        metric = f"metrics {' and '.join(names)}" if len(names) > 1 else f"metric {names[0]}"
        raise SweeperError(
            f"sweep {sweep.id} ({stage.name}): no run finished with {metric}, "
            f"so the next stage has nothing to start from; see `sweeper status {sweep.id}`"
        )
    return carry.config, carry.carried


def compile_for_stage(
    loaded: LoadedSpec | PlainSweep,
    stage: str | None,
    carry: dict[str, Any] | None,
    backend: Callable[[], Backend] | None,
) -> tuple[dict[str, Any], str | None]:
    """One stage's W&B sweep config, carrying the best of the stages before it (given with
    --carry, or read from the latest study of this spec on the backend `backend` opens, if
    the stage needs it); and a note saying which stage of how many it is.

    Raises:
        SpecError: no such stage; a plain W&B sweep given a stage or carry; the stage before
            has not run (or the backend has no store) and no --carry was given.
        SweeperError: the stage before has no run that finished with the metric.
    """
    if isinstance(loaded, PlainSweep):  # already a W&B sweep config: printed as it is
        if stage is not None or carry:
            option = "--stage" if stage is not None else "--carry"
            raise SpecError(loaded.path, option, "a plain W&B sweep config has no stages")
        return loaded.config, None
    spec, file = loaded.spec, loaded.path
    stages = spec.stage_list()
    index = stage_index(spec, stage, file)
    if carry is None:
        carry = _carried_from_store(loaded, index, backend) if index else {}
    model = get_trainer(spec.trainer).config_model()
    validate_config(model, deep_merge(spec.base, unflatten(carry)), file, "--carry")
    config = compile_stage(spec, index, carry, file)
    note = f"stage {index + 1} of {len(stages)}: {stages[index].name}" if spec.stages else None
    return config, note


def stage_index(spec: Spec, stage: str | None, file: str) -> int:
    names = [s.name for s in spec.stage_list()]
    if stage is None:
        return 0
    if stage in names:
        return names.index(stage)
    if stage.isdigit() and 1 <= int(stage) <= len(names):
        return int(stage) - 1
    raise SpecError(file, "--stage", f"no stage {stage!r}; the stages are {', '.join(names)}")


def _carried_from_store(
    loaded: LoadedSpec, index: int, opener: Callable[[], Backend] | None
) -> dict[str, Any]:
    """What stage `index` inherits from the latest launch of this spec on the backend."""
    stages = loaded.spec.stage_list()
    previous = stages[index - 1].name
    refusal = SpecError(
        loaded.path,
        f"stages.{index}",
        f"{stages[index].name!r} starts from the best of {previous!r}: run that stage first "
        f"(`sweeper launch`), or give its best with --carry PATH=VALUE",
    )
    if opener is None:
        raise refusal
    try:
        backend = opener()
    except NotFoundError:  # no store yet
        raise refusal from None
    start = stage_start(latest_stages(backend.made_from(loaded.path, loaded.spec.name)), index)
    if start is None or not (start.made or backend.is_complete(start.sweep.id)):
        raise refusal
    if start.made:
        return start.sweep.carried
    return stage_carry(backend, start.sweep, stages[index - 1], start.sweep.carried)[1]


def agent_count(
    loaded: LoadedSpec | PlainSweep, agents: int | None, slots: list[str | None]
) -> int:
    """How many agents `launch` runs: --agents, else one per slot; with GPUs, one per GPU slot
    at most (one trial per slot, so more would only wait); capped by agents.max_parallel."""
    n_agents = agents or len(slots)
    if slots != [None]:
        n_agents = min(n_agents, len(slots))
    if loaded.agents.max_parallel:
        n_agents = min(n_agents, loaded.agents.max_parallel)
    return n_agents


def launch(
    loaded: LoadedSpec | PlainSweep,
    backend: Backend,
    *,
    agents: int | None = None,
    gpus: list[str] | None = None,
    settings: AgentSettings | None = None,
    fresh: bool = False,
    seed: int | None = None,
    on_stage: Callable[[SweepRecord, bool], None] = lambda sweep, resumed: None,
    on_progress: Callable[[Progress], None] = lambda progress: None,
    on_note: Callable[[str], None] = lambda line: None,
) -> list[StageResult]:
    """Run every stage to completion; stage k+1 starts from base plus stage k's best.

    The latest study made from this exact spec is resumed (unless `fresh`): a finished stage
    is read back, not run again; an unfinished one gets agents again, then the next is made.
    With GPUs, one agent per GPU slot at most: one trial per slot, so more would only wait.

    `seed` (`launch --seed`, over the spec's `seed`): the seed of every stage's sweep; a
    study made with another seed is not resumed (a new one is made: a replay). None: the
    resumed study's, else one drawn when the first sweep is made, which later stages share.
    """
    slots = make_slots(gpus or [], loaded.agents.gpus_per_trial)
    n_agents = agent_count(loaded, agents, slots)
    if isinstance(loaded, PlainSweep):
        run = settings or AgentSettings()
        return [
            launch_plain(
                loaded, backend, n_agents, slots, run, fresh, on_stage, on_progress, on_note, seed
            )
        ]
    spec = loaded.spec
    seed = spec.seed if seed is None else seed
    study: str | None = None
    carried: dict[str, Any] = {}
    results: list[StageResult] = []
    for index, stage in enumerate(spec.stage_list()):
        sweep = None if fresh else _resumable(backend.find_stage(loaded.hash, index, study), seed)
        resumed = sweep is not None
        if sweep is None:
            fresh = True  # once a stage is new, every later one is too
            if study is None and spec.stages:
                study = new_id()
            sweep = backend.sweep(create_stage(backend, loaded, index, carried, study, seed))
            _note_unseeded(backend, sweep, on_note)
        study, seed = sweep.study, sweep.seed
        on_stage(sweep, resumed)
        run = settings or AgentSettings()
        _run_stage(backend, _made_from(sweep, loaded), n_agents, slots, run, on_progress, on_note)
        best, carried = stage_carry(backend, sweep, stage, carried)
        rule = carry_rule(sweep.config, sweep.spec.get("select"))
        results.append(StageResult(backend.sweep(sweep.id), best, rule))
        later = len(spec.stage_list()) - index - 1
        if later and results[-1].sweep.state == SweepState.CANCELED:
            on_note(f"sweep {sweep.id} was canceled: the study's {later} later stage(s) not made")
            break
    return results


def _made_from(sweep: SweepRecord, loaded: LoadedSpec | PlainSweep) -> SweepRecord:
    """The sweep with the file this launch read as its spec path where the backend keeps none
    (a W&B server): a `scheduler.source` is found beside it, as `validate` found it."""
    return sweep if sweep.spec_path else dataclasses.replace(sweep, spec_path=loaded.path)


def _resumable(sweep: SweepRecord | None, seed: int | None) -> SweepRecord | None:
    """The sweep a launch resumes: the one found, unless a seed was asked for that it was not
    made with (that launch is a replay under another seed: a new sweep)."""
    if sweep is None or seed is None or sweep.seed == seed:
        return sweep
    return None


def unseeded_note(kind: str, sweep: SweepRecord) -> str | None:
    """The line said once when a sweep is made whose seed does not reach its search, else
    None: on a W&B server (`kind` "wandb") random and bayes suggestions are drawn by the
    server, whose API takes no seed (wandb/wandb #5582); a `scheduler:` engine runs here and
    is seeded, and a grid needs none."""
    method = sweep.config.get("method")
    if kind != "wandb" or sweep.seed is None or sweep.config.get("scheduler"):
        return None
    if method not in ("random", "bayes"):
        return None
    return (
        f"seed {sweep.seed}: W&B's server draws {method} suggestions itself and cannot be "
        f"seeded; the seed is kept with sweep {sweep.id} for the record only"
    )


def _note_unseeded(backend: Backend, sweep: SweepRecord, on_note: Callable[[str], None]) -> None:
    note = unseeded_note(backend.kind, sweep)
    if note is not None:
        on_note(note)


def create_stage(
    backend: Backend,
    loaded: LoadedSpec,
    index: int = 0,
    carried: dict[str, Any] | None = None,
    study: str | None = None,
    seed: int | None = None,
) -> str:
    """Compile stage `index` of a spec, carrying the best of the stage before, and create its
    sweep with `seed` (None: the spec's, else the backend draws one); the sweep's id."""
    spec, carried = loaded.spec, carried or {}
    return backend.create_sweep(
        compile_stage(spec, index, carried, loaded.path),
        trainer=spec.trainer,
        spec=spec.model_dump(mode="json"),
        spec_hash=loaded.hash,
        spec_path=loaded.path,
        study=study,
        stage=index,
        stage_name=spec.stage_list()[index].name if spec.stages else None,
        carried=carried,
        seed=spec.seed if seed is None else seed,
    )


def launch_plain(
    loaded: PlainSweep,
    backend: Backend,
    n_agents: int,
    slots: list[str | None],
    settings: AgentSettings,
    fresh: bool,
    on_stage: Callable[[SweepRecord, bool], None],
    on_progress: Callable[[Progress], None],
    on_note: Callable[[str], None] = lambda line: None,
    seed: int | None = None,
) -> StageResult:
    """A plain W&B sweep config: one sweep whose trials run its `command` (resumed when this
    exact config, and `seed` if one is given, was launched before, unless `fresh`). `seed`
    (`launch --seed`) wins over the file's own `seed`."""
    seed = loaded.seed if seed is None else seed
    sweep = None if fresh else _resumable(backend.find_stage(loaded.hash, 0), seed)
    resumed = sweep is not None
    if sweep is None:
        if loaded.note:  # trials run beside the sweep file, not here: say so once
            print(loaded.note, file=sys.stderr)
        sweep = backend.sweep(
            backend.create_sweep(
                loaded.config,
                trainer="",
                spec=loaded.record(),
                spec_hash=loaded.hash,
                spec_path=loaded.path,
                seed=seed,
            )
        )
        _note_unseeded(backend, sweep, on_note)
    on_stage(sweep, resumed)
    _run_stage(backend, _made_from(sweep, loaded), n_agents, slots, settings, on_progress, on_note)
    best = stage_best(backend.runs(sweep.id), sweep.config)
    return StageResult(backend.sweep(sweep.id), best.config if best else None)
