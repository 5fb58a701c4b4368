"""`sweeper launch`: create the sweep (or each stage of a study), run agents, carry the best on."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.agent.slots import make_slots, threads_per_trial
from sweeper.agent.tracking import WandbMode
from sweeper.backends.controller import ACTIVE, best_run
from sweeper.backends.local import LocalBackend, SweepRecord, new_id
from sweeper.errors import SweeperError
from sweeper.report.tables import best_config, swept_params
from sweeper.spec.compile import carried_config, compile_stage
from sweeper.spec.load import LoadedSpec, grid_size


@dataclass
class Progress:
    """A snapshot for the progress bar."""

    sweep: SweepRecord
    counts: dict[str, int]
    total: int | None
    best: float | None

    @property
    def done(self) -> int:
        return sum(n for state, n in self.counts.items() if state not in ACTIVE)


@dataclass
class StageResult:
    sweep: SweepRecord
    best_config: dict[str, Any] | None


def planned_trials(config: dict[str, Any]) -> int | None:
    """How many trials the sweep will run, when that is known up front."""
    cap = config.get("run_cap")
    if config["method"] == "grid":
        size = grid_size(config["parameters"])  # seed is among them: repeats are counted
        return min(size, cap) if cap else size
    return cap


def _agent_command(
    sweep_id: str,
    store: Path,
    slot: str | None,
    wandb_mode: WandbMode,
    heartbeat_timeout: float,
    threads: int,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sweeper",
        "agent",
        sweep_id,
        "--store",
        str(store),
        "--gpus",
        slot or "",
        "--wandb",
        wandb_mode,
        "--threads",
        str(threads),
        "--heartbeat-timeout",
        str(heartbeat_timeout),
    ]


def run_agents(
    backend: LocalBackend,
    sweep: SweepRecord,
    n_agents: int,
    slots: list[str | None],
    *,
    wandb_mode: WandbMode,
    heartbeat_timeout: float,
    on_progress: Callable[[Progress], None],
) -> None:
    """Start the agent processes for one sweep and report progress until they all exit."""
    logs = backend.root / "agents"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    threads = threads_per_trial(sweep.spec["agents"].get("cpus_per_trial"), n_agents)
    for i in range(n_agents):
        slot = slots[i % len(slots)]
        with open(logs / f"{sweep.id}-{i}.log", "ab") as log:
            processes.append(
                subprocess.Popen(
                    _agent_command(
                        sweep.id, backend.path, slot, wandb_mode, heartbeat_timeout, threads
                    ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    total = planned_trials(sweep.config)
    metric, goal = sweep.metric
    try:
        while any(p.poll() is None for p in processes):
            on_progress(_snapshot(backend, sweep, total, metric, goal))
            time.sleep(0.5)
    except KeyboardInterrupt:
        for p in processes:  # they got the same Ctrl-C; let them requeue their trials
            p.wait()
        raise
    on_progress(_snapshot(backend, sweep, total, metric, goal))
    failed = [p.returncode for p in processes if p.returncode]
    if failed and not backend.is_complete(sweep.id):
        raise SweeperError(
            f"sweep {sweep.id}: agents exited with codes {failed} before it completed; "
            f"see {logs}/{sweep.id}-*.log"
        )


def _snapshot(
    backend: LocalBackend, sweep: SweepRecord, total: int | None, metric: str, goal: str
) -> Progress:
    best = best_run(backend.run_views(sweep.id), metric, goal)
    return Progress(sweep, backend.counts(sweep.id), total, best[1] if best else None)


def launch(
    loaded: LoadedSpec,
    backend: LocalBackend,
    *,
    agents: int | None = None,
    gpus: list[str] | None = None,
    wandb_mode: WandbMode = "offline",
    heartbeat_timeout: float = 60.0,
    on_stage: Callable[[SweepRecord], None] = lambda sweep: None,
    on_progress: Callable[[Progress], None] = lambda progress: None,
) -> list[StageResult]:
    """Run every stage to completion; stage k+1 starts from base plus stage k's best."""
    spec = loaded.spec
    slots = make_slots(gpus or [], spec.agents.gpus_per_trial)
    n_agents = agents or len(slots)
    if spec.agents.max_parallel:
        n_agents = min(n_agents, spec.agents.max_parallel)
    study = new_id() if spec.stages else None
    carried: dict[str, Any] = {}
    results: list[StageResult] = []
    for index, stage in enumerate(spec.stage_list()):
        config = compile_stage(spec, index, carried, loaded.path)
        sweep_id = backend.create_sweep(
            config,
            trainer=spec.trainer,
            spec=spec.model_dump(mode="json"),
            spec_hash=loaded.hash,
            spec_path=loaded.path,
            study=study,
            stage=index,
            stage_name=stage.name if spec.stages else None,
            carried=carried,
        )
        sweep = backend.sweep(sweep_id)
        on_stage(sweep)
        run_agents(
            backend,
            sweep,
            n_agents,
            slots,
            wandb_mode=wandb_mode,
            heartbeat_timeout=heartbeat_timeout,
            on_progress=on_progress,
        )
        backend.set_sweep_state(sweep_id, "finished")
        metric, goal = sweep.metric
        best = best_config(backend.runs(sweep_id), swept_params(config), metric, goal)
        results.append(StageResult(backend.sweep(sweep_id), best))
        if best is None:
            raise SweeperError(
                f"sweep {sweep_id} ({stage.name}): no run finished with metric {metric!r}; "
                f"see `sweeper status {sweep_id}`"
            )
        carried = carried_config(best, stage, carried)
    return results
