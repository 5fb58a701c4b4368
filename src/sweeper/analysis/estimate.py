"""What a launch will cost, before it runs: trials per stage, and their time on this machine.

The time comes from a probe: one trial of the first stage's first configuration, run by the
trainer's own code in a child process (as an agent runs it: same threads, same device), for a
few seconds of epochs, then scaled to the configured epochs. Nothing is written to the store;
the probe's checkpoints go to a temporary folder that is removed.

The child is this module: `python -m sweeper.analysis.estimate` reads a JSON request on stdin
and writes one JSON line (the timings, or the error) on the stdout it started with.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.errors import SweeperError
from sweeper.spec.load import LoadedSpec, representative_values
from sweeper.spec.models import as_distribution

PROBE_SECONDS = 3.0
"""The probe stops at the first epoch end past this (at least two epochs, for a per-epoch time
that leaves out the first epoch's warm-up), or when the trial ends."""
PROBE_TIMEOUT = 900.0
"""A probe still running after this is killed: a single epoch longer than this is refused."""


@dataclass(frozen=True)
class Probe:
    """Timings of one probe trial (seconds)."""

    setup_s: float
    """Building model and data, before the first epoch, and what follows the last one."""
    epoch_s: float
    """One epoch (the mean over the epochs after the first, when there are several)."""
    epochs_run: int
    epochs: int
    """The configured epochs of the probed configuration."""
    device: str
    gpu: bool
    threads: int

    def trial_s(self, epochs: float) -> float:
        """A trial of `epochs` epochs of the probed configuration."""
        return self.setup_s + epochs * self.epoch_s


@dataclass(frozen=True)
class StageCost:
    name: str
    trials: int | None
    """Planned trials (grid size x repeats, or run_cap); None: unbounded."""
    epochs: float
    """Epochs a trial of this stage runs (the mean when `epochs` is swept)."""
    trial_s: float


@dataclass(frozen=True)
class Estimate:
    probe: Probe
    stages: list[StageCost]
    agents: int
    gpus_per_trial: int

    def wall_s(self, stage: StageCost) -> float | None:
        """The stage's wall time with the agents running trials side by side."""
        if stage.trials is None:
            return None
        return math.ceil(stage.trials / self.agents) * stage.trial_s

    def device_hours(self, stage: StageCost) -> float | None:
        """GPU-hours (trial time x GPUs per trial) or CPU core-hours (x threads per trial)."""
        if stage.trials is None:
            return None
        per = max(1, self.gpus_per_trial) if self.probe.gpu else self.probe.threads
        return stage.trials * stage.trial_s * per / 3600

    def lines(self) -> list[str]:
        """The estimate as printed by `launch --estimate` and `validate --estimate`."""
        p, agents = self.probe, self.agents
        unit = "GPU-hours" if p.gpu else "CPU core-hours"
        lines = [
            f"estimate: a probe ran {p.epochs_run} of {p.epochs} epochs of the first "
            f"configuration on {p.device}, {p.threads} thread{'s' if p.threads != 1 else ''}: "
            f"{_duration(p.setup_s)} setup + {_duration(p.epoch_s)} an epoch"
        ]
        total_wall, total_hours, bounded = 0.0, 0.0, True
        for stage in self.stages:
            each = f"{_duration(stage.trial_s)} a trial ({stage.epochs:g} epochs)"
            wall, hours = self.wall_s(stage), self.device_hours(stage)
            if stage.trials is None or wall is None or hours is None:
                bounded = False
                lines.append(f"  {stage.name}: unbounded (no run_cap), {each}")
                continue
            total_wall += wall
            total_hours += hours
            lines.append(
                f"  {stage.name}: {stage.trials} trial{'s' if stage.trials != 1 else ''} x "
                f"{each} = {_duration(wall)}, {hours:.2f} {unit}"
            )
        if len(self.stages) > 1 and bounded:
            lines.append(f"  total: {_duration(total_wall)}, {total_hours:.2f} {unit}")
        side = "side by side, none slowing another" if agents > 1 else "one trial at a time"
        lines.append(
            f"assumes: {agents} agent{'s' if agents != 1 else ''} ({side}); every trial costs "
            "what the probed one does, scaled by its epochs; none stops early or fails; agent "
            "start-up and per-trial bookkeeping not counted"
        )
        return lines


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def stage_epochs(first: Mapping[str, Any], search: Mapping[str, Any]) -> float:
    """Epochs a stage's trials run: the first configuration's, or the mean of the swept values
    (a list's mean, a range's midpoint)."""
    if "epochs" not in search:
        return float(first["epochs"])
    values = representative_values(as_distribution(search["epochs"]))
    return sum(values) / len(values)


def estimate(
    loaded: LoadedSpec,
    agents: int,
    threads: int,
    gpu_slot: str | None,
    seconds: float = PROBE_SECONDS,
) -> Estimate:
    """Probe one trial, then cost every stage.

    Args:
        agents: how many agents the launch would run side by side.
        threads: CPU threads each trial gets (agents.cpus_per_trial, else cores / agents).
        gpu_slot: CUDA_VISIBLE_DEVICES of the probe (the launch's first slot), or None.

    Raises:
        SweeperError: the probe trial failed (its reason), or outran PROBE_TIMEOUT.
    """
    from sweeper.spec.compile import compile_spec
    from sweeper.spec.preflight import first_config
    from sweeper.sweep import planned_trials
    from sweeper.trainers.registry import get_trainer

    spec = loaded.spec
    model = get_trainer(spec.trainer).config_model()
    stages = spec.stage_list()
    firsts = [model.model_validate(first_config(spec.base, s.search)) for s in stages]
    probe = run_probe(spec.trainer, firsts[0].model_dump(mode="json"), threads, gpu_slot, seconds)
    costs = []
    for stage, config, first in zip(stages, compile_spec(spec, loaded.path), firsts, strict=True):
        epochs = stage_epochs(first.model_dump(), stage.search)
        costs.append(StageCost(stage.name, planned_trials(config), epochs, probe.trial_s(epochs)))
    return Estimate(probe, costs, agents, spec.agents.gpus_per_trial)


def estimate_launch(loaded: LoadedSpec, agents: int | None, gpus: list[str]) -> Estimate:
    """`--estimate`: the estimate for the agents `sweeper launch` would run with these options:
    `agent_count` agents over the GPU slots, each trial with agents.cpus_per_trial threads (else
    the cores shared), the probe on the first slot.

    Args:
        agents: `--agents`, or None for launch's default.
        gpus: the GPU ids the launch would use (`chosen_gpus`); [] for CPU.

    Raises:
        SweeperError: fewer GPUs than agents.gpus_per_trial (`make_slots`), or as `estimate`.
    """
    from sweeper.agent.launch import agent_count
    from sweeper.agent.slots import make_slots, threads_per_trial

    slots = make_slots(gpus, loaded.agents.gpus_per_trial)
    n_agents = agent_count(loaded, agents, slots)
    threads = threads_per_trial(loaded.agents.cpus_per_trial, n_agents)
    return estimate(loaded, n_agents, threads, slots[0])


def run_probe(
    trainer: str, config: dict[str, Any], threads: int, gpu_slot: str | None, seconds: float
) -> Probe:
    """Run the probe child and read its timings.

    A child process (`python -m sweeper.analysis.estimate`) trains `config` on `gpu_slot`
    (None: CPU) with `threads` torch threads for about `seconds` of epochs, and prints its
    timings as one JSON line.

    Raises:
        SweeperError: the probe ran past PROBE_TIMEOUT seconds, or failed (its error, else its
            last stderr line, else its exit code).
    """
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = gpu_slot or ""
    env["OMP_NUM_THREADS"] = str(threads)
    request = {"trainer": trainer, "config": config, "threads": threads, "seconds": seconds}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sweeper.analysis.estimate"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            env=env,
            timeout=PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise SweeperError(
            f"estimate: the probe trial ran past {PROBE_TIMEOUT:.0f} s without finishing an "
            "epoch; a trial of the first configuration takes longer than that"
        ) from None
    lines = done.stdout.strip().splitlines()
    answer = json.loads(lines[-1]) if lines else {}
    if "error" in answer or "setup_s" not in answer:
        tail = done.stderr.strip().splitlines()
        why = answer.get("error") or (tail[-1] if tail else f"exit code {done.returncode}")
        raise SweeperError(f"estimate: the probe trial failed: {why}")
    return Probe(**answer)


class _Timer:
    """The probe's Logger: times each epoch's end, stops once the probe has seen enough."""

    def __init__(self, run_dir: Path, seconds: float) -> None:
        self.run_dir: Path | None = run_dir
        self.seconds = seconds
        self.start = time.perf_counter()
        self.ends: list[float] = []

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.ends.append(time.perf_counter())

    def log_batch(self, metrics: Mapping[str, float], batch: int) -> None:
        pass

    def log_images(self, name: str, paths: Sequence[Path], step: int) -> None:
        pass

    def should_stop(self) -> bool:
        return len(self.ends) >= 2 and self.ends[-1] - self.start >= self.seconds


def _probe_child(request: dict[str, Any]) -> dict[str, Any]:
    """One trial of the requested config under a timing logger, as an agent's child runs it."""
    import torch

    from sweeper.trainers.common.device import describe, select_device
    from sweeper.trainers.registry import get_trainer

    torch.set_num_threads(request["threads"])
    info = get_trainer(request["trainer"])
    config = info.config_model().model_validate(request["config"])
    device = select_device(config.device)
    train = info.train_fn()  # imported before the clock starts, as an agent's child has it
    importlib.import_module("torch._dynamo")  # the first optimizer's lazy import (agent.loop)
    with tempfile.TemporaryDirectory(prefix="sweeper-probe-") as run_dir:
        timer = _Timer(Path(run_dir), request["seconds"])
        train(config, timer)
        end = time.perf_counter()
    if not timer.ends:
        raise SweeperError("the trainer logged no epoch")
    k = len(timer.ends)
    epoch = (timer.ends[-1] - timer.ends[0]) / (k - 1) if k > 1 else timer.ends[0] - timer.start
    return {
        "setup_s": max(0.0, end - timer.start - k * epoch),
        "epoch_s": epoch,
        "epochs_run": k,
        "epochs": config.epochs,
        "device": describe(device),
        "gpu": device.type == "cuda",
        "threads": request["threads"],
    }


def main() -> int:
    """The probe child: the trainer's prints go to stderr, the one JSON line to stdout."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        answer = _probe_child(json.loads(sys.stdin.read()))
    except Exception as exc:  # the reason goes back to the parent as one line
        why = str(exc) if isinstance(exc, SweeperError) else f"{type(exc).__name__}: {exc}"
        answer = {"error": (why.splitlines() or [type(exc).__name__])[0]}
    out.write(json.dumps(answer) + "\n")
    out.flush()
    return 1 if "error" in answer else 0


if __name__ == "__main__":
    sys.exit(main())
