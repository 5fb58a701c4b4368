"""A real PostgreSQL server for the tests: Debian's `postgresql` package (15), started once per
test session by `initdb` + `pg_ctl` in a temporary folder, on a loopback port, and stopped at
the end. Each test gets a fresh database, copied from an empty template (fast), and a role with
a password, so that tests can check the password shows up nowhere.

initdb refuses to run as root: as root the server runs as the `postgres` user (`runuser`), in
a folder that user owns (not under pytest's 0700 temporary folders).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def _binaries() -> Path:
    """$SWEEPER_PG_BIN, else the newest of Debian's installed versions (15 on bookworm)."""
    if "SWEEPER_PG_BIN" in os.environ:
        return Path(os.environ["SWEEPER_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


BIN = _binaries()
"""Debian's PostgreSQL binaries (`apt-get install postgresql`; .ci/run installs it)."""

ROLE, PASSWORD = "sweeper", "pw-Zq8Xv3rT"
"""The role the tests connect as, and its password (a string no test output may contain)."""

_numbers = itertools.count()


@dataclass
class PostgresServer:
    host: str
    port: int
    superuser: str
    data: Path
    """Its data folder (what pg_ctl takes)."""

    def pg_ctl(self, *args: str) -> None:
        """`pg_ctl -w ARGS` on this server: `restart -m fast`, `stop -m fast`, `start`. The
        server it starts writes to the log file, not to our pipes (a capture would wait for it
        to end)."""
        log = str(self.data.parent / "log")
        subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def url(self, dbname: str, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{ROLE}{secret}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        result = subprocess.run(
            [str(BIN / "psql"), "-h", self.host, "-p", str(self.port), "-U", self.superuser],
            input=sql,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PGDATABASE": dbname},
        )
        return result.stdout

    def fresh_database(self) -> str:
        """A new empty database owned by the test role, from the template (milliseconds)."""
        name = f"t{os.getpid()}_{next(_numbers)}"
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE sweeper_template;")
        return name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def started_server() -> Iterator[PostgresServer]:
    """A throwaway server in a new temporary folder, stopped and deleted on exit (the test
    fixture's, and the benchmarks')."""
    folder = Path(tempfile.mkdtemp(prefix="sweeper-pg-", dir="/var/tmp"))
    superuser = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()
    subprocess.run(
        _as_postgres(
            [str(BIN / "initdb"), "-D", str(data), "-U", superuser, "-A", "trust", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    (data / "pg_hba.conf").write_text(
        # the superuser (the fixture's psql) is trusted; the test role must give its password
        f"host all {superuser} 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    )
    with (data / "postgresql.conf").open("a") as conf:  # kept across a test's restart
        conf.write(
            f"listen_addresses = '127.0.0.1'\nport = {port}\n"
            f"unix_socket_directories = '{folder}'\nmax_connections = 200\n"
            # a throwaway server: nothing need survive a crash
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
    server = PostgresServer("127.0.0.1", port, superuser, data)
    server.pg_ctl("start")
    try:
        server.psql(
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}';"
            f"CREATE DATABASE sweeper_template OWNER {ROLE};"
        )
        yield server
    finally:
        subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start one server for the session; stop it at the end."""
    if not (BIN / "initdb").exists():
        pytest.fail(f"no PostgreSQL at {BIN}: `apt-get install -y postgresql` (as .ci/run does)")
    with started_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh empty database for this test, as a URL with the role's password in it."""
    return postgres_server.url(postgres_server.fresh_database())
