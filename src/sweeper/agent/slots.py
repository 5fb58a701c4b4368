"""GPU slots: one trial per GPU, found without initialising CUDA in the agent.

The agent forks its trials; a parent that touched CUDA could not give its children a GPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from sweeper.errors import SweeperError


def visible_gpus() -> list[str]:
    """GPU ids this process may use, from CUDA_VISIBLE_DEVICES or nvidia-smi."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


GPU_ID = re.compile(r"^(\d+|(GPU|MIG)-[\w/-]+)$")
"""What CUDA_VISIBLE_DEVICES accepts: an index, or a GPU or MIG UUID."""


def parse_gpus(text: str | None) -> list[str]:
    """`--gpus 0,1` -> ['0', '1']; empty or None -> []."""
    gpus = [g.strip() for g in (text or "").split(",") if g.strip()]
    for gpu in gpus:
        if not GPU_ID.match(gpu):
            raise SweeperError(f"--gpus: {gpu!r} is not a GPU index or UUID (e.g. --gpus 0,1)")
    if len(set(gpus)) != len(gpus):
        raise SweeperError(f"--gpus: {text!r} names a GPU twice")
    return gpus


def threads_per_trial(cpus_per_trial: int | None, concurrent_trials: int) -> int:
    """The spec's agents.cpus_per_trial, else this machine's cores shared among the trials."""
    return cpus_per_trial or max(1, (os.cpu_count() or 1) // concurrent_trials)


def make_slots(gpus: list[str], gpus_per_trial: int = 1) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES value per slot; [None] (one CPU slot) without GPUs."""
    if not gpus or gpus_per_trial == 0:
        return [None]
    per = max(1, gpus_per_trial)
    if per > len(gpus):
        raise SweeperError(
            f"agents.gpus_per_trial is {per}, but only {len(gpus)} GPU(s) given: {','.join(gpus)}"
        )
    return [",".join(gpus[i : i + per]) for i in range(0, len(gpus) - per + 1, per)]
