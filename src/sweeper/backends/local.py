"""The store backend: sweeps in sweeper's own store, with no W&B server.

The store is one SQLite file (WAL) shared by every agent on the machine (the default), or a
PostgreSQL database shared by the agents of every node (`--store postgresql://...`). The
sweep's rules (claim order, requeue, exhaustion, hyperband, fencing by attempt) are the
coordinator's (`sweeper.backends.coordinator`), over the store's primitives
(`sweeper.backends.store`); this class is the Backend the agent, `launch`, `status` and the
report talk to, the same over either store. Claims are serialised by the sweep's lock, so N
agent processes never get the same trial and never lose a result; a trial requeued behind its
back (its agent's heartbeat lapsed) can no longer write.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.backends.base import Beat, Claim, LiveTrial, SweepRecord, WandbMode
from sweeper.backends.coordinator import Coordinator
from sweeper.backends.postgres import PostgresStore, is_url, looks_like_conninfo, masked
from sweeper.backends.sqlite import SqliteStore, StoreIdentity
from sweeper.backends.store import BackendStore, new_id
from sweeper.errors import NotFoundError, SweeperError
from sweeper.sweep import ACTIVE, RunState, RunView, SweepState, key_paths
from sweeper.sweep.runtable import run_table
from sweeper.sweep.seeds import draw_seed

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.backends.storesink import StoreSink


class LocalBackend:
    """The Backend over a store: the sweep's rules through `Coordinator`, records through
    `SqliteStore` or `PostgresStore`. Open one per process (connections do not survive a
    fork)."""

    kind = "local"
    progress_every = 0.5

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        create: bool = True,
        readonly: bool = False,
        expect: StoreIdentity | None = None,
        password: str | None = None,
        reopen: bool = False,
    ) -> None:
        """Open (or create) the store: a `postgresql://` URL names a PostgreSQL database (see
        `PostgresStore`; `password`: one a parent process read from its URL; `reopen`: a
        forked child's, which waits out a restarting server), anything else a SQLite file (see
        `SqliteStore` for the arguments and errors)."""
        self.sqlite: SqliteStore | None = None
        """The SQLite store, when that is the store (its file's identity and checks)."""
        self.store: BackendStore
        path = path or os.environ.get("SWEEPER_STORE") or None  # the variable may hold a URL
        if looks_like_conninfo(path):  # else a file named after it, password and all
            raise SweeperError(
                f"--store {masked(str(path))}: a libpq keyword string; give the server as"
                " postgresql://USER@HOST:PORT/DBNAME (the password in PGPASSWORD or ~/.pgpass)"
            )
        if is_url(path):
            self.postgres: PostgresStore | None = PostgresStore(
                str(path), create=create, password=password, reopen=reopen
            )
            self.store = self.postgres
            self.path = self.store.root
            """The SQLite store's file; with PostgreSQL, the folder of run files."""
        else:
            self.postgres = None
            self.sqlite = SqliteStore(path, create=create, readonly=readonly, expect=expect)
            self.store = self.sqlite
            self.path = self.sqlite.path
        self.coordinator = Coordinator(self.store)

    @property
    def identity(self) -> StoreIdentity | None:
        """Which store file this process opened (None when opened read-only, or for a
        PostgreSQL store, which a path cannot swap under it)."""
        return None if self.sqlite is None else self.sqlite.identity

    def check_store(self) -> None:
        """Raise StoreLost unless the path still names the file this process opened, whole
        (`SqliteStore.check_store`); nothing to check for a PostgreSQL store."""
        if self.sqlite is not None:
            self.sqlite.check_store()

    @property
    def location(self) -> str:
        """The store as messages name it: its path, or its URL with the password masked."""
        return self.store.location

    @property
    def store_arg(self) -> str:
        """The store as an agent started on it is given it (`--store`): a path, or the URL
        without its password (which goes in `child_env`, not on a command line)."""
        return str(self.path) if self.postgres is None else self.postgres.url

    def child_env(self) -> dict[str, str]:
        """Environment a process started on this store needs (a URL's password, as
        PGPASSWORD), beside `store_arg`."""
        return {} if self.postgres is None else self.postgres.child_env()

    @property
    def where(self) -> str:
        return f"store {self.location}"

    @property
    def root(self) -> Path:
        """Where runs keep files (checkpoints, logs, wandb offline runs)."""
        return self.store.root

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def close(self) -> None:
        self.store.close()

    @contextmanager
    def patience(self, wait: float) -> Iterator[None]:
        """Calls inside give up on an unreachable server after `wait` s (Unreachable) instead
        of the store's own wait: a running trial buffers its steps rather than stall on them.
        A SQLite file has no server: its calls are unchanged."""
        postgres = self.postgres
        if postgres is None:
            yield
            return
        before, postgres.wait = postgres.wait, wait
        try:
            yield
        finally:
            postgres.wait = before

    # sweeps ---------------------------------------------------------------------------------

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
        sweep_id = new_id()
        with self.store.transaction() as tx:
            record = SweepRecord(
                id=sweep_id,
                name=config.get("name", sweep_id),
                project=config.get("project", "sweeper"),
                trainer=trainer,
                config=dict(config),
                spec=dict(spec),
                spec_hash=spec_hash,
                spec_path=spec_path,
                state=SweepState.RUNNING,
                exhausted=False,
                study=study,
                stage=stage,
                stage_name=stage_name,
                carried=dict(carried or {}),
                created_at=tx.now,
                seed=draw_seed() if seed is None else seed,
            )
            tx.insert_sweep(record)
        return sweep_id

    def sweep(self, sweep_id: str) -> SweepRecord:
        found = self.store.sweep(sweep_id) or self.store.latest_stage(sweep_id)
        if found is None:
            raise NotFoundError(f"no sweep {sweep_id!r} in {self.location}")
        return found

    def sweeps(self, study: str | None = None) -> list[SweepRecord]:
        return self.store.sweeps(study)

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        """The latest sweep made for this stage of this exact spec (of `study`, if given)."""
        return self.store.find_stage(spec_hash, stage, study)

    def made_from(self, spec_path: str | os.PathLike[str], name: str | None) -> list[SweepRecord]:
        """The latest sweep (every stage, for a study) made from this spec file, else by name."""
        wanted = Path(spec_path).resolve()
        sweeps = self.sweeps()
        made = [s for s in sweeps if s.spec_path and Path(s.spec_path).resolve() == wanted]
        made = made or [s for s in sweeps if s.spec.get("name") == name]
        if not made:
            return []
        latest = made[-1]
        return self.sweeps(latest.study) if latest.study else [latest]

    def set_sweep_state(self, sweep_id: str, state: SweepState) -> SweepState:
        """Record the state; the coordinator applies it (see base.Backend.set_sweep_state)."""
        return self.coordinator.set_state(sweep_id, SweepState(state))

    def counts(self, sweep_id: str) -> dict[str, int]:
        return {str(state): n for state, n in self.store.run_counts(sweep_id).items()}

    def is_complete(self, sweep_id: str) -> bool:
        """Nothing left to hand out and nothing still running. A paused sweep is not complete
        (its agents wait for a resume); a finished or canceled one hands out nothing more, a
        requeued run included, so it is complete once no trial runs."""
        sweep, counts = self.sweep(sweep_id), self.counts(sweep_id)
        if sweep.state == SweepState.PAUSED:
            return False
        if sweep.state.over:
            return not counts.get(RunState.RUNNING, 0) and not counts.get(RunState.PENDING, 0)
        return sweep.exhausted and not any(counts.get(state, 0) for state in ACTIVE)

    # trials ---------------------------------------------------------------------------------

    def claim(self, sweep_id: str, agent: str, heartbeat_timeout: float = 60.0) -> Claim | None:
        """Hand the agent its next trial: a requeued one first, else the engine's next config
        (`Coordinator.claim`)."""
        return self.coordinator.claim(sweep_id, agent, heartbeat_timeout)

    def create_run(self, params: Mapping[str, Any], agent: str) -> Claim:
        """A run outside any sweep (`sweeper train`), already claimed."""
        return self.coordinator.create_run(params, agent)

    def heartbeat(self, run_id: str, attempt: int) -> Beat:
        """Keep a trial alive; `lost` when it is no longer ours (requeued elsewhere)."""
        return self.coordinator.heartbeat(run_id, attempt)

    def open_sink(
        self,
        claim: Claim,
        sweep: SweepRecord | None,
        *,
        wandb_mode: WandbMode = "disabled",
        fork: bool = True,
    ) -> StoreSink:
        """The store's sink for a claim (see base.Backend.open_sink). In a forked child it opens
        its own connection, to the same file or none (StoreLost)."""
        from sweeper.backends.storesink import StoreSink

        backend = self._reopen() if fork else self
        return StoreSink(backend, claim, sweep, wandb_mode, owned=fork)

    def _reopen(self) -> LocalBackend:
        """This store opened afresh (in a forked child): the same SQLite file or none
        (StoreLost), or the same database with the same password."""
        if self.postgres is not None:
            postgres = self.postgres
            return LocalBackend(postgres.url, create=False, password=postgres.password, reopen=True)
        return LocalBackend(self.path, create=False, expect=self.identity)

    def record_meta(self, run_id: str, attempt: int, meta: Mapping[str, Any]) -> None:
        self.coordinator.record_meta(run_id, attempt, meta)

    def log(self, run_id: str, attempt: int, step: int, metrics: Mapping[str, float]) -> bool:
        """Append one history step (replacing it when a resumed trial repeats the step)."""
        return self.coordinator.log(run_id, attempt, step, metrics)

    def should_stop(self, run_id: str) -> bool:
        """Apply early termination across the sweep now; True if this run must stop."""
        return self.coordinator.should_stop(run_id)

    def finish(
        self,
        run_id: str,
        attempt: int,
        state: RunState,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        """Record a terminal state (or `preempted`, which requeues). False if not ours."""
        return self.coordinator.finish(run_id, attempt, state, summary, exit_code, error)

    # slot leases (the rule: sweeper.agent.slots) --------------------------------------------

    def set_cpu_pool(self, scope: str, host: str, cpu_slots: int) -> None:
        """`launch` with N agents and no GPU: N CPU slots for this study on this host."""
        with self.store.transaction() as tx:
            tx.set_cpu_pool(scope, host, cpu_slots)

    def lease_slot(
        self,
        scope: str,
        host: str,
        gpus: list[str],
        *,
        holder: str,
        pid: int,
        timeout: float,
        cpu_slots: int | None = None,
    ) -> tuple[list[str], set[str]]:
        """Lease one slot to `holder` until `timeout` seconds from now (the store's clock): all
        of `gpus`, or with none, the lowest free `cpu-k` within the pool (launch's count for
        this scope and host, else `cpu_slots`, else unbounded). Leases past their expiry are
        dropped first.

        Returns:
            The slot names leased, and the live holders in the way when that is [].
        """
        with self.store.transaction() as tx:
            tx.lock_slots(scope, host)
            tx.drop_lapsed_leases()
            held = tx.held_slots(scope, host, holder)
            if gpus:
                wanted = list(gpus)
                blocking = {held[gpu] for gpu in gpus if gpu in held}
            else:
                pool = tx.cpu_pool(scope, host)
                pool = pool if pool is not None else cpu_slots
                k = next(k for k in itertools.count() if f"cpu-{k}" not in held)
                wanted = [f"cpu-{k}"]
                blocking = set()
                if pool is not None and k >= pool:
                    blocking = {h for slot, h in held.items() if slot.startswith("cpu-")}
            if blocking:
                return [], blocking
            tx.put_leases(scope, host, wanted, holder, pid, tx.now + timeout)
        return wanted, set()

    def renew_leases(self, holder: str, timeout: float) -> set[str]:
        """Extend the holder's leases (its heartbeat); the slot names it still holds: one it
        let lapse may have gone to another agent."""
        with self.store.transaction() as tx:
            return tx.renew_leases(holder, tx.now + timeout)

    def release_leases(self, holder: str, slots: list[str] | None = None) -> None:
        """Give up the holder's leases: all, or those of `slots`."""
        with self.store.transaction() as tx:
            tx.release_leases(holder, slots)

    def live_leases(self, scope: str, host: str) -> dict[str, str]:
        """Slot name -> holder, for the unexpired leases of this scope on this host."""
        return self.store.live_leases(scope, host)

    # reading --------------------------------------------------------------------------------

    def run_views(self, sweep_id: str) -> list[RunView]:
        """The engine's view of the sweep's runs, in order ([] for no such sweep)."""
        snapshot = self.store.snapshot(sweep_id)
        return [] if snapshot is None else [run.view() for run in snapshot.runs]

    def live_trials(self, sweep_id: str) -> list[LiveTrial]:
        """The running trials, in one query (a progress poll, twice a second)."""
        return self.store.live_trials(sweep_id)

    def run(self, run_id: str) -> dict[str, Any]:
        found = self.store.run_detail(run_id)
        if found is None:
            raise NotFoundError(f"no run {run_id!r} in {self.location}")
        return found

    def runs(self, sweep_ids: str | list[str]) -> pd.DataFrame:
        """The run table (sweeper.sweep.runtable): one row per run, `config.*` and `summary.*`
        columns, as W&B gives."""
        ids = [sweep_ids] if isinstance(sweep_ids, str) else list(sweep_ids)
        configs = self.store.sweep_configs(ids)
        params = [name for config in configs for name in key_paths(config)]
        return run_table(self.store.run_rows(ids), params)

    def history(self, run_ids: list[str], metrics: list[str] | None = None) -> pd.DataFrame:
        """Per-step metrics of the given runs: columns run_id, _step, then one per metric.

        `metrics` picks those columns in the store's query: at 10,000 runs, parsing every step
        is the slow part.
        """
        import pandas as pd

        rows = self.store.history_rows(run_ids, metrics)
        if metrics is None:
            records = [{"run_id": r, "_step": s, **m} for r, s, m in rows]
            frame = pd.DataFrame.from_records(
                records, columns=None if records else ["run_id", "_step"]
            )
        else:
            frame = pd.DataFrame.from_records(rows, columns=["run_id", "_step", *metrics])
        return frame.sort_values(["run_id", "_step"], ignore_index=True)

    def logged_rows(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        """One run's history as logged, step by step: a key a row did not log is absent (in
        `history`'s table it is NaN, like a NaN the run did log)."""
        return self.store.logged_rows(run_id)
