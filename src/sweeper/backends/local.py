"""The embedded backend: one SQLite file (WAL) shared by every agent on the machine.

The sweep's rules (claim order, requeue, exhaustion, hyperband, fencing by attempt) are the
coordinator's (`sweeper.backends.coordinator`), over the SQLite store's primitives
(`sweeper.backends.sqlite`); this class is the Backend the agent, `launch`, `status` and the
report talk to. Claims are serialised by the store's write lock, so N agent processes never
get the same trial and never lose a result; a trial requeued behind its back (its agent's
heartbeat lapsed) can no longer write.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.backends import storejson
from sweeper.backends.base import Beat, Claim, LiveTrial, SweepRecord, WandbMode
from sweeper.backends.coordinator import Coordinator
from sweeper.backends.sqlite import (
    SqliteStore,
    StoreIdentity,
    json_field,
    sweep_record,
)
from sweeper.backends.store import new_id
from sweeper.errors import NotFoundError
from sweeper.sweep import ACTIVE, RunState, RunView, SweepState, key_paths
from sweeper.sweep.runtable import RunRow, run_table

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.backends.storesink import StoreSink

HISTORY_CHUNK = 900
"""Run ids per history query: under SQLite's bound-variable limit on every build."""


class LocalBackend:
    """The Backend over the SQLite store: the sweep's rules through `Coordinator`, records
    through `SqliteStore`. Open one per process (connections do not survive a fork)."""

    kind = "local"
    progress_every = 0.5

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        create: bool = True,
        readonly: bool = False,
        expect: StoreIdentity | None = None,
    ) -> None:
        """Open (or create) the store (see `SqliteStore` for the arguments and errors)."""
        self.store = SqliteStore(path, create=create, readonly=readonly, expect=expect)
        self.path = self.store.path
        self.db = self.store.db
        """The store's connection, for the reads below (the rules go through `coordinator`)."""
        self.coordinator = Coordinator(self.store)

    @property
    def identity(self) -> StoreIdentity | None:
        """Which store file this process opened (None when opened read-only)."""
        return self.store.identity

    def check_store(self) -> None:
        """Raise StoreLost unless the path still names the file this process opened, whole
        (`SqliteStore.check_store`)."""
        self.store.check_store()

    @property
    def where(self) -> str:
        return f"store {self.path}"

    @property
    def root(self) -> Path:
        """Where runs keep files (checkpoints, logs, wandb offline runs)."""
        return self.path.parent

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def close(self) -> None:
        self.store.close()

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
            )
            tx.insert_sweep(record)
        return sweep_id

    def sweep(self, sweep_id: str) -> SweepRecord:
        row = self.db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT * FROM sweeps WHERE study = ? ORDER BY stage DESC LIMIT 1", (sweep_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no sweep {sweep_id!r} in {self.path}")
        return sweep_record(row)

    def sweeps(self, study: str | None = None) -> list[SweepRecord]:
        if study is None:
            rows = self.db.execute("SELECT * FROM sweeps ORDER BY created_at").fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM sweeps WHERE study = ? ORDER BY stage", (study,)
            ).fetchall()
        return [sweep_record(row) for row in rows]

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        """The latest sweep made for this stage of this exact spec (of `study`, if given)."""
        row = self.db.execute(
            "SELECT * FROM sweeps WHERE spec_hash = ? AND stage = ?"
            " AND (? IS NULL OR study = ?) ORDER BY created_at DESC LIMIT 1",
            (spec_hash, stage, study, study),
        ).fetchone()
        return None if row is None else sweep_record(row)

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
        rows = self.db.execute(
            "SELECT state, COUNT(*) FROM runs WHERE sweep_id = ? GROUP BY state", (sweep_id,)
        ).fetchall()
        return {state: n for state, n in rows}

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

        backend = LocalBackend(self.path, create=False, expect=self.identity) if fork else self
        return StoreSink(backend, claim, sweep, wandb_mode, owned=fork)

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
        with self.store.write() as db:
            db.execute(
                "INSERT INTO slot_pools (scope, host, cpu_slots) VALUES (?, ?, ?)"
                " ON CONFLICT (scope, host) DO UPDATE SET cpu_slots = excluded.cpu_slots",
                (scope, host, cpu_slots),
            )

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
        """Lease one slot to `holder` until `timeout` seconds from now: all of `gpus`, or with
        none, the lowest free `cpu-k` within the pool (launch's count for this scope and host,
        else `cpu_slots`, else unbounded). Leases past their expiry are dropped first.

        Returns:
            The slot names leased, and the live holders in the way when that is [].
        """
        now = time.time()
        with self.store.write() as db:
            db.execute("DELETE FROM leases WHERE expires_at < ?", (now,))
            held = {
                row["slot"]: row["holder"]
                for row in db.execute(
                    "SELECT slot, holder FROM leases WHERE scope = ? AND host = ? AND holder != ?",
                    (scope, host, holder),
                )
            }
            if gpus:
                wanted = list(gpus)
                blocking = {held[gpu] for gpu in gpus if gpu in held}
            else:
                row = db.execute(
                    "SELECT cpu_slots FROM slot_pools WHERE scope = ? AND host = ?", (scope, host)
                ).fetchone()
                pool = row["cpu_slots"] if row is not None else cpu_slots
                k = next(k for k in itertools.count() if f"cpu-{k}" not in held)
                wanted = [f"cpu-{k}"]
                blocking = set()
                if pool is not None and k >= pool:
                    blocking = {h for slot, h in held.items() if slot.startswith("cpu-")}
            if blocking:
                return [], blocking
            db.executemany(
                "INSERT OR REPLACE INTO leases (scope, host, slot, holder, pid, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(scope, host, name, holder, pid, now + timeout) for name in wanted],
            )
        return wanted, set()

    def renew_leases(self, holder: str, timeout: float) -> set[str]:
        """Extend the holder's leases (its heartbeat); the slot names it still holds: one it
        let lapse may have gone to another agent."""
        with self.store.write() as db:
            db.execute(
                "UPDATE leases SET expires_at = ? WHERE holder = ?", (time.time() + timeout, holder)
            )
            rows = db.execute("SELECT slot FROM leases WHERE holder = ?", (holder,)).fetchall()
        return {row["slot"] for row in rows}

    def release_leases(self, holder: str, slots: list[str] | None = None) -> None:
        """Give up the holder's leases: all, or those of `slots`."""
        with self.store.write() as db:
            if slots is None:
                db.execute("DELETE FROM leases WHERE holder = ?", (holder,))
            else:
                marks = ",".join("?" * len(slots))
                db.execute(
                    f"DELETE FROM leases WHERE holder = ? AND slot IN ({marks})", (holder, *slots)
                )

    def live_leases(self, scope: str, host: str) -> dict[str, str]:
        """Slot name -> holder, for the unexpired leases of this scope on this host."""
        rows = self.db.execute(
            "SELECT slot, holder FROM leases WHERE scope = ? AND host = ? AND expires_at >= ?",
            (scope, host, time.time()),
        )
        return {row["slot"]: row["holder"] for row in rows}

    # reading --------------------------------------------------------------------------------

    def run_views(self, sweep_id: str) -> list[RunView]:
        """The engine's view of the sweep's runs, in order ([] for no such sweep)."""
        snapshot = self.store.snapshot(sweep_id)
        return [] if snapshot is None else [run.view() for run in snapshot.runs]

    def live_trials(self, sweep_id: str) -> list[LiveTrial]:
        """The running trials, in one query (a progress poll, twice a second)."""
        rows = self.db.execute(
            "SELECT r.id, r.agent, r.started_at, r.summary,"
            " (SELECT MAX(step) FROM history h WHERE h.run_id = r.id) AS step"
            " FROM runs r WHERE r.sweep_id = ? AND r.state = ? ORDER BY r.seq",
            (sweep_id, RunState.RUNNING),
        ).fetchall()
        now = time.time()
        return [
            LiveTrial(
                run_id=row["id"],
                agent=row["agent"],
                step=row["step"],
                summary=storejson.loads(row["summary"]),
                elapsed=max(0.0, now - (row["started_at"] or now)),
            )
            for row in rows
        ]

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no run {run_id!r} in {self.path}")
        out = dict(row)
        for key in ("params", "summary", "meta"):
            out[key] = storejson.loads(out[key])
        return out

    def runs(self, sweep_ids: str | list[str]) -> pd.DataFrame:
        """The run table (sweeper.sweep.runtable): one row per run, `config.*` and `summary.*`
        columns, as W&B gives."""
        ids = [sweep_ids] if isinstance(sweep_ids, str) else list(sweep_ids)
        marks = ",".join("?" * len(ids))
        configs = self.db.execute(
            f"SELECT config FROM sweeps WHERE id IN ({marks}) ORDER BY stage, created_at", ids
        ).fetchall()
        params = [name for (config,) in configs for name in key_paths(storejson.loads(config))]
        rows = self.db.execute(
            f"SELECT r.*, s.stage, s.stage_name FROM runs r JOIN sweeps s ON s.id = r.sweep_id"
            f" WHERE r.sweep_id IN ({marks}) ORDER BY s.stage, r.seq",
            ids,
        ).fetchall()
        now = time.time()
        return run_table((_run_row(row, now) for row in rows), params)

    def history(self, run_ids: list[str], metrics: list[str] | None = None) -> pd.DataFrame:
        """Per-step metrics of the given runs: columns run_id, _step, then one per metric.

        `metrics` picks those columns in SQL: at 10,000 runs, parsing every step is the slow part.
        """
        import pandas as pd

        picked = "metrics" if metrics is None else ", ".join(map(json_field, metrics))
        rows: list[Any] = []
        for start in range(0, len(run_ids), HISTORY_CHUNK):
            chunk = run_ids[start : start + HISTORY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(
                f"SELECT run_id, step, {picked} FROM history WHERE run_id IN ({marks})", chunk
            ).fetchall()
        if metrics is None:
            records = [{"run_id": r, "_step": s, **storejson.loads(m)} for r, s, m in rows]
            frame = pd.DataFrame.from_records(
                records, columns=None if records else ["run_id", "_step"]
            )
        else:
            frame = pd.DataFrame.from_records(
                [(r, s, *map(storejson.picked, vs)) for r, s, *vs in rows],
                columns=["run_id", "_step", *metrics],
            )
        return frame.sort_values(["run_id", "_step"], ignore_index=True)

    def logged_rows(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        """One run's history as logged, step by step: a key a row did not log is absent (in
        `history`'s table it is NaN, like a NaN the run did log)."""
        rows = self.db.execute(
            "SELECT step, metrics FROM history WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        return [(step, storejson.loads(metrics)) for step, metrics in rows]


def _run_row(row: sqlite3.Row, now: float) -> RunRow:
    """A `runs` row joined with its sweep's stage, for the run table; a running run's runtime
    counts up to `now`."""
    end = row["finished_at"] or (now if row["state"] == RunState.RUNNING else None)
    params = storejson.loads(row["params"])
    return RunRow(
        run_id=row["id"],
        sweep_id=row["sweep_id"],
        state=row["state"],
        created_at=row["created_at"],
        config={k: v["value"] for k, v in params.items()},
        summary=storejson.loads(row["summary"]),
        stage=row["stage"],
        stage_name=row["stage_name"],
        agent=row["agent"],
        attempts=row["attempt"],
        runtime=(end - row["started_at"]) if end and row["started_at"] else None,
        exit_code=row["exit_code"],
        error=row["error"],
    )
