"""What reproduces a run, recorded with it: config, seed, spec hash, code version, device."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from importlib import metadata
from typing import Any

from pydantic import BaseModel


def git_commit(cwd: str = ".") -> dict[str, Any] | None:
    """HEAD of the working directory's repository and whether it had local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _version(package: str) -> str | None:
    """From package metadata: importing torchvision just to ask costs seconds."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def static_provenance() -> dict[str, Any]:
    """What every trial of this process shares: code version, library versions, host. Cached,
    so an agent pays for `git` once and its forked trials not at all."""
    return {
        "git": git_commit(),
        "versions": {
            "python": platform.python_version(),
            **{name: _version(name) for name in ("torch", "torchvision", "sweeper")},
        },
        "host": socket.gethostname(),
    }


def provenance(config: BaseModel, spec_hash: str | None, device: str) -> dict[str, Any]:
    return {
        "config": config.model_dump(mode="json"),
        "seed": getattr(config, "seed", None),
        "spec_hash": spec_hash,
        **static_provenance(),
        "device": device,
    }
