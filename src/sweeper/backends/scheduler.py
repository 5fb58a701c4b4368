"""W&B's sweep scheduler, run offline over a store: a `scheduler:` sweep's engine is one of the
optimizer classes `wandb sweep-scheduler` drives (wandb/sdk/sweeps/scheduler: `make_optimizer`
picks WandbOptimizer, the Optuna optimizers or AxOptimizer), fed with the store's runs instead
of a W&B server's. No search algorithm is written here; this module is the loop that wandb-core
runs for `wandb sweep-scheduler` (wandb/sdk/sweeps/scheduler/ipc.py is its Python side), over
the store's primitives:

- One scheduler per sweep. W&B's docs warn that two schedulers on one sweep duplicate runs
  (`wandb sweep-scheduler --help`), so the sweep's record holds a lease (`lease_holder`,
  `lease_until`, on the store's clock), taken and renewed under the sweep's lock. Every agent
  (and `launch`) tries to take it on its poll; the holder steps the scheduler, the others only
  claim. A holder that stops renewing (its process died) loses the lease after `lease`
  seconds to the next process that asks.
- Optimizers are rebuilt, never persisted (W&B's rule: the `optimizer` factory's client "must
  not be persisted to disk, as it will be re-created on each restart"). A process that takes
  the lease warm-starts a new optimizer from the stored runs as wandb-core's warm start does:
  each ended run through `tell_existing_finished_run`, each pending or running one through
  `tell_existing_active_run`, keeping the id it returns.
- Each step is one generation of wandb-core's loop (`SchedulerTaskExchange._execute_generation`):
  the runs the optimizer tracks are told their state, summary and history (`tell_run`; an ended
  run once), the running ones are offered to `prune_runs`, then `should_terminate_sweep`, then
  `ask_n_runs` for as many runs as keep `batch_size` in flight (pending or running: W&B's
  `--batch-size`). Suggestions become PENDING runs, which agents claim; the coordinator never
  asks the `sweeps` engine for such a sweep. A pruned run is marked `should_stop`, the path
  hyperband's stops take: its trial ends `stopped` at its next epoch.
- The optimizer's slow calls run with no lock held; its suggestions are inserted only if this
  process still holds the lease, else they are forgotten (`forget_run`) and the optimizer is
  dropped, to be rebuilt if the lease comes back.
- An empty ask (the space is spent), `should_terminate_sweep` or `run_cap` makes the sweep
  exhausted: no new runs, the pending and running ones run, and the sweep is finished once
  none is active (W&B's server finishes a sweep whose engine has nothing left the same way).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sweeper.backends.base import SweepRecord
from sweeper.backends.store import RunRecord, Store, new_id
from sweeper.errors import NotFoundError, SweeperError
from sweeper.sweep import ACTIVE, RunState, SweepState, flat_parameters
from sweeper.sweep.engine import SCHEDULER_PACKAGES
from sweeper.sweep.seeds import seed_for

if TYPE_CHECKING:
    from wandb.sdk.sweeps.run_state import RunState as WandbRunState
    from wandb.sdk.sweeps.scheduler.optimizer import Optimizer, RunWithMetrics

BATCH_SIZE = 10
"""Runs kept in flight (pending or running) at once: the default of `wandb sweep-scheduler
--batch-size` (wandb/cli/cli.py `sweep_scheduler`), a flag of the process that runs the
scheduler, not a key of the sweep config (`sweeper agent --batch-size`)."""

STEP_EVERY = 1.0
"""Seconds between the holder's steps. `wandb sweep-scheduler` polls a W&B server every 10 s
(`--poll-interval`); a store answers in milliseconds (a step reads the active runs, the
runs that ended since the last step and the objective's history of those: `_runs`), so the
holder steps as often as an idle agent claims, and no free slot waits 10 s for a suggestion.
A process that does not hold the lease reads it with no lock (`_renewed_elsewhere`)."""

LEASE = 30.0
"""Seconds a holder's lease lasts unless renewed (each step renews it); the agent passes its
`--heartbeat-timeout`, the same notion: a process silent that long is taken to be gone."""


def scheduler_block(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The sweep config's `scheduler:` block, or None for a sweep the `sweeps` engine drives."""
    block = config.get("scheduler")
    return block if isinstance(block, Mapping) and block else None


def is_scheduled(config: Mapping[str, Any]) -> bool:
    """Whether a scheduler, not the `sweeps` engine behind each claim, suggests the sweep's
    runs (a config with a `scheduler:` block, as `wandb sweep` then prints `wandb
    sweep-scheduler` for it: wandb/cli/cli.py `sweep`)."""
    return scheduler_block(config) is not None


def objective_names(config: Mapping[str, Any]) -> list[str]:
    """The metrics the optimizer reads, as `Optimizer.metric_names` lists them: `metrics`'
    names, else `metric`'s."""
    metrics = config.get("metrics")
    if isinstance(metrics, list):
        return [str(m["name"]) for m in metrics if isinstance(m, Mapping) and "name" in m]
    metric = config.get("metric")
    return [str(metric["name"])] if isinstance(metric, Mapping) and "name" in metric else []


def check_engine(config: Mapping[str, Any]) -> None:
    """Refuse an engine whose package is not installed, naming the extra that installs it.

    Raises:
        SweeperError: one line: the engine's package is missing.
    """
    engine = str((scheduler_block(config) or {}).get("engine"))
    if engine not in SCHEDULER_PACKAGES:
        return
    module, install = SCHEDULER_PACKAGES[engine]
    if importlib.util.find_spec(module) is None:
        raise SweeperError(
            f"scheduler.engine {engine}: the {module!r} package is not installed; install {install}"
        )


def _resolved(sweep: SweepRecord) -> dict[str, Any]:
    """The sweep config with `scheduler.source` as an absolute path, found where `validate`
    found it (`sweeper.spec.scheduler.find_source`): in the working folder, as `wandb
    sweep-scheduler` reads it (its help text), else beside the sweep's spec file; so every
    agent loads the file that was checked. Left as written when in neither place (wandb's
    loader then says so)."""
    config = dict(sweep.config)
    block = dict(scheduler_block(config) or {})
    source = block.get("source")
    if not isinstance(source, str) or not source or Path(source).is_absolute():
        return config
    folders = [Path.cwd()]
    if sweep.spec_path:
        folders.append(Path(sweep.spec_path).parent)
    found = next((folder / source for folder in folders if (folder / source).is_file()), None)
    if found is not None:
        block["source"] = str(found.resolve())
        config["scheduler"] = block
    return config


def build_optimizer(sweep: SweepRecord, runs: int = 0) -> Optimizer:
    """The optimizer `wandb sweep-scheduler` would build for this sweep (wandb's
    `make_optimizer`), its `source` resolved (`_resolved`).

    Seeding: wandb's Optuna builder makes the study with optuna's default sampler (TPE,
    `create_study_from_sweep_config`) and offers no seed hook; with no `optimizer` factory of
    the user's, the study's sampler is replaced before any ask by the same sampler seeded with
    `seed_for(seed, runs)`: k = 0 for a first build (sweeper.sweep.seeds), so one unbroken
    holder suggests the same sequence for the same seed; a rebuild over stored runs takes
    another, as a seeded sampler restarts its random stream and would else draw the first
    suggestions again, duplicating runs the sweep has. A user's factory seeds its own sampler.
    The wandb engine's asks are seeded one suggestion at a time (`SweepScheduler._ask`).

    Args:
        sweep: The sweep, `scheduler:` block and all.
        runs: How many runs the sweep has stored (0: a first build).

    Raises:
        SweeperError: one line: the engine's package is missing, or wandb's builder refused
            the config (an unknown engine, a `source` that does not load, a study whose
            directions disagree with the metrics).
    """
    check_engine(sweep.config)
    import wandb
    from wandb.sdk.sweeps.scheduler.optimizer import make_optimizer
    from wandb.sdk.sweeps.sweep_info import SweepInfo

    config = _resolved(sweep)
    info = SweepInfo(
        id=sweep.id,
        name=sweep.name,
        entity=sweep.entity or "",
        project=sweep.project,
        config=config,
        controller_run_name="",
    )
    library = logging.getLogger("optuna")  # its "A new study created" INFO line: not shown
    level = library.level
    library.setLevel(logging.WARNING)
    try:
        optimizer = make_optimizer(info)
    except (wandb.Error, ValueError, OSError) as exc:
        raise SweeperError(f"sweep {sweep.id}: scheduler: {exc}") from exc
    finally:
        library.setLevel(level)
    block = scheduler_block(config) or {}
    if block.get("engine") == "optuna" and not block.get("optimizer") and sweep.seed is not None:
        import optuna
        from wandb.sdk.sweeps.scheduler.optuna import OptunaOptimizer

        if isinstance(optimizer, OptunaOptimizer):
            seed = seed_for(sweep.seed, runs)
            optimizer.study.sampler = optuna.samplers.TPESampler(seed=seed)
    if sweep.trainer:
        _keep_base(optimizer, config)
    return optimizer


def _keep_base(optimizer: Optimizer, config: Mapping[str, Any]) -> None:
    """A trainer sweep's define-by-run suggestions carry the config's constant parameters
    (the spec's base, compiled as `{"value": v}`) under what the space returned, which wins.

    wandb's optuna engine makes a run's config of what `search_space` returns alone and reads
    no `parameters:` (wandb/sdk/sweeps/scheduler/optuna.py `OptunaImperativeOptimizer`), so a
    trainer would run with its defaults, not the base. A plain W&B sweep keeps W&B's
    behaviour: its runs get what the engine suggested. The space is wrapped here, where both
    the offline scheduler and `launch --backend wandb`'s scheduler build the optimizer; a
    rebuild's warm start enqueues the stored configs, base and all, and optuna leaves the
    values no `suggest_*` asks for unread.
    """
    from wandb.sdk.sweeps.scheduler.optuna import OptunaImperativeOptimizer

    if not isinstance(optimizer, OptunaImperativeOptimizer):
        return
    parameters = flat_parameters(config.get("parameters") or {})
    base = {
        name: param["value"]
        for name, param in parameters.items()
        if isinstance(param, Mapping) and "value" in param
    }
    space = optimizer.trial_constructor
    optimizer.trial_constructor = lambda trial: {**base, **space(trial)}


def wandb_state(state: RunState) -> WandbRunState:
    """A stored run's state as the optimizer is told it (wandb's RunState). A preempted run is
    back in the queue to be resumed, so pending; a stopped one (early-terminated or cancelled)
    is what W&B calls killed."""
    from wandb.sdk.sweeps.run_state import RunState as W

    return {
        RunState.PENDING: W.PENDING,
        RunState.PREEMPTED: W.PENDING,
        RunState.RUNNING: W.RUNNING,
        RunState.FINISHED: W.FINISHED,
        RunState.STOPPED: W.KILLED,
        RunState.FAILED: W.FAILED,
        RunState.CRASHED: W.CRASHED,
    }[RunState(state)]


class SchedulerStore(Store, Protocol):
    """What the scheduler asks of a store: the coordinator's primitives and the history of a
    few metrics of some runs (`BackendStore.history_rows`)."""

    def history_rows(
        self, run_ids: list[str], metrics: list[str] | None = None
    ) -> list[tuple[Any, ...]]: ...


@dataclass
class _Tenure:
    """The optimizer of one unbroken holding of the lease, and what it has been told."""

    optimizer: Optimizer
    restore_logs: Callable[[], None]
    """Gives the search library its own console output back (`Optimizer.route_library_logs`)."""
    ids: dict[str, str] = field(default_factory=dict)
    """Store run id -> the optimizer's run id for it."""
    told: set[str] = field(default_factory=set)
    """Store run ids whose end the optimizer was told (an ended run is told once)."""
    pruned: set[str] = field(default_factory=set)
    """Store run ids `prune_runs` returned: stopped until they end."""


@dataclass(frozen=True)
class Step:
    """What one step did."""

    suggested: list[str]
    """Store ids of the pending runs it inserted."""
    pruned: list[str]
    """Store ids of the runs it marked to stop."""
    exhausted: bool
    """The sweep suggests nothing more (an empty ask, the optimizer's terminator, run_cap)."""


class SweepScheduler:
    """One process's side of a sweep's scheduler: `poll` steps it while this process holds
    the sweep's lease, and takes the lease when it is free or lapsed.

    Args:
        store: The sweep's store.
        sweep_id: The scheduled sweep.
        holder: This process's name in the lease (an agent's id): unique per process.
        batch_size: Runs kept in flight while this process holds the lease (BATCH_SIZE).
        lease: Seconds the lease lasts unless renewed.
        every: Seconds between steps (`poll`).
        clock: Monotonic seconds, for `every` and for how long another holder's lease has
            gone unrenewed (the store's clock decides whether it lapsed).
        say: Where a line goes when this process takes the scheduler over (its log).
    """

    def __init__(
        self,
        store: SchedulerStore,
        sweep_id: str,
        holder: str,
        *,
        batch_size: int = BATCH_SIZE,
        lease: float = LEASE,
        every: float = STEP_EVERY,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.store, self.sweep_id, self.holder = store, sweep_id, holder
        self.batch_size, self.lease, self.every, self.clock = batch_size, lease, every, clock
        self.say = say
        self._tenure: _Tenure | None = None
        self._next = -math.inf
        self._seen: tuple[str | None, float | None] = (None, None)
        """The other holder's lease as last read, and when (`clock`) it was first read so."""
        self._seen_at = -math.inf

    @property
    def holds(self) -> bool:
        """Whether this process drove the sweep's optimizer at its last step."""
        return self._tenure is not None

    def poll(self) -> Step | None:
        """Step if `every` seconds passed since the last step (see `step`)."""
        now = self.clock()
        if now < self._next:
            return None
        self._next = now + self.every
        return self.step()

    def step(self) -> Step | None:
        """Take or renew the lease, then run one generation of the scheduler's loop (this
        module's docstring); None when another live process holds the lease, or the sweep is
        over.

        Raises:
            NotFoundError: no sweep with this id.
            SweeperError: the optimizer could not be built or failed (one line); the next
                step rebuilds it.
        """
        sweep, held = self._take_lease()
        if sweep is None:
            return None
        if not held:
            self._drop()  # another process may have held it since: rebuild
        try:
            return self._generation(sweep)
        except SweeperError:
            self._drop()
            raise
        except Exception as exc:  # the user's optimizer code: W&B stops its scheduler too
            self._drop()
            why = f"sweep {self.sweep_id}: the scheduler's optimizer failed: {exc}"
            raise SweeperError(why) from exc

    def release(self) -> None:
        """Give the lease up now (an agent that exits), so the next process need not wait
        for it to lapse; nothing if another process holds it."""
        self._drop()
        with self.store.transaction() as tx:
            sweep = tx.lock_sweep(self.sweep_id)
            if sweep is not None and sweep.lease_holder == self.holder:
                tx.update_sweep(self.sweep_id, {"lease_holder": None, "lease_until": None})

    def _drop(self) -> None:
        """Forget the optimizer (rebuilt if this process holds the lease again), and give
        its library's log records back to the library."""
        if self._tenure is not None:
            self._tenure.restore_logs()
        self._tenure = None

    def _renewed_elsewhere(self) -> bool:
        """Whether another holder's lease, read with no lock, is as this process last found it
        held by the store and `lease` seconds have not passed since on this process's clock:
        then no write transaction is taken to find it held again (an agent that is not the
        holder asks every `every` seconds)."""
        peek = self.store.sweep(self.sweep_id)
        if peek is None or peek.lease_holder in (None, self.holder):
            return False
        mark, now = (peek.lease_holder, peek.lease_until), self.clock()
        if mark != self._seen:  # renewed since the last look (or a first look): ask the store
            self._seen, self._seen_at = mark, now
            return False
        return now - self._seen_at < self.lease

    def _take_lease(self) -> tuple[SweepRecord | None, bool]:
        """(the sweep, whether this process held the lease unbroken) once the lease is ours;
        (None, False) when another live holder has it or the sweep is over."""
        if self._renewed_elsewhere():
            self._drop()
            return None, False
        with self.store.transaction() as tx:
            sweep = tx.lock_sweep(self.sweep_id)
            if sweep is None:
                raise NotFoundError(f"no sweep {self.sweep_id!r} in {self.store.location}")
            if not is_scheduled(sweep.config) or sweep.state.over:
                if sweep.lease_holder == self.holder:
                    tx.update_sweep(self.sweep_id, {"lease_holder": None, "lease_until": None})
                self._drop()
                return None, False
            held = sweep.lease_holder == self.holder
            lapsed = sweep.lease_until is None or sweep.lease_until < tx.now
            if not held and sweep.lease_holder is not None and not lapsed:
                self._drop()
                return None, False
            tx.update_sweep(
                self.sweep_id, {"lease_holder": self.holder, "lease_until": tx.now + self.lease}
            )
        return sweep, held and self._tenure is not None

    def _histories(self, runs: Sequence[RunRecord], names: list[str]) -> dict[str, list[Any]]:
        """Run id -> its logged steps of the objective metrics, `_step` in each, in step
        order (what wandb-core samples into `history_metrics`)."""
        found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        if not runs or not names:
            return {}
        for run_id, step, *values in self.store.history_rows([r.id for r in runs], names):
            row = {name: value for name, value in zip(names, values, strict=True)}
            row = {name: value for name, value in row.items() if value is not None}
            if row:
                found.setdefault(run_id, []).append((step, {"_step": step, **row}))
        return {run_id: [row for _, row in sorted(rows)] for run_id, rows in found.items()}

    def _rebuild(self, sweep: SweepRecord, runs: Sequence[RunRecord]) -> _Tenure:
        """A new optimizer warm-started from the stored runs, as wandb-core's warm start does
        (`SchedulerTaskExchange._execute_warm_start`): a run the optimizer rejects is
        skipped, as there."""
        from wandb.sdk.sweeps.scheduler.optimizer import Run, RunConfig

        optimizer = build_optimizer(sweep, len(runs))
        tenure = _Tenure(optimizer, optimizer.route_library_logs(_library_handler()))
        ended = [run for run in runs if RunState(run.state).terminal]
        histories = self._histories(ended, objective_names(sweep.config))
        for run in runs:
            try:
                if RunState(run.state).terminal:
                    tenure.optimizer.tell_existing_finished_run(
                        self._with_metrics(run, histories.get(run.id, []))
                    )
                    tenure.told.add(run.id)
                    continue
                adopted = tenure.optimizer.tell_existing_active_run(
                    Run(
                        config=RunConfig.from_values(_flat(run.params)),
                        state=wandb_state(run.state),
                        wandb_run_id=run.id,
                    )
                )
            except Exception:  # wandb-core skips a run its optimizer rejects, and goes on
                continue
            if adopted is not None:
                tenure.ids[run.id] = str(adopted)
        engine = (scheduler_block(sweep.config) or {}).get("engine")
        self.say(
            f"sweep {sweep.id}: this process drives its {engine} scheduler now (optimizer"
            f" built from {len(runs)} stored runs, {len(tenure.ids)} in flight adopted)"
        )
        return tenure

    @staticmethod
    def _with_metrics(run: RunRecord, history: list[Any]) -> RunWithMetrics:
        from wandb.sdk.sweeps.scheduler.optimizer import RunConfig, RunWithMetrics

        return RunWithMetrics(
            config=RunConfig.from_values(_flat(run.params)),
            state=wandb_state(run.state),
            wandb_run_id=run.id,
            summary_metrics=dict(run.summary),
            history_metrics=history,
        )

    def _runs(self) -> tuple[list[RunRecord], int]:
        """(the runs a step needs, how many the sweep has): on a rebuild every run (one
        snapshot); after, the active ones (`Store.claim_view`, indexed) and the tracked ones
        that ended since the last step, one read each, so a step costs the same at 100 runs
        and at 10,000 apart from the optimizer's own work.

        Raises:
            NotFoundError: the sweep is gone.
        """
        gone = NotFoundError(f"no sweep {self.sweep_id!r} in {self.store.location}")
        tenure = self._tenure
        if tenure is None:
            snapshot = self.store.snapshot(self.sweep_id)
            if snapshot is None:
                raise gone
            return snapshot.runs, max((run.seq for run in snapshot.runs), default=0)
        view = self.store.claim_view(self.sweep_id)
        if view is None:
            raise gone
        active = {run.id for run in view.active}
        ended = [
            self.store.run(run_id)
            for run_id in tenure.ids
            if run_id not in active and run_id not in tenure.told
        ]
        runs = [*view.active, *(run for run in ended if run is not None)]
        return sorted(runs, key=lambda run: run.seq), view.total

    def _generation(self, sweep: SweepRecord) -> Step:
        runs, total = self._runs()
        tenure = self._tenure or self._rebuild(sweep, runs)
        self._tenure = tenure
        optimizer = tenure.optimizer

        # tell: the tracked runs that started, each ended one once
        updates = [
            run
            for run in runs
            if run.id in tenure.ids and run.id not in tenure.told and run.state != RunState.PENDING
        ]
        histories = self._histories(updates, objective_names(sweep.config))
        told: dict[str, RunWithMetrics] = {}
        for run in updates:
            data = self._with_metrics(run, histories.get(run.id, []))
            try:
                optimizer.tell_run(tenure.ids[run.id], data)
            except Exception:  # wandb-core stops tracking a run whose tell failed
                del tenure.ids[run.id]
                continue
            told[run.id] = data
            if RunState(run.state).terminal:
                tenure.told.add(run.id)

        # prune: the running runs just told, not yet marked. A pruned run is never offered
        # again; one running unmarked (requeued before its trial read the mark, and claimed
        # afresh) is marked again: W&B's scheduler keeps stopping it until the backend accepts.
        unmarked = [r for r in updates if r.state == RunState.RUNNING and not r.should_stop]
        candidates = [r for r in unmarked if r.id in told and r.id not in tenure.pruned]
        pruned = [r for r in unmarked if r.id in tenure.pruned]
        if candidates:
            chosen = set(
                optimizer.prune_runs(
                    [tenure.ids[run.id] for run in candidates],
                    [told[run.id] for run in candidates],
                )
            )
            pruned += [run for run in candidates if tenure.ids[run.id] in chosen]
            tenure.pruned.update(run.id for run in pruned)

        # terminate, else ask for what keeps batch_size in flight, within run_cap
        exhausted = bool(optimizer.should_terminate_sweep())
        alive = sum(1 for run in runs if run.state in ACTIVE)
        room = self.batch_size - alive
        run_cap = sweep.config.get("run_cap")
        if isinstance(run_cap, int):
            room = min(room, run_cap - total)
        suggestions: list[Any] = []
        asking = not exhausted and not sweep.exhausted and sweep.state == SweepState.RUNNING
        if asking and room > 0:
            asked = self._ask(sweep, optimizer, room, total)
            if asked is not None:  # None declines for now: asked again next step
                suggestions = list(asked)
                exhausted = not suggestions
        if isinstance(run_cap, int) and total + len(suggestions) >= run_cap:
            exhausted = True
        return self._commit(tenure, suggestions, pruned, exhausted)

    @staticmethod
    def _ask(sweep: SweepRecord, optimizer: Optimizer, n: int, total: int) -> list[Any] | None:
        """`ask_n_runs(n)`; for the wandb engine of a seeded sweep, one suggestion at a time,
        each drawn under the seed of the run it becomes (`sweeper.sweep.engine.seeded` with
        its seq): W&B's `sweeps` draws from generators that only `seeded` fixes, so the
        sweep's k-th run is the one a plain random sweep with that seed suggests k-th."""
        engine = (scheduler_block(sweep.config) or {}).get("engine")
        if engine != "wandb" or sweep.seed is None:
            asked = optimizer.ask_n_runs(n)
            return None if asked is None else list(asked)
        from sweeper.sweep.engine import seeded

        suggestions: list[Any] = []
        for k in range(total + 1, total + n + 1):
            with seeded(sweep.seed, k):
                asked = optimizer.ask_n_runs(1)
            if not asked:  # None declines, [] is spent: what was suggested so far stands
                return suggestions if suggestions or asked is not None else None
            suggestions.extend(asked)
        return suggestions

    def _commit(
        self,
        tenure: _Tenure,
        suggestions: list[Any],
        pruned: list[RunRecord],
        exhausted: bool,
    ) -> Step:
        """Insert the suggestions as pending runs and mark the pruned ones, if this process
        still holds the lease (else forget the suggestions and drop the optimizer)."""
        with self.store.transaction() as tx:
            sweep = tx.lock_sweep(self.sweep_id)
            if sweep is None or sweep.lease_holder != self.holder:
                for suggestion in suggestions:
                    tenure.optimizer.forget_run(suggestion.run_id)
                self._drop()
                return Step([], [], False)
            if sweep.state != SweepState.RUNNING:  # paused or over meanwhile
                for suggestion in suggestions:
                    tenure.optimizer.forget_run(suggestion.run_id)
                suggestions = []
            seq = tx.run_total(self.sweep_id)
            inserted = []
            for suggestion in suggestions:
                seq += 1
                params = suggestion.config.flat_dict()
                run = RunRecord(
                    id=new_id(),
                    sweep_id=self.sweep_id,
                    seq=seq,
                    params={name: {"value": value} for name, value in params.items()},
                    state=RunState.PENDING,
                    created_at=tx.now,
                )
                tx.insert_run(run)
                tenure.ids[run.id] = str(suggestion.run_id)
                inserted.append(run.id)
            marked = [
                run.id
                for run in pruned
                if tx.update_run(run.id, run.attempt, {"should_stop": True})
            ]
            if exhausted and not sweep.exhausted:
                tx.update_sweep(self.sweep_id, {"exhausted": True})
            if (exhausted or sweep.exhausted) and not tx.runs(self.sweep_id, ACTIVE):
                tx.update_sweep(self.sweep_id, {"state": SweepState.FINISHED})
            tx.update_sweep(self.sweep_id, {"lease_until": tx.now + self.lease})
        return Step(inserted, marked, exhausted or sweep.exhausted)


def _library_handler() -> logging.Handler:
    """Where the search library's log records go while it is the scheduler's (wandb's client
    routes them to its console the same way, `Optimizer.route_library_logs`): warnings and
    errors to stderr (an agent's log; launch's terminal), not each trial's INFO line, which
    would run through launch's progress bar."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("scheduler: %(message)s"))
    return handler


def _flat(params: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run's {name: {"value": v}} as the optimizer's flat {name: v}."""
    return {
        name: param["value"] if isinstance(param, Mapping) and "value" in param else param
        for name, param in params.items()
    }
