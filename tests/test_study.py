"""The study rules (sweeper.sweep.study) and the run table they read (sweeper.sweep.runtable),
as pure functions: no store, no launch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sweeper.sweep import RunState
from sweeper.sweep.runtable import RUN_COLUMNS, RunRow, run_table
from sweeper.sweep.study import (
    carried_config,
    carry_over,
    latest_stages,
    stage_best,
    stage_start,
)

CONFIG = {
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "x": {"values": [0, 1]},
        "seed": {"values": [0, 1]},
        "epochs": {"value": 3},
    },
}


def _runs(losses: dict[tuple[int, int], float], state: str = RunState.FINISHED) -> pd.DataFrame:
    """A run table of one run per (x, seed) with the given loss."""
    return run_table(
        [
            RunRow(
                run_id=f"r{x}{seed}",
                sweep_id="s",
                state=state,
                created_at=1_700_000_000.0 + i,
                config={"x": x, "seed": seed, "epochs": 3},
                summary={"loss": loss},
            )
            for i, ((x, seed), loss) in enumerate(losses.items())
        ],
        ["x", "seed", "epochs"],
    )


def test_carry_over_takes_the_best_mean_not_the_lucky_run() -> None:
    # x=1 has the single best run (0.1) but the worse mean (0.55); x=0 the better mean (0.3)
    runs = _runs({(0, 0): 0.3, (0, 1): 0.3, (1, 0): 0.1, (1, 1): 1.0})
    carry = carry_over(runs, CONFIG, searched=["x"], previous={"optim.lr": 0.1})
    assert carry is not None
    assert carry.best.config == {"x": 0} and carry.best.n == 2
    assert carry.carried == {"optim.lr": 0.1, "x": 0}


def test_carry_over_follows_the_goal() -> None:
    runs = _runs({(0, 0): 0.3, (0, 1): 0.3, (1, 0): 0.1, (1, 1): 1.0})
    maximize = {**CONFIG, "metric": {"name": "loss", "goal": "maximize"}}
    carry = carry_over(runs, maximize, searched=["x"], previous={})
    assert carry is not None and carry.carried == {"x": 1}


def test_no_finished_run_carries_nothing() -> None:
    running = _runs({(0, 0): 0.3}, state=RunState.RUNNING)
    assert carry_over(running, CONFIG, ["x"], {}) is None
    assert stage_best(_runs({(0, 0): 0.3}), {**CONFIG, "metric": {}}) is None  # no metric


def test_a_carried_dict_value_is_replaced_whole() -> None:
    previous = {"aug": {"flip": True, "crop": 8}, "lr": 0.1}
    carried = carried_config({"aug": {"flip": False}, "lr": 0.5}, ["aug"], previous)
    assert carried == {"aug": {"flip": False}, "lr": 0.1}  # lr was not searched: kept
    assert previous["aug"] == {"flip": True, "crop": 8}  # the input is left as it was


@dataclass(frozen=True)
class Made:
    id: str
    study: str | None
    stage: int
    created_at: float
    carried: dict[str, Any] = field(default_factory=dict)


def test_resume_finds_the_latest_study_and_its_latest_stages() -> None:
    old = [Made("a0", "A", 0, 1.0), Made("a1", "A", 1, 2.0), Made("a2", "A", 2, 3.0)]
    new = [Made("b0", "B", 0, 4.0), Made("b1", "B", 1, 5.0), Made("b1'", "B", 1, 6.0)]
    stages = latest_stages([*new, *old][::-1])  # the order given does not matter
    assert {i: s.id for i, s in stages.items()} == {0: "b0", 1: "b1'"}

    made = stage_start(stages, 1)
    assert made is not None and made.made and made.sweep.id == "b1'"
    after = stage_start(stages, 2)  # not made yet: it starts from stage 1's best
    assert after is not None and not after.made and after.sweep.id == "b1'"
    assert stage_start(stages, 3) is None  # stage 2 has to run first


def test_a_sweep_outside_a_study_stands_alone() -> None:
    made = [Made("a0", "A", 0, 1.0), Made("a1", "A", 1, 2.0), Made("one", None, 0, 3.0)]
    assert {i: s.id for i, s in latest_stages(made).items()} == {0: "one"}
    assert latest_stages([]) == {}


def test_run_table_columns_and_dtypes() -> None:
    rows = [
        RunRow("r1", "s", "finished", 0.0, {"zeta": 1, "alpha": {"a": 1}}, {"m": 1.0}),
        RunRow("r2", "s", "killed?", None, {"zeta": None, "logged": 2}, {"n": 2.0}),
    ]
    table = run_table(rows, params=["zeta", "alpha", "absent"])
    config = ["config.zeta", "config.alpha", "config.logged"]  # swept first, in order; rest sorted
    assert list(table.columns) == [*RUN_COLUMNS, *config, "summary.m", "summary.n"]
    assert table["config.zeta"].tolist() == [1, None]  # None is a value, not NaN
    assert table["config.alpha"].tolist() == [{"a": 1}, None]  # a dict is one value
    assert table["summary.n"].isna().tolist() == [True, False]
    assert table["created_at"].iloc[0] == pd.Timestamp("1970-01-01") and pd.isna(
        table["created_at"].iloc[1]
    )
    assert table["state"].tolist() == ["finished", "killed?"]  # the backend maps states
    assert list(run_table([], ["x"]).columns) == RUN_COLUMNS
