"""The `wandb_server` pytest fixture: a fresh stand-in and an isolated wandb environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .server import WandbServer

# Variables that would leak another sweep, run or server into the test.
_CLEARED = (
    "WANDB_ENTITY",
    "WANDB_PROJECT",
    "WANDB_MODE",
    "WANDB_RUN_ID",
    "WANDB_RUN_GROUP",
    "WANDB_JOB_TYPE",
    "WANDB_RESUME",
    "WANDB_SWEEP_ID",
    "WANDB_SWEEP_PARAM_PATH",
    "WANDB_AGENT_ID",
    "WANDB_SERVICE",
    "WANDB_APP_URL",
    "WANDB_IDENTITY_TOKEN_FILE",
    "WANDB_CREDENTIALS_FILE",
)


@pytest.fixture
def wandb_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WandbServer]:
    """Start a stand-in W&B server and point the wandb client at it, and only at it."""
    import wandb

    home = tmp_path / "wandb-home"
    dirs = {
        "WANDB_DIR": home / "runs",
        "WANDB_CONFIG_DIR": home / "config",
        "WANDB_CACHE_DIR": home / "cache",
        "WANDB_DATA_DIR": home / "data",
        "WANDB_ARTIFACT_DIR": home / "artifacts",
        "HOME": home,
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(path))
    for name in _CLEARED:
        # setenv first so monkeypatch also removes what wandb sets during the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    # wandb reads ~/.netrc (or $NETRC) for keys; an empty one keeps the real one unused.
    netrc = home / ".netrc"
    netrc.touch(mode=0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    # No crash reports or version checks leave the machine.
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("WANDB_DISABLE_CODE", "true")
    monkeypatch.setenv("WANDB_SILENT", "true")

    # Runs crash after 60 s of silence, not W&B's 5 minutes: above wandb-core's 30 s
    # file_stream heartbeat (core/internal/filestream), so a live run never crashes here.
    server = WandbServer(crash_after_s=60.0).start()
    monkeypatch.setenv("WANDB_BASE_URL", server.url)
    monkeypatch.setenv("WANDB_API_KEY", server.api_key)
    # The wandb singleton caches settings from the environment; start from a clean one.
    wandb.teardown()
    try:
        yield server
    finally:
        wandb.teardown()
        server.stop()
        # Imported here: `python -m wandb_server.corpus` must find it not yet imported.
        from . import corpus

        if record := os.environ.get(corpus.RECORD_ENV):
            corpus.save(server.documents, Path(record))
