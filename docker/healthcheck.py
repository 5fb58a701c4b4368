#!/opt/venv/bin/python
"""Docker HEALTHCHECK for a sweeper agent container: exit 0 healthy, 1 unhealthy.

Healthy means more than "a process exists": the agent process is alive (not a zombie, not
stopped), its store folder is writable, and with the local backend the store answers and
every trial this agent holds has a heartbeat younger than half the agent's
--heartbeat-timeout (with a postgresql:// store, aged by the database's clock, as the agents
age them) (the agent beats every timeout/6 s, so that is three missed beats; a
trial's own epochs refresh it too). The agent's id in the store's `runs.agent` is
`{hostname}-{pid}-{random}/{slot}`, so its rows are found by this container's hostname and
the agent's pid.
Only the standard library (and psycopg for a PostgreSQL store): it runs every 30 s and must not
import torch.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
import time
from pathlib import Path

VALUE_OPTIONS = {"--store", "--gpus", "--count", "--wandb", "--heartbeat-timeout", "--grace"}
VALUE_OPTIONS |= {"--threads", "--backend", "--outage-limit", "--trial-timeout"}


def find_agent() -> tuple[int, list[str]] | None:
    """The lowest pid whose command line is `... sweeper agent ...` (trials are its forks)."""
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        names = [Path(a).name for a in argv[:3]]
        if "sweeper" in names and "agent" in argv[: names.index("sweeper") + 2]:
            return pid, argv[names.index("sweeper") + 2 :]
    return None


def options(args: list[str]) -> tuple[dict[str, str], list[str]]:
    found: dict[str, str] = {}
    positional: list[str] = []
    it = iter(args)
    for arg in it:
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            found[key] = value
        elif arg in VALUE_OPTIONS:
            found[arg] = next(it, "")
        elif not arg.startswith("-"):
            positional.append(arg)
    return found, positional


def started_at(pid: int) -> float:
    """The process's start time, unix seconds (trials claimed before it are not its own)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def mask(url: str) -> str:
    """The URL with a password it holds shown as ***."""
    scheme, _, rest = url.partition("://")
    user, at, host = rest.rpartition("@")
    return f"{scheme}://{user.split(':')[0]}:***@{host}" if at and ":" in user else url


def server_heartbeats(url: str, holder: str) -> tuple[list[tuple[str, float]], float]:
    """The running trials the agent `holder` holds in a PostgreSQL store, (id, heartbeat_at),
    and the database's clock, so a container whose clock is off still ages them as the
    agents do (the password from PGPASSWORD or ~/.pgpass, as libpq reads them).

    Raises:
        ImportError: the image lacks psycopg (the `postgres` extra).
        psycopg.Error: the server did not answer in 5 s, or refused.
    """
    import psycopg

    with psycopg.connect(url, connect_timeout=5, application_name="sweeper-healthcheck") as db:
        rows = db.execute(
            "SELECT id, heartbeat_at FROM runs WHERE state = 'running' AND agent LIKE %s",
            (holder,),
        ).fetchall()
        row = db.execute("SELECT extract(epoch from now())::float8").fetchone()
    return [(str(run), float(beat)) for run, beat in rows], float(row[0] if row else time.time())


def check() -> str | None:
    """None when healthy, else the reason."""
    agent = find_agent()
    if agent is None:
        return "no `sweeper agent` process"
    pid, args = agent
    opts, positional = options(args)
    where = opts.get("--store") or os.environ.get("SWEEPER_STORE") or ".sweeper/sweeper.db"
    server = where.startswith(("postgresql://", "postgres://"))
    store = Path(where)
    folder = Path(f"/proc/{pid}/cwd").resolve() / ".sweeper" if server else store.parent
    if not os.access(folder, os.W_OK):
        return f"{'run' if server else 'store'} folder {folder} is not writable"
    sweep = positional[0] if positional else ""
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    frozen = f"agent pid {pid} is in state {state}" if state in ("Z", "T", "t", "X") else None
    if opts.get("--backend") == "wandb" or sweep.count("/") == 2:
        return frozen  # W&B holds the heartbeats; nothing local to read
    timeout = float(opts.get("--heartbeat-timeout") or 60.0)
    since = started_at(pid)
    holder = f"{socket.gethostname()}-{pid}-%"
    if server:
        try:
            rows, now = server_heartbeats(where, holder)
        except Exception as exc:  # psycopg's errors, or no psycopg
            return f"store {mask(where)}: {' '.join(str(exc).split())[:200]}"
    else:
        try:
            db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
            rows = db.execute(
                "SELECT id, heartbeat_at FROM runs WHERE state = 'running' AND agent LIKE ?",
                (holder,),
            ).fetchall()
            db.close()
        except sqlite3.Error as exc:
            return f"store {store}: {exc}"
        now = time.time()
    stale = [
        (run, now - beat) for run, beat in rows if beat >= since - 1 and now - beat > timeout / 2
    ]
    if stale:
        run, age = max(stale, key=lambda item: item[1])
        return f"trial {run}: last heartbeat {age:.0f} s ago (timeout {timeout:.0f} s)"
    return frozen


if __name__ == "__main__":
    reason = check()
    print(reason or "healthy")
    sys.exit(1 if reason else 0)
