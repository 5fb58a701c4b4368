"""What `launch` shows while it waits: a line per sweep (trials done, best, elapsed, ETA) and a
line per running trial (epoch k of n, its last metric value, its own time).

Read from the store's running runs (their last logged step and values), so a 3-minute trial
shows its epochs as they end rather than `0/5` until it is over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeper.backends.base import Backend, LiveTrial, SweepRecord
from sweeper.sweep import DONE, RunState
from sweeper.text import strip_controls
from sweeper.trainers.registry import get_trainer

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console
    from rich.progress import TaskID

    from sweeper.agent.launch import Progress as Snapshot


def clock(seconds: float) -> str:
    """`0:42`, `3:07`, `1:02:03`: a duration as a progress line shows it."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def epochs_of(sweep: SweepRecord) -> int | None:
    """How many epochs each trial runs: the sweep's fixed `epochs` value, else the trainer's
    default. None for a plain W&B sweep (its program's steps have no known end) or when the
    epochs are searched over (each trial's own count is not on the line)."""
    if sweep.is_command or not sweep.trainer:
        return None
    param = sweep.config.get("parameters", {}).get("epochs")
    if isinstance(param, dict):
        value = param.get("value")
        return value if isinstance(value, int) else None
    default = get_trainer(sweep.trainer).config_model().model_fields.get("epochs")
    return default.default if default is not None and isinstance(default.default, int) else None


def trial_place(agent: str | None) -> str:
    """Where a trial runs, from its agent's name (`host-pid-tag`, `/slot` after it for a GPU
    slot; older stores wrote `/None` for a CPU one): `GPU 0,1` or `CPU`."""
    _, named, slot = (agent or "").rpartition("/")
    return f"GPU {slot}" if named and slot != "None" else "CPU"


def trial_count(trial: LiveTrial, epochs: int | None) -> str:
    """`epoch 3/5` (the trainers log step = epoch index), `step 120` for a program's steps."""
    if trial.step is None:
        return "starting"
    if epochs is None:
        return f"step {trial.step}"
    return f"epoch {trial.step + 1}/{epochs}"


def trial_value(trial: LiveTrial, metric: str | None) -> str:
    """The sweep metric's last logged value, `loss 0.1234`; empty before it is logged."""
    value = trial.summary.get(metric) if metric else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{metric} {value:.4g}"


@dataclass
class Clock:
    """Elapsed time of a launch's sweep and its ETA: the mean time per trial finished during
    this launch, times the trials left (none until one has finished here; a resumed launch's
    earlier trials do not count)."""

    started: float = field(default_factory=time.monotonic)
    done_at_start: int | None = None
    first_trial: float | None = None
    """When a trial was first seen running: the agents' start-up is not a trial's time."""

    def line(self, done: int, total: int | None, running: int) -> str:
        now = time.monotonic()
        if self.done_at_start is None:
            self.done_at_start = done
        if self.first_trial is None and (running or done > self.done_at_start):
            self.first_trial = now
        finished_here = done - self.done_at_start
        text = f"{clock(now - self.started)} elapsed"
        if total is None or finished_here <= 0 or done >= total or self.first_trial is None:
            return text
        per_trial = (now - self.first_trial) / finished_here
        return f"{text}, eta {clock(per_trial * (total - done))}"


def sweep_count(done: int, total: int | None) -> str:
    """`12/36` trials done, or `12 done` for a search with no run_cap."""
    return f"{done}/{total}" if total is not None else f"{done} done"


def describe_trials(
    trials: list[LiveTrial], sweep: SweepRecord, epochs: int | None
) -> list[dict[str, Any]]:
    """One progress line's parts per running trial: name, count, value, time."""
    metric = sweep.metric[0]
    return [
        {
            "run_id": trial.run_id,
            "name": f"  {trial.run_id} {trial_place(trial.agent)}",
            "count": trial_count(trial, epochs),
            "value": trial_value(trial, metric),
            "clock": clock(trial.elapsed),
            "completed": (trial.step + 1) if trial.step is not None and epochs else 0,
            "total": epochs,
        }
        for trial in trials
    ]


def stage_notes(sweep: SweepRecord, backend: Backend) -> list[str]:
    """What `launch` says under a stage's header line: on W&B, the sweep's page and how to add
    agents (here or in Docker); for a search that never ends by itself (not a grid, no
    `run_cap`), that it runs until stopped."""
    notes = []
    if backend.kind == "wandb":
        from sweeper.backends.wandb import WandbBackend  # imported already: backend is one

        assert isinstance(backend, WandbBackend)
        notes += [
            f"  {backend.url(sweep.id)}",
            f"  more agents: sweeper agent {sweep.id} --backend wandb",
            f"  in Docker:   {backend.docker_line(sweep.id)}",
        ]
    if sweep.config["method"] != "grid" and not sweep.config.get("run_cap"):
        notes.append(f"  {sweep.config['method']} search with no run_cap: runs until stopped")
    return notes


class LaunchBar:
    """The rich progress display of `launch`: a header per sweep (stage) as it starts, a bar per
    sweep, and under it a line per running trial that comes and goes with the trial. Every text
    is shown literally (a stage name or value is never read as markup) and stripped of control
    sequences."""

    def __init__(self, console: Console, backend: Backend) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.console, self.backend = console, backend
        self.where = backend.where  # W&B connects here: a bad key or server fails before a bar
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[count]}", markup=False),
            TextColumn("{task.fields[value]}", markup=False),
            TextColumn("{task.fields[clock]}", markup=False),
            console=console,
        )
        self._sweeps: dict[str, tuple[TaskID, Clock, int | None]] = {}
        self._trials: dict[str, TaskID] = {}

    def __enter__(self) -> LaunchBar:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()

    def start_stage(self, sweep: SweepRecord, resumed: bool) -> None:
        """Announce a sweep as `launch` makes or resumes it (`sweep NAME (created, WHERE)` and
        its `stage_notes`), and give it a bar."""
        from rich.text import Text

        what = "resumed" if resumed else "created"
        title = (strip_controls(sweep.title), "bold")
        where = strip_controls(f" ({what}, {self.where})")
        self.console.print(Text.assemble("sweep ", title, where))
        for note in stage_notes(sweep, self.backend):
            self.console.print(Text(strip_controls(note)))
        self.add_sweep(sweep)

    def add_sweep(self, sweep: SweepRecord) -> None:
        name = strip_controls(sweep.stage_name or sweep.name)
        task = self.progress.add_task(name, total=None, count="", value="", clock="")
        self._sweeps[sweep.id] = (task, Clock(), epochs_of(sweep))

    def update(self, snapshot: Snapshot) -> None:
        """Redraw a sweep's bar and its trials' lines from a launch progress snapshot."""
        sweep = snapshot.sweep
        task, timer, epochs = self._sweeps[sweep.id]
        metric = sweep.metric[0]
        best = f"best {metric} {snapshot.best:.4g}" if snapshot.best is not None else ""
        self.progress.update(
            task,
            completed=snapshot.done,
            total=snapshot.total,
            count=sweep_count(snapshot.done, snapshot.total),
            value=strip_controls(best),
            clock=timer.line(snapshot.done, snapshot.total, len(snapshot.trials)),
        )
        lines = describe_trials(snapshot.trials, sweep, epochs)
        for gone in set(self._trials) - {line["run_id"] for line in lines}:
            self.progress.remove_task(self._trials.pop(gone))
        for line in lines:
            fields: dict[str, Any] = {
                k: strip_controls(line[k]) for k in ("count", "value", "clock")
            }
            if line["run_id"] not in self._trials:
                self._trials[line["run_id"]] = self.progress.add_task(
                    strip_controls(line["name"]), total=line["total"], **fields
                )
            self.progress.update(
                self._trials[line["run_id"]],
                completed=line["completed"],
                total=line["total"],
                **fields,
            )


@dataclass(frozen=True)
class SweepEnd:
    """How a sweep's runs ended, for `launch`'s closing lines."""

    runs: int
    failed: int
    """Runs that failed or crashed."""
    first_failure: tuple[str, str] | None
    """(run id, first line of its error) of the first failed run; None when none failed."""
    any_done: bool
    """A run finished or was stopped with its summary (sweeper.sweep.DONE)."""


def sweep_end(runs: pd.DataFrame) -> SweepEnd:
    """`runs`: a sweep's run table (columns run_id, state, error), in creation order."""
    if not len(runs):
        return SweepEnd(0, 0, None, False)
    failed = runs[runs["state"].isin([RunState.FAILED, RunState.CRASHED])]
    first = None
    if len(failed):
        row = failed.iloc[0]
        first = (str(row["run_id"]), (row["error"] or "no reason recorded").splitlines()[0])
    return SweepEnd(len(runs), len(failed), first, bool(runs["state"].isin(DONE).any()))


class EpochLine:
    """`sweeper train`'s progress: one line (`epoch 3/100  val_acc 0.91  loss 0.23  0:05`),
    rewritten in place on a terminal; elsewhere (a log, a pipe) printed every few epochs, about
    ten lines for a whole run, and at the last epoch."""

    SHOWN = 4
    """Metrics on the line: the trainer's own first, then the first others logged."""

    def __init__(self, console: Console, epochs: int | None, metric: str | None) -> None:
        from rich.live import Live

        self.console, self.epochs, self.metric = console, epochs, metric
        self.started = time.monotonic()
        self.every = max(1, (epochs or 10) // 10)
        self.live = Live(console=console, transient=True) if console.is_terminal else None

    def __enter__(self) -> EpochLine:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def line(self, step: int, metrics: dict[str, float]) -> str:
        names = sorted(metrics, key=lambda name: name != self.metric)[: self.SHOWN]
        values = "  ".join(f"{name} {metrics[name]:.4g}" for name in names)
        count = f"epoch {step + 1}/{self.epochs}" if self.epochs else f"step {step}"
        return strip_controls(f"{count}  {values}  {clock(time.monotonic() - self.started)}")

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        from rich.text import Text

        text = self.line(step, metrics)
        if self.live is not None:
            self.live.update(Text(text), refresh=True)
        elif (step + 1) % self.every == 0 or (self.epochs and step + 1 >= self.epochs):
            self.console.print(Text(text))
