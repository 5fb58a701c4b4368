"""Helpers shared by test modules: the `sweeper` command in a child process, and sweeps whose
trials are written through the store's API (claim, log, finish) instead of run by agents.

A test of what reads runs (report, compile --stage, the launch table, status, runs) spends its
time on that, not on starting agents that import torch and train: `fill_study` writes what
`launch` would have run, stage by stage, carrying each stage's best as `launch` does, so a
later `launch` of the same spec finds every stage complete and only prints.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from testing_trainers import ProbeConfig, probe_loss

from sweeper.agent.launch import create_stage, stage_carry
from sweeper.backends.base import SweepRecord
from sweeper.backends.local import LocalBackend
from sweeper.backends.store import new_id
from sweeper.spec.load import LoadedSpec
from sweeper.spec.paths import unflatten
from sweeper.sweep import SweepState

History = Callable[[dict[str, Any]], list[dict[str, float]]]
"""A trial's logged steps from its parameters (flat dotted names, as a claim gives them)."""


def sweeper(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real command in a child process (a fresh interpreter: imports, signals, exit codes).

    `env` adds to this process's environment; it does not replace it.
    """
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **env} if env is not None else None,
    )


def fill_sweep(
    backend: LocalBackend, sweep_id: str, history: History, agent: str = "test"
) -> list[tuple[str, dict[str, Any]]]:
    """Run every trial of a sweep through the store's API, as an agent records a trainer:
    each step logged, the last step the summary; the sweep is then finished, as `launch`
    marks it once its agents are done. Returns (run id, parameters) in claim order."""
    runs = []
    while (claim := backend.claim(sweep_id, agent)) is not None:
        steps = history(claim.params)
        for step, metrics in enumerate(steps):
            backend.log(claim.run_id, claim.attempt, step, metrics)
        backend.finish(claim.run_id, claim.attempt, "finished", steps[-1] if steps else {})
        runs.append((claim.run_id, claim.params))
    backend.set_sweep_state(sweep_id, "finished")
    return runs


def sweep_record(
    sweep_id: str, config: Mapping[str, Any], created_at: float = 0.0, **fields: Any
) -> SweepRecord:
    """A running sweep's record as a store keeps it, for a test that inserts one straight into
    a store (`Transaction.insert_sweep`); `fields` set any other column (trainer, state, seed)."""
    made: dict[str, Any] = {
        "id": sweep_id,
        "name": sweep_id,
        "project": "p",
        "trainer": "probe",
        "config": dict(config),
        "spec": {},
        "spec_hash": "h",
        "spec_path": None,
        "state": SweepState.RUNNING,
        "exhausted": False,
        "study": None,
        "stage": 0,
        "stage_name": None,
        "carried": {},
        "created_at": created_at,
    }
    return SweepRecord(**{**made, **fields})


def fill_study(backend: LocalBackend, loaded: LoadedSpec, history: History) -> list[str]:
    """Create and fill every stage of a spec as `launch` would run it (one study; stage k+1
    starts from base plus stage k's best, `sweeper.agent.launch.stage_carry`, under the first
    stage's seed); the sweep ids."""
    stages = loaded.spec.stage_list()
    study = new_id() if loaded.spec.stages else None
    carried: dict[str, Any] = {}
    sweep_ids = []
    seed = None  # the first stage's, drawn when it is made: a study's stages share one
    for index, stage in enumerate(stages):
        sweep_id = create_stage(backend, loaded, index, carried, study, seed)
        seed = backend.sweep(sweep_id).seed
        fill_sweep(backend, sweep_id, history)
        _, carried = stage_carry(backend, backend.sweep(sweep_id), stage, carried)
        sweep_ids.append(sweep_id)
    return sweep_ids


def probe_history(params: dict[str, Any]) -> list[dict[str, float]]:
    """What the probe trainer (tests/plugins/testing_trainers.py) logs: `loss` per epoch."""
    config = ProbeConfig.model_validate(unflatten(params))
    return [{"loss": probe_loss(config.x, epoch)} for epoch in range(config.epochs)]


def _fraction(*parts: object) -> float:
    """A fixed number in [0, 1) for these parts: as varied as training noise, the same on
    every run of the suite."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def xor_history(params: dict[str, Any]) -> list[dict[str, float]]:
    """Epochs shaped as the classify trainer logs them on xor (train_loss, val_loss, val_acc):
    each configuration has its own worth, each seed a little luck on top, and accuracy rises
    with the epochs, so tables, spreads, curves and importances have something to show."""
    config = sorted((k, v) for k, v in params.items() if k != "seed")
    worth, luck = _fraction(config), _fraction(sorted(params.items()))
    epochs = int(params["epochs"])
    steps = []
    for epoch in range(epochs):
        progress = (epoch + 1) / epochs
        val_acc = 0.5 + 0.4 * worth * progress + 0.05 * luck
        steps.append(
            {
                "train_loss": 0.7 * (1 - 0.8 * worth * progress),
                "val_loss": 0.7 * (1 - val_acc) + 0.1 * luck,
                "val_acc": val_acc,
            }
        )
    return steps
