"""A small cluster on one machine, built from Linux network namespaces: PostgreSQL in one
namespace, N "nodes" in others, each node joined to the database's namespace by its own veth
pair, so a node reaches the server only over its link (cut it with `cut`, mend it with
`mend`). Nothing is placed in the root namespace's network: the test process itself talks to
the server over its Unix socket (a file; sockets on paths are not per network namespace).

Used by tests/test_cluster_netns.py and the benchmarks. Needs root and iproute2's `ip netns`
(`unavailable()` says why not); PostgreSQL's binaries as tests/postgres_server.py finds them.

Addresses: node i (1-based) is 10.77.i.2/30, and the server answers it at 10.77.i.1 (a
private range; every cluster lives in its own namespaces, so two at once do not collide).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from postgres_server import BIN, PASSWORD, ROLE, _as_postgres

PORT = 5432
"""The server's port on every link (each namespace has its own port space)."""


def unavailable() -> str | None:
    """Why a cluster cannot be built here (not root, no `ip netns`), else None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` (iproute2)"
    probe = f"swprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if not (BIN / "initdb").exists():
        return f"no PostgreSQL at {BIN}"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Node:
    name: str
    """Its network namespace."""
    index: int
    """1-based: its link is 10.77.index.0/30."""

    @property
    def address(self) -> str:
        return f"10.77.{self.index}.2"

    @property
    def server(self) -> str:
        """The database server's address as this node sees it (the far end of its link)."""
        return f"10.77.{self.index}.1"


@dataclass
class Cluster:
    db: str
    """The database's network namespace."""
    nodes: list[Node]
    folder: Path
    """The server's folder: data/, its log, its Unix socket."""
    superuser: str = "postgres"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, node: Node, dbname: str) -> str:
        """The store URL a node's agents get: over its link, no password (PGPASSWORD)."""
        return f"postgresql://{ROLE}@{node.server}:{PORT}/{dbname}"

    def local_url(self, dbname: str, password: bool = True) -> str:
        """The test's own URL, over the Unix socket (outside every node's link)."""
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{ROLE}{secret}@/{dbname}?host={self.folder}&port={PORT}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """SQL as the superuser over the Unix socket; its output."""
        result = subprocess.run(
            [
                str(BIN / "psql"),
                "-X",
                "-A",
                "-t",
                "-h",
                str(self.folder),
                "-p",
                str(PORT),
                "-U",
                self.superuser,
                "-d",
                dbname,
            ],
            input=sql,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def create_database(self, name: str) -> None:
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE};")

    def pg_dump(self, dbname: str) -> str:
        return subprocess.run(
            [
                str(BIN / "pg_dump"),
                "-h",
                str(self.folder),
                "-p",
                str(PORT),
                "-U",
                self.superuser,
                dbname,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def pg_ctl(self, *args: str) -> None:
        """`pg_ctl -w ARGS` inside the database's namespace (`restart -m fast`, ...)."""
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.db,
                *_as_postgres(
                    [
                        str(BIN / "pg_ctl"),
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.folder / "log"),
                        "-w",
                        *args,
                    ]
                ),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def cut(self, node: Node) -> None:
        """Take the node's link down (its end): packets to the server go nowhere."""
        _ip("-n", node.name, "link", "set", "dev", "eth0", "down")

    def mend(self, node: Node) -> None:
        _ip("-n", node.name, "link", "set", "dev", "eth0", "up")
        _ip("-n", node.name, "route", "replace", "default", "via", node.server)

    def spawn(
        self,
        node: Node,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        output: IO[bytes],
    ) -> subprocess.Popen[bytes]:
        """`argv` in the node's namespace (its own process group, ended by `close`).
        `ip netns exec` execs `argv` in place, so the Popen's pid is the program's."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", node.name, *argv],
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def close(self) -> None:
        """End every process it started (each one's group), the server, the namespaces (their
        veths go with them) and the server's folder."""
        for process in self.processes:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        with suppress(subprocess.CalledProcessError):
            self.pg_ctl("stop", "-m", "immediate")
        for name in [self.db, *(node.name for node in self.nodes)]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def netns_cluster(nodes: int = 3, prefix: str | None = None) -> Iterator[Cluster]:
    """Build the cluster (the server started, the test role made), yield it, tear it down.

    Args:
        nodes: How many node namespaces (at most 250).
        prefix: Namespace names' prefix (default: unique to this process).

    Raises:
        subprocess.CalledProcessError: an `ip` or PostgreSQL command failed.
    """
    prefix = prefix or f"sw{os.getpid()}"
    folder = Path(tempfile.mkdtemp(prefix="sweeper-netns-", dir="/var/tmp"))
    shutil.chown(folder, "postgres", "postgres")
    cluster = Cluster(
        f"{prefix}-db", [Node(f"{prefix}-n{i}", i) for i in range(1, nodes + 1)], folder
    )
    try:
        _ip("netns", "add", cluster.db)
        _ip("-n", cluster.db, "link", "set", "dev", "lo", "up")
        for node in cluster.nodes:
            _ip("netns", "add", node.name)
            _ip("-n", node.name, "link", "set", "dev", "lo", "up")
            # one veth pair per node, made straight into the two namespaces
            end = f"eth{node.index}"
            _ip(
                "-n",
                cluster.db,
                "link",
                "add",
                end,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                node.name,
            )
            _ip("-n", cluster.db, "addr", "add", f"{node.server}/30", "dev", end)
            _ip("-n", cluster.db, "link", "set", "dev", end, "up")
            _ip("-n", node.name, "addr", "add", f"{node.address}/30", "dev", "eth0")
            cluster.mend(node)
        _start_server(cluster)
        yield cluster
    finally:
        cluster.close()


def _start_server(cluster: Cluster) -> None:
    """initdb as the postgres user; the server listens on every link's far end and on its
    Unix socket; nodes log in with the role's password (scram), the superuser over the socket
    only."""
    subprocess.run(
        _as_postgres(
            [
                str(BIN / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                cluster.superuser,
                "-A",
                "trust",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    (cluster.data / "pg_hba.conf").write_text(
        f"local all {cluster.superuser} trust\n"
        "local all all scram-sha-256\n"
        "host all all 10.77.0.0/16 scram-sha-256\n"
    )
    listen = ",".join(node.server for node in cluster.nodes)
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '{listen}'\nport = {PORT}\n"
            f"unix_socket_directories = '{cluster.folder}'\nmax_connections = 300\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
    cluster.pg_ctl("start")
    cluster.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}';")
