"""Parameter importance as W&B's panel shows it: a random forest's importance and correlation.

Categorical parameters are one-hot encoded, one row per value, as in W&B's panel; the
parallel-coordinates axes are ordered by each parameter's summed importance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.report.values import Kind, hashable, label

TREES = 100
MAX_SAMPLES = 2000
"""Rows each tree sees: importances are stable well before this, and 10,000 runs stay fast."""


def features(done: pd.DataFrame, params: list[str], kinds: dict[str, Kind]) -> pd.DataFrame:
    """The model inputs: one column per numeric parameter (log10 for log ones), one-hot others."""
    columns: dict[str, pd.Series] = {}
    for param in params:
        values = done[f"config.{param}"]
        if kinds[param] == "categorical":
            keys = values.map(hashable)
            for value in dict.fromkeys(keys.dropna()):
                columns[f"{param}={label(value)}"] = (keys == value).astype(float)
        else:
            numbers = pd.to_numeric(values, errors="coerce").astype(float)
            if kinds[param] == "log":
                numbers = pd.Series(np.log10(numbers.to_numpy()), index=numbers.index)
            columns[param] = numbers
    return pd.DataFrame(columns, index=done.index)


def importance(
    done: pd.DataFrame, params: list[str], kinds: dict[str, Kind], metric: str
) -> pd.DataFrame:
    """Rows: feature, param, importance (sums to 1), correlation with the metric; best first."""
    from sklearn.ensemble import RandomForestRegressor

    x = features(done, params, kinds)
    y = done[f"summary.{metric}"].astype(float)
    keep = x.notna().all(axis=1) & y.notna()
    x, y = x[keep], y[keep]
    x = x.loc[:, x.nunique() > 1]
    rows = pd.DataFrame({"feature": x.columns, "param": [c.split("=", 1)[0] for c in x.columns]})
    if len(y) < 3 or y.nunique() < 2 or x.empty:
        return rows.assign(importance=np.nan, correlation=np.nan)
    forest = RandomForestRegressor(
        n_estimators=TREES,
        max_samples=min(len(y), MAX_SAMPLES),
        random_state=0,
        n_jobs=1,
    ).fit(x.to_numpy(), y.to_numpy())
    rows["importance"] = forest.feature_importances_
    rows["correlation"] = [np.corrcoef(x[c], y)[0, 1] for c in x.columns]
    return rows.sort_values("importance", ascending=False, ignore_index=True)


def param_order(table: pd.DataFrame, params: list[str]) -> list[str]:
    """Parameters by summed importance, most important first; unmeasured ones keep their order."""
    summed = table.groupby("param")["importance"].sum(min_count=1)
    rank = {p: -summed.get(p, np.nan) for p in params}
    return sorted(
        params, key=lambda p: (np.isnan(rank[p]), rank[p] if not np.isnan(rank[p]) else 0)
    )
