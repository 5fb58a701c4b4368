"""The store's schema version and the migrations that bring an older store up to it.

Both stores carry the version of the layout they were written with: SQLite in its header's
`PRAGMA user_version` (the slot SQLite keeps for exactly this), PostgreSQL in the one row of
a `schema_version` table. A store opened by this sweeper is

- new: made with today's tables (each store's SCHEMA) and stamped `VERSION`;
- older: brought up to `VERSION` by the steps below, all in the one transaction that stamps it
  (a failing step leaves the store as it was, at its old version);
- newer: refused in one line naming both versions (`too_new`), before anything is written.

A store with tables but no version is version 1: the layout every sweeper wrote before
versions existed (up to commit 040fa56; `tests/data/store-v1/sweeper.db` is one, made by that
code).

To change the layout: change both SCHEMAs (a new store is made at once in the new layout),
add a `Migration` for `VERSION + 1` that turns the previous layout into it on each database,
and bump `VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sweeper.errors import SweeperError

UNVERSIONED = 1
"""The version of a store that has tables but no version: written before versions existed."""

GRID_TABLES = (
    """CREATE TABLE IF NOT EXISTS grid_points (
    run_id TEXT PRIMARY KEY REFERENCES runs(id),
    sweep_id TEXT NOT NULL REFERENCES sweeps(id),
    point BIGINT NOT NULL          -- its number in the engine's grid (engine.Grid), -1 for none
)""",
    "CREATE INDEX IF NOT EXISTS grid_points_by_sweep ON grid_points (sweep_id, point)",
    """CREATE TABLE IF NOT EXISTS grid_walks (
    sweep_id TEXT PRIMARY KEY REFERENCES sweeps(id),
    next_point BIGINT NOT NULL,    -- every point below it is taken
    numbered_to INTEGER NOT NULL   -- every run of the sweep up to this seq is in grid_points
)""",
    # Partial: only a query that says `seq > 0` (a sweep's runs have 1, 2, ...) may use it, so
    # SQLite's planner never prefers it to runs_by_sweep for `state = ? ORDER BY seq`.
    "CREATE INDEX IF NOT EXISTS runs_by_seq ON runs (sweep_id, seq) WHERE seq > 0",
)
"""A grid sweep's taken points, kept beside the runs, and the index that finds a sweep's run
count (version 3); the same SQL on both stores, in their SCHEMAs too. Each statement is
idempotent (a store stamped older by hand in a test may already hold them)."""


SWEEP_COLUMNS_V4 = (
    ("seed", "INTEGER", "BIGINT"),  # the sweep's seed (seeds.seed_for); NULL: made before seeds
    ("lease_holder", "TEXT", "TEXT"),  # who holds the scheduler lease; NULL: nobody
    ("lease_until", "REAL", "DOUBLE PRECISION"),  # the lease's expiry, the store's clock
)
"""The sweep columns of version 4: (name, SQLite type, PostgreSQL type), in the SCHEMAs too.
SQLite has no `ADD COLUMN IF NOT EXISTS`: its store skips a step whose column is already there
(`is_duplicate_column`), so that, as for GRID_TABLES, a store stamped older by hand in a test
migrates."""


def is_duplicate_column(message: str) -> bool:
    """Whether SQLite refused an `ALTER TABLE ... ADD COLUMN` because the column exists (its
    error text, sqlite3's only report of it: "duplicate column name: seed")."""
    return message.startswith("duplicate column name")


@dataclass(frozen=True)
class Migration:
    """One step, from version `to - 1` to `to`: SQL statements for each database, run in order
    inside the opening transaction (so they must not commit on their own)."""

    to: int
    why: str
    """What changed, for the reader of this list."""
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        to=2,
        why="Sweep states became W&B's four (running, paused, finished, canceled): what older "
        "stores called `stopped` (their only writer sent it to W&B as CANCELED) is canceled.",
        sqlite=("UPDATE sweeps SET state = 'canceled' WHERE state = 'stopped'",),
        postgres=("UPDATE sweeps SET state = 'canceled' WHERE state = 'stopped'",),
    ),
    Migration(
        to=3,
        why="A claim reads no finished run (coordinator.py): a grid sweep's runs keep the "
        "point each takes (grid_points) and the sweep where its walk stands (grid_walks); the "
        "run count is the highest seq (runs_by_seq). An older store's runs get their points at "
        "the next claim of their sweep, so the step only makes the tables.",
        sqlite=GRID_TABLES,
        postgres=GRID_TABLES,
    ),
    Migration(
        to=4,
        why="Issue 23: a sweep keeps its seed (drawn once when it is made, so any sweep can be "
        "replayed; NULL for a sweep made before seeds) and the scheduler lease (which process "
        "drives its `scheduler:` engine, until when on the store's clock). Existing sweeps get "
        "NULL in all three.",
        sqlite=tuple(
            f"ALTER TABLE sweeps ADD COLUMN {name} {sqlite_type}"
            for name, sqlite_type, _ in SWEEP_COLUMNS_V4
        ),
        postgres=tuple(
            f"ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS {name} {postgres_type}"
            for name, _, postgres_type in SWEEP_COLUMNS_V4
        ),
    ),
)

VERSION = MIGRATIONS[-1].to if MIGRATIONS else UNVERSIONED
"""The layout this sweeper writes."""


def steps(found: int, database: str) -> list[str]:
    """The statements that bring a store at version `found` to `VERSION`, in order.

    Args:
        found: The store's version (`UNVERSIONED` when it has none).
        database: "sqlite" or "postgres".
    """
    return [
        statement
        for migration in MIGRATIONS
        if migration.to > found
        for statement in getattr(migration, database)
    ]


def too_new(location: str, found: int) -> SweeperError:
    """The one-line refusal of a store written by a newer sweeper (it may hold what this one
    would misread or overwrite)."""
    return SweeperError(
        f"{location}: store schema version {found} is newer than this sweeper's"
        f" (version {VERSION}); upgrade sweeper to open it"
    )
