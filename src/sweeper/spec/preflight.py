"""What a trial will need from disk, checked before the first trial starts.

`validate` and `launch` call `preflight` after a spec loads: a missing data set or weights
file is one line naming the spec field and what to do, not five failed trials and a reason
buried in an agent log. Nothing is written (not even the store); with --smoke a generator's
target need only be writable.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from sweeper.errors import SpecError, shown
from sweeper.spec.load import LoadedSpec, representative_values
from sweeper.spec.models import Distribution, as_distribution
from sweeper.spec.paths import with_path
from sweeper.trainers.common.check import MissingInput
from sweeper.trainers.registry import get_trainer

WEIGHTS_FIELDS = ("weights", "pretrained", "encoder_weights")
"""Swept fields naming a file a trial loads: every value is checked, as for `data.*`."""


def _checked_everywhere(param: str) -> bool:
    """A swept field whose every value is checked, not only the first: data and weights."""
    return param.split(".")[0] == "data" or param.rsplit(".", 1)[-1] in WEIGHTS_FIELDS


def first_config(base: dict[str, Any], search: dict[str, Distribution]) -> dict[str, Any]:
    """A stage's first configuration: base with each searched field at its first value (a
    list's first, a range's lower bound)."""
    config = base
    for param, dist in search.items():
        config = with_path(config, param, representative_values(as_distribution(dist))[0])
    return config


def preflight(loaded: LoadedSpec) -> None:
    """Check each stage's first configuration, and every value of a swept data or weights
    field, with the trainer's `check` (TrainerInfo.check_ref).

    Raises:
        SpecError: naming the spec field (`base.data.root`, `search.data.root[1]`).
    """
    spec, file = loaded.spec, loaded.path
    info = get_trainer(spec.trainer)
    check = info.check_fn()
    if check is None:
        return
    model = info.config_model()
    seen: set[str] = set()
    for i, stage in enumerate(spec.stage_list()):
        prefix = f"stages.{i}.search" if spec.stages else "search"
        first = first_config(spec.base, stage.search)
        variants: list[tuple[tuple[str, int, Any] | None, dict[str, Any]]] = [(None, first)]
        for param, dist in stage.search.items():
            if _checked_everywhere(param):
                values = representative_values(as_distribution(dist))
                variants += [
                    ((param, j, v), with_path(first, param, v)) for j, v in enumerate(values)
                ]
        for swept, config in variants:
            key = json.dumps(config, sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            try:
                trial_config = model.model_validate(config)
            except ValidationError:  # a combination check_spec refuses, or a carried value fixes
                continue
            try:
                check(trial_config)
            except MissingInput as exc:
                raise SpecError(file, *_located(exc, stage.search, prefix, swept)) from None


def _located(
    exc: MissingInput,
    search: dict[str, Distribution],
    prefix: str,
    swept: tuple[str, int, Any] | None,
) -> tuple[str, str]:
    """The spec field a trainer config field's value came from, and the message."""
    field = exc.field
    if field not in search:
        when = f" (with {swept[0]}={shown(swept[2])})" if swept else ""
        return f"base.{field}", f"{exc.message}{when}"
    index = swept[1] if swept and swept[0] == field else 0
    categorical = as_distribution(search[field]).kind == "categorical"
    return f"{prefix}.{field}{f'[{index}]' if categorical else ''}", exc.message
