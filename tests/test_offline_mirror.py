"""The offline wandb mirror of a local sweep carries the sweep's identity.

W&B cannot know a local sweep, so each mirrored run must say on its own which store run,
sweep, swept parameters and metric it belongs to; `wandb sync` uploads exactly that. These
tests read what wandb wrote on disk: wandb 0.31 keeps an offline run's config and summary only
in its `run-<id>.wandb` log (`files/` stays empty until a sync), and ships no reader for it,
so `offline_run` decodes the log with wandb's own protobuf messages.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import probe_spec, write_spec
from wandb_server import WandbServer

from sweeper.backends.local import LocalBackend
from sweeper.backends.runfile import records as wandb_records


def _apply(target: dict[str, Any], item: Any) -> None:
    """One config or summary update item: a top-level key, or a path of nested keys."""
    path = list(item.nested_key) or [item.key]
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = json.loads(item.value_json)


@dataclass
class OfflineRun:
    """What an offline run folder says about its run."""

    folder: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def offline_run(folder: Path) -> OfflineRun:
    [log] = folder.glob("run-*.wandb")
    run = OfflineRun(folder)
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            header = record.run
            run.run_id, run.name = header.run_id, header.display_name
            run.group, run.job_type = header.run_group, header.job_type
            for item in header.config.update:
                _apply(run.config, item)
        elif kind == "config":
            for item in record.config.update:
                _apply(run.config, item)
        elif kind == "summary":
            for item in record.summary.update:
                _apply(run.summary, item)
    return run


def offline_folders(store: Path, run_id: str = r"\w+") -> list[Path]:
    """The offline run folders under the store: `offline-run-<time>-<run id>`, and `-1`, `-2`...
    after it when wandb starts the same run id twice within one second."""
    name = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?")
    return sorted(p for p in (store.parent / "wandb").iterdir() if name.fullmatch(p.name))


def dotted_keys(config: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in config.items():
        if "." in key:
            found.append(prefix + key)
        if isinstance(value, dict):
            found += dotted_keys(value, f"{prefix}{key}/")
    return found


@pytest.fixture
def quiet_wandb(wandb_server: WandbServer) -> WandbServer:
    """wandb isolated from this machine's login, settings and WANDB_* variables (offline runs
    need no server; the stand-in only comes with the isolation)."""
    return wandb_server


@pytest.mark.slow  # a real launch: agents run the trials, each mirrored by wandb-core
def test_launch_mirrors_each_trial_with_its_sweep_identity(
    store: Path, quiet_wandb: WandbServer, tmp_path: Path
) -> None:
    """Through the real CLI: one offline run per store run, under its id, that says which
    sweep, parameters and metric it belongs to, with the trainer's config and the store's loss."""
    spec = probe_spec(base={"epochs": 2}, search={"x": [0.0, 3.0], "optim.lr": [0.05]})
    write_spec(tmp_path, spec)

    launched = subprocess.run(
        [sys.executable, "-m", "sweeper", "launch", "spec.yaml", "--wandb", "offline"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert launched.returncode == 0, launched.stdout + launched.stderr
    db = LocalBackend(store, create=False)
    [sweep] = db.sweeps()
    runs = db.runs(sweep.id)
    assert len(runs) == 2 and set(runs["state"]) == {"finished"}
    assert len(offline_folders(store)) == len(runs)
    for row in runs.to_dict("records"):
        run_id = row["run_id"]
        [folder] = offline_folders(store, run_id)
        mirror = offline_run(folder)
        assert (mirror.run_id, mirror.name, mirror.group) == (run_id, run_id, sweep.id)

        trainer_config = db.run(run_id)["meta"]["config"]
        own = {k: v for k, v in mirror.config.items() if not k.startswith("_")}
        assert own == trainer_config  # the trainer's whole config, nested as it is
        assert dotted_keys(own) == []
        assert (own["x"], own["optim"]["lr"]) == (row["config.x"], row["config.optim.lr"])

        identity = mirror.config["_sweeper"]
        assert identity["sweep"] == sweep.id
        assert (identity["run"], identity["attempt"]) == (run_id, 1)
        assert sorted(identity["parameters"]) == ["optim.lr", "x"]
        assert identity["metric"] == {"name": "loss", "goal": "minimize"}
        assert identity["spec_hash"] == sweep.spec_hash

        assert mirror.summary["loss"] == pytest.approx(row["summary.loss"])
    assert sorted(runs["summary.loss"]) == pytest.approx([1.5, 4.5])
    db.close()


@pytest.mark.slow  # two trials with wandb offline: wandb-core starts for each
def test_a_requeued_trial_mirrors_to_the_same_wandb_run(
    backend: LocalBackend,
    make_sweep: Callable[[dict[str, Any]], str],
    quiet_wandb: WandbServer,
    store: Path,
) -> None:
    """A requeued trial keeps its wandb run id, so both attempts land on one W&B run."""
    import wandb

    from sweeper.agent.trial import run_trial, workload_of
    from sweeper.backends.base import Claim

    sweep_id = make_sweep(probe_spec(base={"epochs": 1}, search={"x": [0.0, 2.0]}))
    sweep = backend.sweep(sweep_id)
    first = backend.claim(sweep_id, "agent-a")
    assert first is not None
    time.sleep(0.01)
    # agent-a's heartbeat lapsed: the next claim requeues its trial and takes it over.
    second = backend.claim(sweep_id, "agent-b", heartbeat_timeout=0)
    assert second is not None
    assert (second.run_id, second.attempt) == (first.run_id, 2)

    def execute(claim: Claim) -> str:
        sink = backend.open_sink(claim, sweep, wandb_mode="offline", fork=False)
        return run_trial(workload_of(sweep, claim), sink)

    assert execute(first) == "lost"
    assert execute(second) == "finished"
    # finish() can return before wandb-core has written the last run's log; a trial's process
    # exits, which shuts the service down. Here, in-process, shut it down the same way.
    wandb.teardown()

    # Each attempt writes its own folder, under the one run id: `wandb sync` resumes one W&B run.
    mirrors = [offline_run(folder) for folder in offline_folders(store, first.run_id)]
    mirrors = sorted(mirrors, key=lambda m: m.config["_sweeper"]["attempt"])
    assert [m.config["_sweeper"]["attempt"] for m in mirrors] == [1, 2]
    assert {(m.run_id, m.group) for m in mirrors} == {(first.run_id, sweep_id)}
    assert mirrors[-1].summary["loss"] == pytest.approx(
        backend.run(first.run_id)["summary"]["loss"]
    )
