"""The agent image for real: a Docker engine this test starts, an image built from the tree,
agent containers on a local sweep whose store is a mounted volume, and the bad inputs.

No registry image can be pulled here, so the base is a debootstrapped Debian (python3 from
apt) and uv comes from this machine's own binary; both go in as the Dockerfile's build args.
Runs as root (dockerd, debootstrap, chown), installing docker.io and debootstrap if missing.
Prints the image size, the full build time and the code-only rebuild time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, write_spec
from postgres_server import PASSWORD, PostgresServer
from test_launchers import IMAGE_UID, ROOT, children, ensure_commands
from wandb_server import WandbServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]  # builds an image, starts an engine

CLIENT = "/usr/bin/docker"  # Debian's client: its `docker build` has BuildKit built in
MIRROR = os.environ.get("SWEEPER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CONTEXT = ["pyproject.toml", "uv.lock", "README.md", "src", "docker", ".dockerignore"]
FAKE_KEY = "0123456789abcdef-planted-fake-wandb-key"


@dataclass
class Engine:
    root: Path
    env: dict[str, str]
    driver: str
    say: Callable[[str], None]

    def __call__(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        result = self.run(*args, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.stderr or result.stdout}")
        return result.stdout.strip()

    def run(self, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CLIENT, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **env},
        )

    def inspect(self, name: str, template: str) -> Any:
        return json.loads(self("inspect", "--format", f"{{{{json {template}}}}}", name))


@dataclass
class Image:
    name: str
    size: int
    build_s: float
    rebuild_s: float


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def start_dockerd(root: Path, driver: str) -> tuple[subprocess.Popen, dict[str, str]]:
    sock = root / "docker.sock"
    log = (root / f"dockerd-{driver}.log").open("w")
    command = [
        "dockerd", f"--storage-driver={driver}", "--iptables=false", "--bridge=none",
        f"--data-root={root / 'data'}", f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}", f"--host=unix://{sock}",
    ]  # fmt: skip
    daemon = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "1"}
    env.pop("DOCKER_CONFIG", None)
    deadline = time.monotonic() + 60
    while daemon.poll() is None and time.monotonic() < deadline:
        info = subprocess.run(
            [CLIENT, "info", "--format", "{{.Driver}}"], capture_output=True, text=True, env=env
        )
        if info.returncode == 0:
            if info.stdout.strip() == driver:
                return daemon, env
            break
        time.sleep(0.5)
    stop_dockerd(daemon)
    raise RuntimeError(f"dockerd with {driver}: " + (root / f"dockerd-{driver}.log").read_text())


def stop_dockerd(daemon: subprocess.Popen) -> None:
    if daemon.poll() is None:
        daemon.terminate()  # by pid: never anyone else's engine
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.fail("the Docker test starts its own dockerd: run it as root")
    ensure_commands({"dockerd": "docker.io", CLIENT: "docker.io", "debootstrap": "debootstrap"})
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def say(line: str) -> None:  # the measurements belong in CI's log, captured or not
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"[docker] {line}")

    # Not pytest's tmp_path: it keeps three old runs, and this folder holds gigabytes.
    root = Path(tempfile.mkdtemp(prefix="sweeper-docker-", dir="/var/tmp"))
    daemon = None
    try:
        errors = []
        # overlay2 where the kernel allows it (it does here), vfs (full copies) where not;
        # SWEEPER_DOCKER_STORAGE=vfs forces one.
        forced = os.environ.get("SWEEPER_DOCKER_STORAGE")
        for driver in [forced] if forced else ["overlay2", "vfs"]:
            try:
                daemon, env = start_dockerd(root, driver)
                break
            except RuntimeError as exc:
                errors.append(str(exc)[-2000:])
        else:
            pytest.fail("dockerd would not start:\n" + "\n".join(errors))
        say(f"dockerd pid {daemon.pid}, storage driver {driver}, data root {root}")
        yield Engine(root, env, driver, say)
    finally:
        if daemon is not None:
            ids = subprocess.run(
                [CLIENT, "ps", "-aq"], capture_output=True, text=True, env=env
            ).stdout.split()
            if ids:
                subprocess.run([CLIENT, "rm", "-f", *ids], capture_output=True, env=env)
            stop_dockerd(daemon)
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            if f" {root}/" in line:  # anything the engine left mounted
                subprocess.run(["umount", "-l", line.split()[1]], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def base_images(engine: Engine) -> tuple[str, str]:
    """A minimal Debian with python3 (the CUDA base stands in here) and an image with uv."""
    rootfs = engine.root / "rootfs"
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,ca-certificates",
            "bookworm",
            str(rootfs),
            MIRROR,
        ],
        check=True,
        capture_output=True,
    )
    # This machine's CA bundle: package downloads in the build go through the same network.
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / junk, ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        [CLIENT, "import", "-", "sweeper-test-base:bookworm"],
        stdin=tar.stdout,
        check=True,
        capture_output=True,
        env=engine.env,
    )
    assert tar.wait() == 0
    shutil.rmtree(rootfs)

    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names its own binary
    assert uv, "no uv binary"
    with tarfile.open(engine.root / "uv.tar", "w") as archive:
        archive.add(os.path.realpath(uv), arcname="uv")
    engine("import", str(engine.root / "uv.tar"), "sweeper-test-uv:local")
    return "sweeper-test-base:bookworm", "sweeper-test-uv:local"


def build(engine: Engine, context: Path, tag: str, base: str, uv: str) -> tuple[float, str]:
    started = time.monotonic()
    out = engine(
        "build",
        "--progress=plain",
        "--network=host",
        "-f",
        str(context / "docker" / "Dockerfile"),
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        f"UV_IMAGE={uv}",
        "-t",
        tag,
        str(context),
        timeout=1500,
    )
    return time.monotonic() - started, out


@pytest.fixture(scope="module")
def image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """Build from a snapshot of the tree, then again after a code-only change."""
    started = time.monotonic()
    base, uv = base_images(engine)
    engine.say(f"base images (debootstrap + import): {time.monotonic() - started:.0f} s")
    context = tmp_path_factory.mktemp("context")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=ignore)
        else:
            shutil.copy2(source, context / name)

    build_s, _ = build(engine, context, "sweeper-agent:first", base, uv)
    with (context / "src" / "sweeper" / "__init__.py").open("a") as init:
        init.write("# a code-only change\n")
    rebuild_s, _ = build(engine, context, "sweeper-agent:test", base, uv)

    first = engine.inspect("sweeper-agent:first", ".RootFS.Layers")
    second = engine.inspect("sweeper-agent:test", ".RootFS.Layers")
    size = engine.inspect("sweeper-agent:test", ".Size")
    engine.say(f"image {size / 1e9:.2f} GB in {len(second)} layers ({engine.driver})")
    engine.say(f"full build {build_s:.0f} s; after a code-only change {rebuild_s:.1f} s")
    # Everything below the project layer (the locked dependencies) is reused as it was.
    assert first[:-1] == second[:-1] and first[-1] != second[-1]
    assert rebuild_s < build_s / 3
    return Image("sweeper-agent:test", size, build_s, rebuild_s)


def make_store(directory: Path, spec: dict[str, Any], owner: int | None = IMAGE_UID) -> str:
    """A local sweep in directory/sweeper.db, owned by the image's user; the sweep id."""
    from sweeper.agent.launch import create_stage
    from sweeper.backends.local import LocalBackend
    from sweeper.spec.load import load_spec

    directory.mkdir(parents=True, exist_ok=True)
    db = LocalBackend(directory / "sweeper.db")
    try:
        sweep = create_stage(db, load_spec(write_spec(directory, spec)))
    finally:
        db.close()
    if owner is not None:
        for path in [directory, *directory.rglob("*")]:
            os.chown(path, owner, owner)
    return sweep


XOR = {
    "name": "docker",
    "project": "sweeper-docker",
    "trainer": "xor",
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "base": {"epochs": 2, "optim": {"name": "sgd", "lr": 0.1}},
    "search": {"model.depth": [0, 1], "model.width": [1, 2]},
    "repeats": 2,
    "agents": {"cpus_per_trial": 1},
}


def run_node(engine: Engine, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """agents/run-node.sh against this test's engine, with Debian's client as `docker`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "docker").exists():
        (bin_dir / "docker").symlink_to(CLIENT)
    return subprocess.run(
        ["bash", str(ROOT / "agents" / "run-node.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**engine.env, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
    )


def test_two_agent_containers_finish_every_trial_once(
    engine: Engine, image: Image, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    sweep = make_store(store, XOR)
    started = time.monotonic()
    launched = run_node(
        engine,
        tmp_path,
        *(sweep, "--cpu", "2", "--image", image.name, "--store", str(store), "--name", "two"),
        WANDB_API_KEY=FAKE_KEY,  # planted at run time only
    )
    assert launched.returncode == 0, launched.stderr
    names = [line.split()[1] for line in launched.stdout.splitlines() if line.startswith("started")]
    assert len(names) == 2, launched.stdout
    for name in names:
        code = engine("wait", name, timeout=600)
        logs = engine.run("logs", name).stdout + engine.run("logs", name).stderr
        assert code == "0", logs
        assert engine.inspect(name, ".RestartCount") == 0
        assert f"WANDB_API_KEY={FAKE_KEY}" in engine.inspect(name, ".Config.Env")
    engine.say(f"two agents ran {sweep} (8 trials) in {time.monotonic() - started:.0f} s")

    # Every file the agents wrote into the volume belongs to the image's user, not root.
    written = [p for p in store.rglob("*") if p.lstat().st_mtime > started]
    assert any(p.name == "output.log" for p in written) and any("wandb" in p.parts for p in written)
    owners = {p: p.lstat().st_uid for p in [store, *store.rglob("*")]}
    assert set(owners.values()) == {IMAGE_UID}, {p: u for p, u in owners.items() if u != IMAGE_UID}

    with sqlite3.connect(store / "sweeper.db") as db:
        rows = db.execute(
            "SELECT params, state, attempt, agent FROM runs WHERE sweep_id = ?", (sweep,)
        ).fetchall()
    assert len(rows) == 8 and len({params for params, *_ in rows}) == 8
    assert {(state, attempt) for _, state, attempt, _ in rows} == {("finished", 1)}
    per_container = Counter(agent.split("-")[0] for *_, agent in rows)
    engine.say(f"trials per container: {dict(per_container)}")

    # The key given at `docker run` is in no layer and no image setting.
    history = engine("history", "--no-trunc", image.name)
    assert FAKE_KEY not in history and "WANDB_API_KEY" not in history
    assert FAKE_KEY not in engine("image", "inspect", image.name)
    for name in names:
        engine("rm", name)


def test_an_agent_container_runs_a_w_and_b_sweep(
    engine: Engine, image: Image, tmp_path: Path, wandb_server: WandbServer
) -> None:
    """The container as a W&B agent: the stand-in W&B server listens on this machine's
    loopback, which the container shares (--network host); the key is given at run time."""
    from sweeper.agent.launch import create_stage
    from sweeper.backends.wandb import WandbBackend
    from sweeper.spec.load import load_spec

    store = tmp_path / "store"
    store.mkdir()
    os.chown(store, IMAGE_UID, IMAGE_UID)
    loaded = load_spec(write_spec(tmp_path, {**XOR, "repeats": 1}))
    backend = WandbBackend(store / "sweeper.db", entity="docker", project="sweeper-docker")
    path = create_stage(backend, loaded)
    result = engine.run(
        "run", "--rm", "--network", "host", "-v", f"{store}:/store",
        "-e", "WANDB_API_KEY", "-e", "WANDB_BASE_URL", "-e", "WANDB_ERROR_REPORTING=false",
        image.name, path, "--backend", "wandb", "--gpus", "",
        WANDB_API_KEY=wandb_server.api_key, WANDB_BASE_URL=wandb_server.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = wandb_server.sweeps.values()
    assert record.state == "FINISHED"
    runs = list({run.id: run for run in wandb_server.runs.values()}.values())
    points = sorted((run.config["model"]["depth"], run.config["model"]["width"]) for run in runs)
    assert points == [(0, 1), (0, 2), (1, 1), (1, 2)], "each grid point once"
    ends = [(run.state, run.exitcode, len(run.history)) for run in runs]
    assert ends == [("finished", 0, 2)] * 4, (ends, result.stdout)
    assert len(wandb_server.agents) == 1, "the container's one CPU slot, as one W&B agent"
    owners = {p.lstat().st_uid for p in [store, *store.rglob("*")]}
    assert owners == {IMAGE_UID}
    written = "\n".join(p.read_text(errors="replace") for p in store.rglob("*") if p.is_file())
    assert wandb_server.api_key not in written + result.stdout + result.stderr


def test_an_agent_container_on_a_postgresql_store_keeps_its_password_out_of_sight(
    engine: Engine, image: Image, postgres_server: PostgresServer, postgres_url: str
) -> None:
    """Issue 22: the container as an agent of a PostgreSQL store on this machine's loopback
    (--network host), the password given at run time as PGPASSWORD: it runs every trial, its
    healthcheck takes the PostgreSQL branch and says healthy, and neither the password nor a
    planted W&B key is in the image's history or settings, the container's command line or
    its output."""
    from sweeper.agent.launch import create_stage
    from sweeper.backends.local import LocalBackend
    from sweeper.spec.load import load_spec

    backend = LocalBackend(postgres_url)
    spec = probe_spec(base={"epochs": 8, "epoch_seconds": 0.5}, search={"x": [0.0, 1.0]})
    sweep = create_stage(backend, load_spec(write_spec(Path(tempfile.mkdtemp()), spec)))
    url = postgres_server.url(postgres_url.rsplit("/", 1)[1], password=False)
    name = "postgres-agent"
    engine.run(
        "run", "-d", "--name", name, "--network", "host",
        "--health-interval=1s", "--health-start-period=0s", "--health-retries=1",
        "-e", "PGPASSWORD", "-e", "WANDB_API_KEY",
        "-v", f"{ROOT / 'tests' / 'plugins'}:/plugins:ro",
        "-e", "SWEEPER_PLUGINS=testing_trainers", "-e", "PYTHONPATH=/plugins",
        image.name, sweep, "--store", url, "--wandb", "disabled", "--gpus", "",
        PGPASSWORD=PASSWORD, WANDB_API_KEY=FAKE_KEY,
    )  # fmt: skip
    try:
        wait_until(
            lambda: engine.inspect(name, ".State.Health.Status") == "healthy", 120, "healthy"
        )
        assert engine("wait", name, timeout=300) == "0"
        logs = engine.run("logs", name)
        table = backend.runs(sweep)
        assert sorted(table["config.x"]) == [0.0, 1.0] and set(table["state"]) == {"finished"}
        health = "\n".join(entry["Output"] for entry in engine.inspect(name, ".State.Health.Log"))
        seen = [
            engine("history", "--no-trunc", image.name),
            engine("image", "inspect", image.name),
            json.dumps(engine.inspect(name, ".Config.Cmd")),
            json.dumps(engine.inspect(name, ".Args")),
            logs.stdout + logs.stderr,
            health,
        ]
        assert not [text for text in seen if PASSWORD in text or FAKE_KEY in text]
        assert "PGPASSWORD" not in seen[0] and url in seen[2]
    finally:
        engine("rm", "-f", name, check=False)
        backend.close()


def test_image_runs_as_its_user_without_build_tools(engine: Engine, image: Image) -> None:
    out = engine(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image.name,
        "-c",
        "id -u; command -v uv || echo no-uv; sweeper trainers | grep -c xor",
    )
    assert out.splitlines() == [str(IMAGE_UID), "no-uv", "1"]
    health = engine.inspect(image.name, ".Config.Healthcheck")
    assert health["Test"] == ["CMD", "sweeper-healthcheck"]


def test_healthcheck_turns_unhealthy_when_heartbeats_stop(
    engine: Engine, image: Image, tmp_path: Path
) -> None:
    """Docker's own HEALTHCHECK machinery, sped up: healthy while the agent heartbeats its
    trial, unhealthy once the agent and its trial are frozen, healthy when they go on."""
    store = tmp_path / "store"
    sweep = make_store(store, probe_spec(base={"epochs": 60, "epoch_seconds": 0.5}))
    name = "health"
    engine(
        "run", "-d", "--name", name,
        "--health-interval=1s", "--health-start-period=0s", "--health-retries=1",
        "-v", f"{store}:/store", "-v", f"{ROOT / 'tests' / 'plugins'}:/plugins:ro",
        "-e", "SWEEPER_PLUGINS=testing_trainers", "-e", "PYTHONPATH=/plugins",
        image.name, sweep, "--count", "1", "--heartbeat-timeout", "6", "--wandb", "disabled",
        "--gpus", "",
    )  # fmt: skip
    try:

        def status() -> str:
            return engine.inspect(name, ".State.Health.Status")

        def running() -> bool:
            with sqlite3.connect(f"file:{store / 'sweeper.db'}?mode=ro", uri=True) as db:
                query = "SELECT count(*) FROM runs WHERE state = 'running'"
                return db.execute(query).fetchone()[0] == 1

        wait_until(running, 120, "a running trial")
        wait_until(lambda: status() == "healthy", 30, "healthy")
        agent = engine.inspect(name, ".State.Pid")  # the entrypoint execs the agent
        family = [agent, *children(agent)]
        for pid in family:
            os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: status() == "unhealthy", 30, "unhealthy")
        wait_until(
            lambda: "last heartbeat" in engine.inspect(name, ".State.Health.Log")[-1]["Output"],
            30,
            "the stale heartbeat named",
        )
        for pid in family:
            os.kill(pid, signal.SIGCONT)
        wait_until(lambda: status() == "healthy", 30, "healthy again")
    finally:
        engine("rm", "-f", name, check=False)


def test_unknown_sweep_is_one_line_and_stops_after_three_restarts(
    engine: Engine, image: Image, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    make_store(store, XOR)
    launched = run_node(
        engine, tmp_path, "nosuchsweep", "--cpu", "1", "--image", image.name,
        "--store", str(store), "--name", "bad",
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    name = launched.stdout.split()[1]
    wait_until(
        lambda: (
            engine.inspect(name, ".State.Status") == "exited"
            and engine.inspect(name, ".RestartCount") == 3
        ),
        180,
        "three restarts, then exited",
    )
    assert engine.inspect(name, ".State.ExitCode") == 2
    logs = engine.run("logs", name)
    lines = (logs.stdout + logs.stderr).splitlines()
    assert len(lines) == 4 and len(set(lines)) == 1, lines  # one line per attempt
    assert lines[0] == "error: no sweep 'nosuchsweep' in /store/sweeper.db"
    engine("rm", name)


def test_store_volume_not_writable_is_one_line(
    engine: Engine, image: Image, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    sweep = make_store(store, XOR, owner=None)  # root's, mode 755: uid 10001 cannot write
    result = engine.run("run", "--rm", "-v", f"{store}:/store", image.name, sweep)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"sweeper-agent: store /store/sweeper.db is not writable by uid {IMAGE_UID} (on the host:"
        f" chown -R {IMAGE_UID} on the volume, or run with --user matching its owner)"
    ]


def test_gpus_without_nvidia_runtime_is_one_line(
    engine: Engine, image: Image, tmp_path: Path
) -> None:
    # Asked inside the image: the pre-flight check, before any trial trains on the CPU.
    result = engine.run("run", "--rm", image.name, "s1", "--gpus", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "sweeper-agent: --gpus 0: no NVIDIA GPU is visible in this container (start it with"
        " `docker run --gpus ...` on a host with the NVIDIA Container Toolkit)"
    ]
    # Asked of the engine (run-node.sh pins each GPU): Docker refuses, run-node.sh stops.
    launched = run_node(engine, tmp_path, "s1", "--gpus", "0", "--image", image.name)
    assert launched.returncode != 0 and "started" not in launched.stdout
    assert "could not select device driver" in launched.stderr
