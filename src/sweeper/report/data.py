"""What a report is built from: the run table, the sweeps behind it, and how to read history.

Every backend fills the same `ReportData`, through the Backend protocol
(`sweeper.report.load.report_data`), so every table and plot works the same on each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sweeper.errors import SweeperError
from sweeper.report.values import Kind, param_kind
from sweeper.sweep import DONE, swept_params

HistoryFn = Callable[[list[str], list[str]], pd.DataFrame]
"""(run ids, metric keys) -> DataFrame with run_id, _step and one column per key."""

_NOT_A_METRIC = re.compile(r"^(_.*|lr|epoch|runtime|.*_class_\d+)$")
"""Summary keys that are bookkeeping or per-class detail, not metrics for the tables."""


@dataclass(frozen=True)
class SweepPart:
    """One sweep of the report (a study has one per stage)."""

    id: str
    name: str
    stage: int
    stage_name: str | None
    parameters: dict[str, Any]
    """The compiled W&B `parameters` block as {dotted path: parameter}."""
    carried: dict[str, Any] = field(default_factory=dict)
    """Best configuration inherited from the previous stage."""
    scheduler: dict[str, Any] = field(default_factory=dict)
    """The sweep config's `scheduler:` block ({} for a sweep W&B's own search runs)."""
    columns: tuple[str, ...] = ()
    """The run table's `config.` columns this sweep's runs filled: under a `scheduler:
    search_space` (define-by-run) they name what the space gave (`swept_params`)."""

    @property
    def params(self) -> list[str]:
        """The parameters this sweep searches (dotted paths), without the repeats' `seed`."""
        return swept_params(self._config, columns=self.columns)

    @property
    def has_repeats(self) -> bool:
        """Whether configurations ran over several seeds (a swept `seed`)."""
        return "seed" in swept_params(self._config, include_seed=True, columns=self.columns)

    def parameter(self, name: str) -> dict[str, Any]:
        """The `parameters:` entry of a searched parameter; {} for one only a define-by-run
        space gives (its values are read from the runs)."""
        found = self.parameters.get(name)
        return found if isinstance(found, dict) else {}

    @property
    def _config(self) -> dict[str, Any]:
        return {"parameters": self.parameters, "scheduler": self.scheduler}


@dataclass
class ReportData:
    title: str
    source: str
    """Where the runs came from, said in the report (store path or W&B path)."""
    metric: str
    goal: str
    parts: list[SweepPart]
    runs: pd.DataFrame
    history: HistoryFn
    base: dict[str, Any] = field(default_factory=dict)
    """The base configuration as flat {dotted path: value}: the default baseline."""
    key: str = ""
    """The sweep or study id: names the default report folder."""
    backend: str = "local"
    """local or wandb."""
    project: str | None = None
    entity: str | None = None
    objectives: list[tuple[str, str]] = field(default_factory=list)
    """The sweep's (metric, goal) pairs (`sweeper.sweep.pareto.sweep_objectives`); with two or
    more the report shows the Pareto front where it would name a best."""
    select: dict[str, Any] | None = None
    """The spec's `select:` rule: which run of a stage's front a study carried on."""

    def __post_init__(self) -> None:
        """A run that did not get a searched parameter ran with the base value: say so.

        (Stage 1 of a study does not list what stage 3 will search; its runs used the base.)
        """
        if self.runs.empty:
            return
        for param in self.params:
            column = f"config.{param}"
            if param not in self.base:
                continue
            value = self.base[param]
            if column not in self.runs:
                self.runs[column] = [value] * len(self.runs)
            else:
                self.runs[column] = self.runs[column].map(
                    lambda v, b=value: b if _missing(v) else v
                )

    def metric_goal(self, metric: str) -> str:
        """A metric's goal: the sweep's own for its metric and objectives, else read from its
        name (`sweeper.report.tables.goal_of`)."""
        from sweeper.report.tables import goal_of

        goals = dict(self.objectives)
        return goals[metric] if metric in goals else goal_of(metric, self.metric, self.goal)

    @property
    def is_multi_objective(self) -> bool:
        """Whether the sweep optimises two or more `metrics:` (a Pareto front, no one best)."""
        return len(self.objectives) >= 2

    @property
    def is_study(self) -> bool:
        """Whether the report covers a study (several stages), not one sweep."""
        return len(self.parts) > 1

    @property
    def params(self) -> list[str]:
        """Every parameter searched in any part, in first-seen order."""
        return list(dict.fromkeys(p for part in self.parts for p in part.params))

    def kind(self, param: str) -> Kind:
        """How `param` is plotted (see `param_kind`), from the first part that searches it;
        numeric for a parameter no part searches."""
        for part in self.parts:
            if param in part.params:
                return param_kind(part.parameter(param), self.runs.get(f"config.{param}"))
        return "numeric"

    def declared(self, param: str) -> list[Any] | None:
        """The values the spec lists for a parameter (their order is the table order)."""
        for part in self.parts:
            if param in part.params:
                return part.parameter(param).get("values")
        return None

    def done(self) -> pd.DataFrame:
        """Runs whose metric counts (finished or early-stopped, with the metric logged)."""
        column = f"summary.{self.metric}"
        mask = self.runs["state"].isin(DONE) & self.runs[column].notna()
        return self.runs[mask]

    def metrics(self, limit: int = 4) -> list[str]:
        """The report's metric first, then the sweep's other objectives, then other scalar
        summary metrics the runs logged."""
        named = list(dict.fromkeys([self.metric, *(m for m, _ in self.objectives)]))
        others = [
            c.removeprefix("summary.")
            for c in self.runs.columns
            if c.startswith("summary.") and pd.api.types.is_numeric_dtype(self.runs[c])
        ]
        others = [m for m in others if m not in named and not _NOT_A_METRIC.match(m)]
        return [*named, *others[: max(limit - len(named), 0)]]

    def check(self) -> None:
        """Refuse to build a report with nothing to show, in one line.

        Raises:
            SweeperError: no run finished (or early-stopped), the metric is not among what the
                runs logged (the message lists those), or no finished run logged it.
        """
        what = f"{'study' if self.is_study else 'sweep'} {self.title}"
        counts = self.runs["state"].value_counts().to_dict() if len(self.runs) else {}
        states = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no runs yet"
        if not any(state in DONE for state in counts):
            raise SweeperError(f"{what} has no finished run ({states})")
        column = f"summary.{self.metric}"
        if column not in self.runs:
            have = sorted(
                c.removeprefix("summary.") for c in self.runs.columns if c.startswith("summary.")
            )
            raise SweeperError(
                f"metric {self.metric!r} is not in the runs of {what}"
                f" (they logged: {', '.join(have) or 'nothing'})"
            )
        if self.done().empty:
            raise SweeperError(f"{what} has no finished run with {self.metric!r} ({states})")
        for name, _ in self.objectives if self.is_multi_objective else []:
            if f"summary.{name}" not in self.runs:
                raise SweeperError(
                    f"metrics: {name!r} is not in the runs of {what}; its Pareto front needs"
                    f" every metric"
                )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
