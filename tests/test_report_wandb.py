"""The W&B side of the report: public-API runs become the local store's run table.

No network: stand-ins carry the attributes the public API's Run and Sweep have, and the W&B
backend reads them as it reads a server's (wandb.Api replaced by the stand-in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from sweeper.backends.local import LocalBackend
from sweeper.backends.targets import is_wandb_target
from sweeper.backends.wandb import WandbBackend, runs_frame
from sweeper.errors import SweeperError
from sweeper.report.build import build_report
from sweeper.report.data import ReportData
from sweeper.report.load import report_data
from sweeper.spec.compile import compile_stage
from sweeper.spec.load import load_spec
from sweeper.sweep.runtable import RUN_COLUMNS

SPEC = {
    "name": "wandb-grid",
    "project": "sweeper-test",
    "trainer": "xor",
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "base": {"epochs": 2},
    "search": {"model.depth": [0, 1, 2]},
}


class Run:
    """What `wandb.Api().sweep(path).runs` yields, as far as the report reads it."""

    def __init__(self, run_id: str, state: str, config: dict, steps: list[dict]) -> None:
        self.id = run_id
        self.name = f"run-{run_id}"
        self.state = state
        self.config = {**config, "_wandb": {"cli_version": "0.31.0"}}
        last = steps[-1] if steps else {}
        self.summary = {
            **last, "_step": len(steps) - 1, "_runtime": 12.5, "_timestamp": 1.7e9,
            "_wandb": {"runtime": 12}, "weights": {"_type": "histogram", "values": [1, 2]},
        }  # fmt: skip
        self.created_at = "2025-03-01T10:00:00Z"
        self._steps = steps

    def history(self, samples: int = 500, keys: list[str] | None = None, **_: Any) -> pd.DataFrame:
        rows = [
            {"_step": i, **{k: v for k, v in row.items() if keys is None or k in keys}}
            for i, row in enumerate(self._steps[:samples])
        ]
        return pd.DataFrame(rows)


class Sweep:
    def __init__(self, sweep_id: str, config: dict, runs: list[Run]) -> None:
        self.id, self.config, self.runs = sweep_id, config, runs
        self.entity, self.project = "team", "sweeper-test"
        self.state = "FINISHED"
        self._attrs = {"createdAt": "2025-03-01T10:00:00Z"}

    def load(self, force: bool = False) -> bool:
        return True


class Api:
    def __init__(self, sweep: Sweep) -> None:
        self._sweep = sweep

    def sweep(self, path: str) -> Sweep:
        if path != f"team/sweeper-test/{self._sweep.id}":
            raise ValueError(f"Could not find sweep {path}\n(details)")
        return self._sweep


def load_wandb(path: str, api: Api, monkeypatch: pytest.MonkeyPatch) -> ReportData:
    """The report data the W&B backend reads from this stand-in API."""
    monkeypatch.setattr("wandb.Api", lambda **_: api)
    return report_data(WandbBackend(Path("unused") / "sweeper.db"), path)


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[LocalBackend, str, dict, list[Run]]:
    """The same three runs written to a real store and given as W&B runs."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    loaded = load_spec(path)
    config = compile_stage(loaded.spec, 0)
    backend = LocalBackend(tmp_path / "sweeper.db")
    sweep_id = backend.create_sweep(
        config, trainer="xor", spec=loaded.spec.model_dump(mode="json"), spec_hash=loaded.hash
    )
    runs = []
    for i in range(3):
        claim = backend.claim(sweep_id, agent="test")
        assert claim is not None
        steps = [{"val_acc": 0.5 + 0.1 * i + 0.01 * s, "val_loss": 0.7 - 0.05 * s} for s in (0, 1)]
        for step, metrics in enumerate(steps):
            backend.log(claim.run_id, claim.attempt, step, metrics)
        state = "failed" if i == 2 else "finished"
        backend.finish(claim.run_id, claim.attempt, state)
        wandb_state = "crashed" if i == 2 else "finished"
        runs.append(Run(claim.run_id, wandb_state if i else "killed", claim.params, steps))
    return backend, sweep_id, config, runs


def test_same_columns_as_the_local_store(recorded):
    backend, sweep_id, _, runs = recorded
    local = backend.runs(sweep_id)
    remote = runs_frame(runs, sweep_id)
    assert list(remote.columns) == list(local.columns)
    assert list(remote.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    for column in ("run_id", "config.model.depth", "config.epochs", "summary.val_acc"):
        assert remote[column].tolist() == local[column].tolist()
    assert remote["state"].tolist() == ["stopped", "finished", "crashed"]  # killed = stopped
    assert remote["runtime"].tolist() == [12.5] * 3
    assert remote["created_at"].iloc[0] == pd.Timestamp("2025-03-01 10:00:00")
    assert not [c for c in remote.columns if "_wandb" in c or "weights" in c or "_step" in c]


def test_nested_and_wrapped_config_are_flattened():
    run = Run("a", "finished", {"optim": {"lr": {"value": 0.1}, "name": "sgd"}}, [{"m": 1.0}])
    frame = runs_frame([run], "s")
    assert frame["config.optim.lr"].tolist() == [0.1]
    assert frame["config.optim.name"].tolist() == ["sgd"]


def test_report_from_a_wandb_sweep(recorded, tmp_path: Path, monkeypatch):
    _, sweep_id, config, runs = recorded
    api = Api(Sweep(sweep_id, config, runs))
    path = f"team/sweeper-test/{sweep_id}"
    assert is_wandb_target(path) and is_wandb_target(f"team/sweeper-test/sweeps/{sweep_id}")
    data = load_wandb(path, api, monkeypatch)
    assert data.backend == "wandb" and data.base["model.depth"] == 1  # xor's default depth
    out = build_report(data, tmp_path / "report")
    table = pd.read_csv(out / "param_model.depth.csv")
    # the crashed run (depth 2) is listed but not in the tables
    assert table["value"].tolist() == [0, 1]
    assert table["val_acc"].tolist() == pytest.approx([0.51, 0.61])
    assert table["val_acc Δ"].tolist() == pytest.approx([-0.1, 0.0])
    assert "crashed" in (out / "report.md").read_text()
    assert (out / "curves_model.depth.png").stat().st_size > 10_000


def test_unknown_wandb_sweep_is_one_line(recorded, monkeypatch):
    _, sweep_id, config, runs = recorded
    api = Api(Sweep(sweep_id, config, runs))
    with pytest.raises(SweeperError, match=r"cannot read W&B sweep team/x/y: Could not find"):
        load_wandb("team/x/y", api, monkeypatch)


def test_wandb_report_panels(recorded, monkeypatch):
    wr = pytest.importorskip("wandb_workspaces.reports.v2")
    from sweeper.report.wandb_report import wandb_report

    _, sweep_id, config, runs = recorded
    api = Api(Sweep(sweep_id, config, runs))
    data = load_wandb(f"team/sweeper-test/{sweep_id}", api, monkeypatch)
    report = wandb_report(data, ["model.depth"])  # built, not saved: saving needs a server
    (grid,) = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    kinds = [type(p) for p in grid.panels]
    assert kinds == [wr.ParallelCoordinatesPlot, wr.ParameterImportancePlot, wr.RunComparer]
    assert [c.metric.name for c in grid.panels[0].columns] == ["model.depth", "val_acc"]
    assert grid.runsets[0].filters == f"Sweep == '{sweep_id}'"
    assert (report.entity, report.project) == ("team", "sweeper-test")
