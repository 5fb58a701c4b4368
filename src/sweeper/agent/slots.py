"""GPU slots: one trial per GPU, found without initialising CUDA in the agent.

The agent forks its trials; a parent that touched CUDA could not give its children a GPU.

Slot leases (the local store) keep a machine at one trial per slot however many agents run:

- A slot is a GPU (gpus_per_trial of them, leased together), or for an agent without GPUs one
  of the CPU slots `cpu-0` .. `cpu-(N-1)`. Leases are per study (else sweep) and host.
- N is the agent count (`--agents`, capped by `agents.max_parallel`) of the latest `launch`
  of that study on that host; with no launch, the spec's `agents.max_parallel`; with neither,
  unbounded: each agent started by hand adds a slot, as each `wandb agent` does.
- An agent runs trials only in slots it holds. `sweeper agent` by hand and every `launch`'s
  agents draw from the same pool: a second launch of a study joins the first, its agents take
  the free slots and wait (asking each second) for the held ones.
- The holder renews its leases with its trial heartbeat and releases them when it exits; a
  lease not renewed within the heartbeat timeout (the one that requeues trials) expires and
  goes to the next agent that asks.
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


def chosen_gpus(option: str | None) -> list[str]:
    """The GPUs a command uses: `--gpus` as given (`parse_gpus`; '' for CPU), else every
    visible one (`visible_gpus`).

    Raises:
        SweeperError: a `--gpus` entry that is not a GPU index or UUID, or one named twice.
    """
    return parse_gpus(option) if option is not None else visible_gpus()


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


def gpus_of(slot: str | None) -> list[str]:
    """The GPU ids a slot leases: '0,1' -> ['0', '1']; a CPU slot (None) -> []."""
    return slot.split(",") if slot else []


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
