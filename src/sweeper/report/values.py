"""Parameter values as the report shows them: their kind, their labels, and their groups."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["categorical", "numeric", "log"]

LOG_SPAN = 100.0
"""A list of positive numbers spanning this factor or more is plotted on a log axis."""

MAX_GROUPS = 12
"""A numeric parameter with more distinct values than this is grouped into BINS ranges."""
BINS = 5


def param_kind(parameter: Mapping[str, Any], values: pd.Series | None = None) -> Kind:
    """How a parameter is plotted: categorical, numeric, or numeric on a log axis."""
    distribution = parameter.get("distribution", "")
    if "log" in distribution:
        return "log"
    if distribution and distribution != "categorical":
        return "numeric"
    choices = parameter.get("values")
    if choices is None and values is not None:
        choices = values.dropna().tolist()
    if not choices or not all(is_number(v) for v in choices):
        return "categorical"
    low, high = min(choices), max(choices)
    return "log" if low > 0 and high / low >= LOG_SPAN else "numeric"


def is_number(value: Any) -> bool:
    """A finite real number (numpy's included), not a bool."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
    )


def label(value: Any) -> str:
    """A parameter value as the tables and axes show it."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(label(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def distinct_labels(values: Sequence[Any], least: int = 3, most: int = 17) -> list[str]:
    """Labels for one column: its floats to the fewest significant digits, `least` or more,
    that keep distinct values distinct (`lr=0.0105`, not `0.010536`); CSVs keep full values.

    `most` caps the digits (17 shows any double exactly); other values are :func:`label`'s.
    """
    floats = {v for v in values if isinstance(v, float) and math.isfinite(v)}
    for digits in range(least, most + 1):
        if len({f"{v:.{digits}g}" for v in floats}) == len(floats):
            break
    return [
        f"{v:.{digits}g}" if isinstance(v, float) and math.isfinite(v) else label(v) for v in values
    ]


def metric_label(name: str) -> str:
    """A metric's name as headings show it: quoted when spaces at its ends would hide."""
    return repr(name) if name != name.strip() or not name else name


def hashable(value: Any) -> Any:
    """A value usable as a dict key: lists (and lists inside them) become tuples."""
    return tuple(hashable(v) for v in value) if isinstance(value, list | tuple) else value


def ordered(values: pd.Series, declared: list[Any] | None = None) -> list[Any]:
    """Distinct values in the order the spec lists them, else sorted when they sort."""
    seen = list(dict.fromkeys(hashable(v) for v in values.dropna()))
    if declared:
        rank = {hashable(v): i for i, v in enumerate(declared)}
        return sorted(seen, key=lambda v: rank.get(v, len(rank)))
    try:
        return sorted(seen)
    except TypeError:
        return sorted(seen, key=label)


def group_values(
    values: pd.Series, kind: Kind, declared: list[Any] | None = None
) -> tuple[pd.Series, Callable[[Any], str | None]]:
    """Each run's group label (ordered categorical) and a function placing any value in a group.

    Discrete values are their own group; a continuous search (hundreds of learning rates) is
    cut into BINS equal-count ranges, on a log scale for log parameters.
    """
    distinct = ordered(values, declared)
    if kind == "categorical" or len(distinct) <= MAX_GROUPS:
        labels = distinct_labels(distinct)
        keys = dict(zip(distinct, labels, strict=True))
        grouped = values.map(lambda v: keys.get(hashable(v)))
        return (
            pd.Series(pd.Categorical(grouped, categories=labels, ordered=True), index=values.index),
            lambda v: keys.get(hashable(v)),
        )
    scale = np.log10 if kind == "log" else (lambda x: x)
    numbers = pd.to_numeric(values, errors="coerce")
    _, edges = pd.qcut(scale(numbers), BINS, retbins=True, duplicates="drop")
    bounds = [10**e if kind == "log" else e for e in edges]
    names = [f"{bounds[i]:.3g}..{bounds[i + 1]:.3g}" for i in range(len(bounds) - 1)]
    codes = pd.cut(scale(numbers), edges, labels=names, include_lowest=True)

    def place(value: Any) -> str | None:
        if not is_number(value) or (kind == "log" and value <= 0):
            return None
        found = pd.cut([scale(value)], edges, labels=names, include_lowest=True)[0]
        return found if isinstance(found, str) else None  # NaN: outside every bin

    return pd.Series(codes, index=values.index), place
