"""The W&B side of the report: public-API runs become the local store's run table.

No network: stand-ins carry the attributes the public API's Run and Sweep have, and the W&B
backend reads them as it reads a server's (wandb.Api replaced by the stand-in). Saving a W&B
Report runs the real wandb and wandb-workspaces clients against the stand-in server.
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
    report = wandb_report(data, ["model.depth"])  # built, not saved (saved: tests below)
    (grid,) = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    kinds = [type(p) for p in grid.panels]
    assert kinds == [wr.ParallelCoordinatesPlot, wr.ParameterImportancePlot, wr.RunComparer]
    assert [c.metric.name for c in grid.panels[0].columns] == ["model.depth", "val_acc"]
    assert grid.runsets[0].filters == f"Sweep == '{sweep_id}'"
    assert (report.entity, report.project) == ("team", "sweeper-test")


# Saved on a W&B server: the real wandb-workspaces client over HTTP to the stand-in -----------

SAVED_PROJECT = "sweeper-reports"


def _standin_sweep(server: Any, name: str, lrs: list[float]) -> tuple[str, list[str]]:
    """A finished W&B grid sweep over `lr`, one finished run per value (val_acc rises as lr
    falls), written into the stand-in as its agents would have left it; (sweep id, run ids)."""
    from wandb_server.state import RunRecord

    config = {
        "name": name,
        "method": "grid",
        "metric": {"name": "val_acc", "goal": "maximize"},
        "parameters": {"lr": {"values": lrs}},
    }
    with server.state.lock:
        sweep = server.state.upsert_sweep("standin", SAVED_PROJECT, {"config": yaml.dump(config)})
        for i, lr in enumerate(lrs):
            steps = [{"_step": s, "val_acc": 0.5 + 0.1 * i + 0.05 * s} for s in (0, 1)]
            run = RunRecord(
                id=f"{sweep.id}-{i}",
                entity="standin",
                project=SAVED_PROJECT,
                state="finished",
                raw_config={"lr": {"value": lr}},
                summary=dict(steps[-1]),
                history=steps,
            )
            server.state.attach_to_sweep(server.state.add_run(run), sweep)
        sweep.state = "FINISHED"
    return sweep.id, sweep.run_ids


def test_wandb_report_is_saved_with_its_panels_over_the_sweeps_runs(
    wandb_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`report ENTITY/PROJECT/SWEEP --wandb-report` saves one W&B Report (upsertView) whose
    panel grid holds parallel coordinates, parameter importance and a run comparer over the
    sweep's runs alone, and prints the saved report's URL as W&B's app forms it."""
    wr = pytest.importorskip("wandb_workspaces.reports.v2")
    from typer.testing import CliRunner
    from wandb_server.views import reports, runset_runs

    from sweeper.cli import app

    monkeypatch.chdir(tmp_path)
    sweep_id, run_ids = _standin_sweep(wandb_server, "lr / grid", [0.1, 0.01, 0.001])
    _standin_sweep(wandb_server, "other", [0.5])  # same project: the runset must leave it out
    path = f"standin/{SAVED_PROJECT}/{sweep_id}"
    result = CliRunner().invoke(app, ["report", path, "--wandb-report", "-o", "report"])
    assert result.exit_code == 0, result.output

    (view,) = reports(wandb_server.state)
    assert (view.entity, view.project, view.type) == ("standin", SAVED_PROJECT, "runs")
    assert view.display_name == "lr / grid: sweep report"
    (grid,) = [b for b in view.spec_json["blocks"] if b["type"] == "panel-grid"]
    panels = grid["metadata"]["panelBankSectionConfig"]["panels"]
    assert [p["viewType"] for p in panels] == [
        "Parallel Coordinates Plot",
        "Parameter Importance",
        "Run Comparer",
    ]
    axes = [c["accessor"] for c in panels[0]["config"]["columns"]]
    assert axes == ["config:lr.value", "summary:val_acc"]
    assert panels[1]["config"]["targetKey"] == "val_acc"
    (runset,) = grid["metadata"]["runSets"]
    shown = runset_runs(wandb_server.state, runset)
    assert sorted(run.id for run in shown) == sorted(run_ids)  # the sweep's runs, no other

    # the URL printed: the app's (a local server's is its own address), the title as a slug,
    # the saved view's id without base64 padding; and the client reads the report back by it
    (url,) = [line.split(": ", 1)[1] for line in result.output.splitlines() if "W&B report" in line]
    slug_and_id = f"lr-grid-sweep-report--{view.id.rstrip('=')}"
    assert url == f"{wandb_server.url}/standin/{SAVED_PROJECT}/reports/{slug_and_id}"
    loaded = wr.Report.from_url(url)
    assert (loaded.id, loaded.title) == (view.id, view.display_name)
    (panel_grid,) = [b for b in loaded.blocks if isinstance(b, wr.PanelGrid)]
    kinds = [type(p) for p in panel_grid.panels]
    assert kinds == [wr.ParallelCoordinatesPlot, wr.ParameterImportancePlot, wr.RunComparer]


def test_wandb_report_refused_by_the_server_is_one_line(
    wandb_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The server refusing the save (here: no write permission on the project) is one line and
    exit 2; the local report is written first and kept."""
    pytest.importorskip("wandb_workspaces.reports.v2")
    from typer.testing import CliRunner
    from wandb_server import views
    from wandb_server.graphql import GraphQLError

    from sweeper.cli import app

    def refuse(resolvers: Any, args: dict[str, Any]) -> Any:
        raise GraphQLError(f"permission denied: {args['input']['projectName']}\n(details)")

    monkeypatch.setattr(views, "upsert_view", refuse)
    monkeypatch.chdir(tmp_path)
    sweep_id, _ = _standin_sweep(wandb_server, "refused", [0.1, 0.01])
    path = f"standin/{SAVED_PROJECT}/{sweep_id}"
    result = CliRunner().invoke(app, ["report", path, "--wandb-report", "-o", "report"])
    assert result.exit_code == 2, result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "could not save the W&B report" in error and "permission denied" in error, error
    assert "Traceback" not in result.output
    assert (tmp_path / "report" / "report.html").is_file()
    assert not views.reports(wandb_server.state)
