"""Shared fixtures: a private store per test, the probe trainer, real agent processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from postgres_server import postgres_server, postgres_url
from wandb_server import wandb_server

__all__ = ["postgres_server", "postgres_url", "wandb_server"]  # fixtures for every test module

PLUGINS = Path(__file__).parent / "plugins"
sys.path.insert(0, str(PLUGINS))
sys.path.insert(0, str(Path(__file__).parent))
os.environ["SWEEPER_PLUGINS"] = "testing_trainers"
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])
)
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store" / "sweeper.db"
    monkeypatch.setenv("SWEEPER_STORE", str(path))
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture
def backend(store: Path) -> Iterator[Any]:
    from sweeper.backends.local import LocalBackend

    db = LocalBackend(store)
    yield db
    db.close()


BACKENDS = ["sqlite", "postgresql", "wandb"]
"""Every backend the protocol suite runs over (tests/test_backend_protocol.py): the SQLite
store, the PostgreSQL store (a real server, tests/postgres_server.py), and the W&B backend
against the stand-in server (tests/wandb_server)."""


@pytest.fixture(params=BACKENDS)
def any_backend(request: pytest.FixtureRequest, store: Path) -> Iterator[Any]:
    """One backend of each kind in turn, empty, behind the Backend protocol."""
    if request.param in ("sqlite", "postgresql"):
        from sweeper.backends.local import LocalBackend

        where = store if request.param == "sqlite" else request.getfixturevalue("postgres_url")
        opened: Any = LocalBackend(where)
    else:
        from sweeper.backends.wandb import WandbBackend

        request.getfixturevalue("wandb_server")
        opened = WandbBackend(store, entity="standin", project="protocol")
    yield opened
    opened.close()


@pytest.fixture
def make_any_sweep(any_backend: Any, tmp_path: Path) -> Callable[..., str]:
    """`make_sweep` on `any_backend`: the spec's first sweep, created there; its id."""
    from sweeper.agent.launch import create_stage
    from sweeper.spec.load import load_spec

    def make(spec: dict[str, Any]) -> str:
        return create_stage(any_backend, load_spec(write_spec(tmp_path, spec)))

    return make


def write_spec(directory: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def make_sweep(backend: Any, tmp_path: Path) -> Callable[..., str]:
    """Validate and compile a spec dict, create its (first) sweep, return the sweep id."""
    from sweeper.agent.launch import create_stage
    from sweeper.spec.load import load_spec

    def make(spec: dict[str, Any]) -> str:
        return create_stage(backend, load_spec(write_spec(tmp_path, spec)))

    return make


def probe_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "probe",
        "trainer": "probe",
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "base": {"epochs": 3},
        "search": {"x": [0.0, 1.0, 2.0]},
    }
    spec.update(overrides)
    return spec


def start_agent(sweep_id: str, store: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeper",
            "agent",
            sweep_id,
            "--store",
            str(store),
            "--wandb",
            "disabled",
            "--threads",
            "1",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
