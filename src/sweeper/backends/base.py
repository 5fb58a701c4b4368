"""The Backend protocol: what the agent, `launch`, `status` and the report ask of a sweep's home.

Two backends implement it: the embedded SQLite store (`local`) and a W&B server (`wandb`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sweeper.sweep import RunState, RunView, SweepState
from sweeper.sweep.study import sweep_metric

if TYPE_CHECKING:
    import pandas as pd

Beat = Literal["alive", "stop", "lost"]
"""A heartbeat's answer: keep going; stop at the next epoch (W&B's stop command); or the trial
is no longer ours (requeued elsewhere) and must die now."""

PREEMPTED_EXIT = 75
"""A trial child's exit code when it stopped to be requeued (EX_TEMPFAIL: try again later):
how the agent tells a preempted trial from a finished one where the server keeps the record."""

STOPPED_EXIT = 76
"""A trial child's exit code when the sweep or W&B stopped it early (its summary kept): how the
agent tells a stopped trial from a finished one where the server keeps the record. Only the
agent sees it; the trial's wandb run itself ends with exit code 0."""

WandbMode = Literal["offline", "online", "disabled"]
"""How a trial's own wandb run is opened (wandb.init's `mode`); "disabled": none."""


@dataclass(frozen=True)
class SweepRecord:
    id: str
    name: str
    project: str
    trainer: str
    """The registered trainer; "" for a plain W&B sweep (see `is_command`)."""
    config: dict[str, Any]
    """The compiled W&B sweep config."""
    spec: dict[str, Any]
    spec_hash: str
    spec_path: str | None
    state: SweepState
    """W&B's sweep state: whether agents get new runs (see SweepState)."""
    exhausted: bool
    study: str | None
    stage: int
    stage_name: str | None
    carried: dict[str, Any]
    created_at: float
    entity: str | None = None
    seed: int | None = None
    """The sweep's seed: random and bayes suggest its k-th run under `seeds.seed_for(seed, k)`
    (issue 23 §4). Drawn once when the sweep is made, unless the spec or `--seed` gave one,
    and never changed; None for a sweep made before seeds (store schema < 4)."""
    lease_holder: str | None = None
    """Who holds the sweep's scheduler lease (issue 23 §2: one process drives its `scheduler:`
    engine); None when nobody does."""
    lease_until: float | None = None
    """When the lease lapses unless renewed: the store's clock, seconds since the epoch."""

    @property
    def metric(self) -> tuple[str, str]:
        """(metric name, goal) of the sweep (sweeper.sweep.study.sweep_metric)."""
        return sweep_metric(self.config)

    @property
    def title(self) -> str:
        """`id name`, or the id alone for an unnamed sweep (whose name is its id)."""
        return self.id if self.name == self.id else f"{self.id} {self.name}"

    @property
    def is_command(self) -> bool:
        """A plain W&B sweep: each trial runs the sweep's `command`, not a trainer."""
        return not self.trainer

    @property
    def key(self) -> str:
        """The id as a file name (a W&B sweep's id is entity/project/sweep_id)."""
        return self.id.replace("/", "-")

    @property
    def agents(self) -> dict[str, Any]:
        """The spec's `agents` section (a W&B sweep made elsewhere has none: the defaults)."""
        defaults = {"gpus_per_trial": 1, "cpus_per_trial": None, "trial_timeout": None}
        return {**defaults, **self.spec.get("agents", {})}


@dataclass(frozen=True)
class Claim:
    """A trial handed to one agent: run it as attempt `attempt`."""

    run_id: str
    sweep_id: str | None
    attempt: int
    params: dict[str, Any]
    """Flat {dotted path: value}."""
    resumed: bool = False
    """W&B handed out a run it had before; it says so, but does not count attempts."""


@dataclass(frozen=True)
class LiveTrial:
    """A running trial as its last logged step left it, for a progress line."""

    run_id: str
    agent: str | None
    step: int | None
    """The last step (epoch) it logged; None before its first."""
    summary: dict[str, Any]
    """Its last logged values."""
    elapsed: float
    """Seconds since it started."""


class TrialSink(Protocol):
    """Where one claimed trial's record goes, as the agent runs it (`agent.trial.run_trial`).

    A backend hands one out per claim (`Backend.open_sink`). Every write is fenced by the
    claim's run id and attempt: once the run was requeued to another attempt, or its end was
    recorded, a write changes nothing and says so (False), so a late writer never overwrites
    the record of the attempt that replaced it.
    """

    claim: Claim
    run_dir: Path
    """Where the trial keeps files (checkpoints, output.log, a program's wandb folder)."""
    by_exit_code: bool
    """True where the agent cannot read the record back (a W&B server keeps it, and a
    command's program writes it itself): the trial's end reaches the agent as its child's exit
    code only (0 finished, 1 failed, PREEMPTED_EXIT preempted, STOPPED_EXIT stopped), as
    with `wandb agent`."""

    def record_meta(self, meta: Mapping[str, Any]) -> None:
        """Record the trial's resolved config (`meta["config"]`, the trainer's shape) and its
        provenance, once, before its first step. A sink that opens a wandb run for the trial
        opens it here, with this as its config."""
        ...

    def log(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Append one history step (an epoch) of metrics; a repeated step (a resumed trial)
        replaces the first. False: the claim is no longer this trial's (stop at once)."""
        ...

    def log_batch(self, batch: int, metrics: Mapping[str, float]) -> None:
        """Record metrics at a global batch index: a side series, never a history step."""
        ...

    def log_images(self, name: str, paths: list[Path], step: int) -> None:
        """Record image files under one name at an epoch (the files stay where they are)."""
        ...

    def should_stop(self) -> bool:
        """True when the sweep stopped this trial (early termination, a stopped sweep) or the
        claim is no longer its own. A store applies the sweep's `early_terminate` here; a W&B
        server sends its stop to the agent instead (the agent then signals the trial)."""
        ...

    def program_env(self, attempt_dir: Path) -> dict[str, str]:
        """The W&B variables a command's program runs with, as `wandb agent` sets them
        (wandb/wandb_agent.py: WANDB_SWEEP_ID, WANDB_RUN_ID, WANDB_SWEEP_PARAM_PATH, ...), so its
        own `wandb.init()` takes this trial's run id and parameters."""
        ...

    def mark_preempting(self) -> None:
        """The agent is going away: tell the record now, not at the next epoch boundary, so a
        trial killed when the agent's grace period ends is still requeued."""
        ...

    def finish(
        self,
        state: RunState,
        *,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the trial's end: a terminal state, or `preempted` (requeued), with its
        summary (every float kept, NaN and inf included) and a failure's reason. False when
        the claim's end was recorded already or the run was requeued to another attempt.

        Raises:
            NoSpace: the store's disk is full (nothing was recorded).
            StoreLost: the store file is not the one opened.
        """
        ...

    def ended(self) -> tuple[RunState, str | None] | None:
        """The end recorded for this claim, (state, reason); None while the record still has
        it running (or, where `by_exit_code`, always: the agent cannot read it)."""
        ...

    def close(self) -> None:
        """Release what the sink holds (a store connection opened for it)."""
        ...


class Backend(Protocol):
    """Where sweeps live. Agent-side calls are made from the agent's parent process only;
    the trial's sink (`open_sink(..., fork=True)`) is opened in the forked child."""

    kind: str
    """"local" or "wandb"."""
    path: Path
    """The local store (the W&B backend keeps run files beside it, not runs)."""
    progress_every: float
    """Seconds between progress polls: a server is asked less often than a file."""

    # Read-only here, so a backend may compute them (a property) or keep them (an attribute).
    @property
    def root(self) -> Path:
        """Where runs keep files: logs, checkpoints, wandb's run folders."""
        ...

    @property
    def where(self) -> str:
        """Said to the user: the store's path, or the W&B server."""
        ...

    def run_dir(self, run_id: str) -> Path: ...

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        """The latest sweep made for this stage of this exact spec (of `study`, if given):
        what a re-run launch resumes."""
        ...

    def create_sweep(
        self,
        config: Mapping[str, Any],
        *,
        trainer: str,
        spec: Mapping[str, Any],
        spec_hash: str,
        spec_path: str | None = None,
        study: str | None = None,
        stage: int = 0,
        stage_name: str | None = None,
        carried: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> str:
        """Make a sweep; its id.

        `seed`: the sweep's seed (SweepRecord.seed), stored with it. None: a store draws one
        (`sweeper.sweep.seeds.draw_seed`), so every sweep can be replayed; a W&B server draws
        its own random and bayes suggestions and takes no seed, so there one is drawn only for
        a sweep with a `scheduler:` (whose engine runs here), and a given one is kept with the
        sweep for its record.
        """
        ...

    def sweep(self, sweep_id: str) -> SweepRecord:
        """One sweep by its id (a local store also takes a study id: its latest stage).

        Raises:
            NotFoundError: no such sweep.
        """
        ...

    def sweeps(self, study: str | None = None) -> list[SweepRecord]:
        """Every sweep in creation order (on W&B: of the backend's project), or the stages of
        `study` in stage order ([] for no such study)."""
        ...

    def made_from(self, spec_path: str | os.PathLike[str], name: str | None) -> list[SweepRecord]:
        """The latest launch of a spec: its sweep, or every stage of its study, in stage
        order; [] when none. A local store matches the spec file's path, else its `name`; a
        W&B server keeps no path and matches the name."""
        ...

    def set_sweep_state(self, sweep_id: str, state: SweepState) -> SweepState:
        """Pause, resume, stop or cancel a sweep, with W&B's meanings (`sweeper pause|resume|
        stop|cancel`, as `wandb sweep --pause/...`; see SweepState): a store records the state
        and its coordinator applies it at the next claim, and cancelling also asks its running
        trials to stop at their next epoch; a W&B server is told through wandb's own client
        (`_set_sweep_state`), and its agents' heartbeats then say what to do.

        Args:
            sweep_id: The sweep's id (on W&B: entity/project/sweep_id).
            state: The state wanted; the one the sweep has already changes nothing.

        Returns:
            The sweep's state afterwards, as the backend now reports it.

        Raises:
            NotFoundError: no such sweep.
            SweeperError: W&B's client refuses the change: pausing, stopping or cancelling a
                sweep that is already finished or canceled (sweeper.sweep.check_transition).
        """
        ...

    def counts(self, sweep_id: str) -> dict[str, int]: ...

    def is_complete(self, sweep_id: str) -> bool: ...

    def run_views(self, sweep_id: str) -> list[RunView]: ...

    def live_trials(self, sweep_id: str) -> list[LiveTrial]: ...

    def runs(self, sweep_ids: str | list[str]) -> pd.DataFrame:
        """The run table of these sweeps (`sweeper.sweep.runtable`): one row per run."""
        ...

    def history(self, run_ids: list[str], metrics: list[str] | None = None) -> pd.DataFrame:
        """Per-step metrics of these runs: columns run_id, _step, then one per metric (all the
        logged ones when `metrics` is None), sorted by run and step; NaN where a step did not
        log a metric."""
        ...

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's record: `id`, `sweep_id`, `state` (a RunState value), `attempt` (1 on W&B,
        which does not count attempts), `params` ({name: {"value": v}}), `summary`, `meta`
        (`config` in the trainer's shape, then provenance) and `error` (None, or why it failed).

        Raises:
            NotFoundError: no such run.
        """
        ...

    def logged_rows(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        """One run's history as logged, (step, {metric: value}) in step order: a key a row did
        not log is absent (in `history`'s table it is NaN, like a NaN the run did log)."""
        ...

    def claim(self, sweep_id: str, agent: str, heartbeat_timeout: float = 60.0) -> Claim | None:
        """The next trial for this agent slot, or None when there is none now."""
        ...

    def heartbeat(self, run_id: str, attempt: int) -> Beat: ...

    def open_sink(
        self,
        claim: Claim,
        sweep: SweepRecord | None,
        *,
        wandb_mode: WandbMode = "disabled",
        fork: bool = True,
    ) -> TrialSink:
        """The sink for one claimed trial. `wandb_mode`: how the sink opens the trial's own
        wandb run (the record on a W&B server, which needs "online"; an offline mirror beside
        a store); "disabled" for none, as for a command, whose program opens its own. `fork`:
        this process is a child forked from the one that opened the backend, so the sink opens
        its own connection (a connection must not cross a fork); False in the agent's parent,
        which records through its own one what the child could not (a crash, a kill).
        `sweep` is None for a run of no sweep (`sweeper train`)."""
        ...

    def close(self) -> None: ...
