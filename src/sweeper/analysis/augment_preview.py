"""`sweeper augment`: read a config the way `sweeper train` does (a spec's base or a config
YAML, then --set), optionally replace its augmentation names, and draw the trainer's preview."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from sweeper.errors import SweeperError
from sweeper.spec.load import base_config, validate_config
from sweeper.trainers.registry import TrainerInfo

MAX_IMAGES = 64
"""More than this makes cells too small to see anything in."""


def check_request(n: int, out: Path) -> None:
    """Refuse a bad -n or output path before any data is read.

    Raises:
        SweeperError: `n` outside 1..MAX_IMAGES, or `out` a folder, not `*.png`, or in a folder
            that does not exist.
    """
    if not 1 <= n <= MAX_IMAGES:
        raise SweeperError(f"-n: must be between 1 and {MAX_IMAGES}, got {n}")
    if out.is_dir():
        raise SweeperError(f"--output {out} is a folder; give a file name such as {out}/grid.png")
    if out.suffix.lower() != ".png":
        raise SweeperError(f"--output {out}: the grid is a PNG; name the file *.png")
    if not out.parent.is_dir():
        raise SweeperError(f"--output {out}: folder {out.parent} does not exist")


def preview_config(
    info: TrainerInfo, source: Path | None, overrides: dict[str, Any], names: list[str] | None
) -> BaseModel:
    """The validated trainer config the preview runs with.

    Raises:
        SweeperError: `names` given for a trainer that does not name its augmentations, or
            refused by `with_names`; SpecError (a SweeperError) when the source cannot be read
            or the config model rejects the result.
    """
    base, file = base_config(info.name, source, overrides)
    model = info.config_model()
    if names is not None:
        if not info.augment_names:
            raise SweeperError(f"--names: trainer {info.name!r} does not name its augmentations")
        base = with_names(model, base, info.augment_names, names)
    return validate_config(model, base, file, "config")


def with_names(
    model: type[BaseModel], base: dict[str, Any], path: str, names: list[str]
) -> dict[str, Any]:
    """`base` with the names list at `path` replaced. One name that is only a preset (a `preset`
    field beside the list) sets the preset instead; either way the other is dropped.

    `path` is the trainer's `augment_names` (dotted, e.g. `data.augment.steps`).

    Raises:
        SweeperError: a name that is neither a step nor a preset, a preset given with other
            names, or a section on `path` that `base` holds as a value.
        TypeError: `path` runs through a field of `model` that is not a config section (a
            trainer registered with a wrong `augment_names`).
    """
    parent, _, leaf = path.rpartition(".")
    section = model
    for part in filter(None, parent.split(".")):
        annotation = section.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise TypeError(f"{path}: {part} is not a config section of {model.__name__}")
        section = annotation
    steps = _literals(section.model_fields[leaf].annotation)
    presets = (
        _literals(section.model_fields["preset"].annotation)
        if "preset" in section.model_fields
        else []
    )
    for name in names:
        if name not in steps and name not in presets:
            known = f"steps: {', '.join(steps)}" + (
                f"; presets: {', '.join(presets)}" if presets else ""
            )
            raise SweeperError(f"--names: unknown augmentation {name!r} ({known})")
    only_presets = [name for name in names if name not in steps]
    if only_presets and len(names) > 1:
        raise SweeperError(f"--names: {only_presets[0]!r} is a preset; give it alone")
    out = copy.deepcopy(base)
    node = out
    for part in filter(None, parent.split(".")):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SweeperError(f"config: {parent} is a value, not a section")
    node.pop(leaf, None)
    node.pop("preset", None)
    if only_presets:
        node["preset"] = only_presets[0]
    else:
        node[leaf] = list(names)
    return out


def _literals(annotation: Any) -> list[str]:
    """The string values a Literal annotation allows (through list[...] and Optional)."""
    if get_origin(annotation) is Literal:
        return [v for v in get_args(annotation) if isinstance(v, str)]
    return [v for arg in get_args(annotation) for v in _literals(arg)]


def describe(info: TrainerInfo, config: BaseModel) -> str:
    """The grid's title: the trainer and the augmentations it shows."""
    section: Any = config
    parent, _, leaf = (info.augment_names or "").rpartition(".")
    for part in filter(None, parent.split(".")):
        section = getattr(section, part)
    names = getattr(section, leaf, None) if leaf else None
    shown = ", ".join(_bounded(section, n) for n in names) if names else "no augmentation"
    preset = getattr(section, "preset", None)
    return f"{info.name}: {shown}" + (f" (preset {preset})" if preset else "")


def _bounded(section: BaseModel, name: str) -> str:
    """An augmentation's name with the bounds it draws from (`rotate ±90°`): the fields whose
    description starts with `name:`, so a bound the title omits cannot be mistaken for a fixed
    amount."""
    bounds = []
    for field, info in type(section).model_fields.items():
        about = info.description or ""
        if not about.startswith(f"{name}:"):
            continue
        value = getattr(section, field)
        if "either way" in about:  # a largest value drawn both ways
            bounds.append(f"±{value:g}" + ("°" if "angle" in about else ""))
        else:
            bounds.append(f"{field}={value:g}" if isinstance(value, float) else f"{field}={value}")
    return f"{name} {', '.join(bounds)}" if bounds else name


def write_preview(
    info: TrainerInfo,
    source: Path | None,
    overrides: dict[str, Any],
    names: list[str] | None,
    n: int,
    seed: int,
    out: Path,
) -> Path:
    """Draw n training images beside their augmented copies into the PNG `out`.

    Raises:
        SweeperError: a bad request (`check_request`), a trainer with no augmentation preview,
            or a config that cannot be built (`preview_config`).
    """
    check_request(n, out)
    preview = info.augment_fn()
    if preview is None:
        raise SweeperError(f"trainer {info.name!r} has no augmentation preview")
    config = preview_config(info, source, overrides, names)
    from sweeper.analysis.augment_grid import draw_grid  # matplotlib, once the input is good

    return draw_grid(preview(config, n, seed), out, describe(info, config))
