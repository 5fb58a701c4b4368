"""Dotted paths (`optim.lr`) into nested configs: the names of swept parameters."""

from __future__ import annotations

import copy
import difflib
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {dotted path: leaf}. Lists are leaves (a list is one value)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """{dotted path: leaf} -> nested dict; the inverse of `flatten`."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        set_path(tree, path, value)
    return tree


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set `tree` at the dotted `path` in place, making (or replacing a non-dict with) each
    missing section on the way."""
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def with_path(tree: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `tree` with `value` at the dotted `path` (`tree` is left as it was)."""
    out = copy.deepcopy(tree)
    set_path(out, path, value)
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a deep copy of `base`: dicts merge key by key, anything else in
    `over` (a list too) replaces what `base` had. Used for `--smoke` and stage bases."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType) or str(origin) == "typing.Annotated":
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def _is_mapping(annotation: Any) -> bool:
    return get_origin(annotation) is dict or annotation is dict


def missing_part(model: type[BaseModel], path: str) -> str | None:
    """None when `path` names a field of `model`; else a message saying where it breaks."""
    parts = path.split(".")
    candidates: list[type[BaseModel]] = [model]  # a union field may hold several models
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the config"
        if not candidates:
            return f"{where} is a value, not a section"
        fields = [c.model_fields[part] for c in candidates if part in c.model_fields]
        if not fields:
            known = sorted({name for c in candidates for name in c.model_fields})
            close = difflib.get_close_matches(part, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (fields: {', '.join(known)})"
            return f"{where} has no field {part!r}{hint}"
        if any(_is_mapping(f.annotation) for f in fields):
            return None  # free-form keys below a dict field
        candidates = [m for f in fields for m in _models_in(f.annotation)]
    return None
