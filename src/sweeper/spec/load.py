"""Read a spec file and reject every mistake that can be known before a GPU is touched."""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sweeper.errors import NotFoundError, SpecError, shown
from sweeper.spec.compile import check_wandb_schema, compile_stage, deprecated_distributions
from sweeper.spec.models import (
    GRID_DISTRIBUTIONS,
    MAX_GRID,
    Agents,
    Distribution,
    Spec,
    as_distribution,
    check_method,
    first_error,
)
from sweeper.spec.paths import deep_merge, missing_part, set_path, with_path
from sweeper.spec.plain import PlainSweep, is_plain, load_plain
from sweeper.spec.scheduler import CheckedScheduler, check_scheduler, unknown_key
from sweeper.sweep import planned_trials
from sweeper.trainers.common.config import TrainConfig
from sweeper.trainers.registry import TrainerInfo, get_trainer

FULL_CHECK_LIMIT = 4096
"""Grids up to this size are validated point by point (catches cross-field errors)."""
MAX_YAML_NODES = 100_000
"""A spec expanding past this many YAML values is refused (it would be an alias bomb)."""
MAX_SPEC_BYTES = 2 * 1024 * 1024
"""Refused before parsing: building a tree of millions of values takes seconds (a real spec is
a few kilobytes; 100,000 values fit in about 1 MB)."""


@dataclass(frozen=True)
class LoadedSpec:
    spec: Spec
    path: str
    hash: str
    """sha256 of the effective spec (after --smoke and --set): what exactly ran."""
    warnings: tuple[str, ...] = ()
    """What W&B only warns about (a deprecated distribution), one line each."""
    scheduler_source: str | None = None
    """`scheduler.source` as found (absolute), when the engine loads a function from it."""

    @property
    def agents(self) -> Agents:
        """The spec's `agents:` block (slots per trial, parallelism, timeouts)."""
        return self.spec.agents

    @property
    def entity(self) -> str | None:
        """The W&B entity the sweep is created under; None: the login's default entity."""
        return self.spec.entity

    @property
    def project(self) -> str:
        """The W&B project the sweep and its runs belong to."""
        return self.spec.project


def parse_value(text: str) -> Any:
    """A --set value: YAML scalars and lists (`1e-3`, `true`, `[1, 2]`), else the string."""
    try:
        return yaml.load(text, Loader=_SpecLoader)  # a SafeLoader subclass
    except (yaml.YAMLError, _Refused):
        return text


def parse_overrides(pairs: list[str], source: str = "--set") -> dict[str, Any]:
    """`PATH=VALUE` pairs as {dotted path: value}, each value read by `parse_value`.

    Raises:
        SpecError: a pair without `=` or with an empty path (`source` names where it came from).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        path, sep, value = pair.partition("=")
        if not sep or not path:
            raise SpecError(source, pair, "expected PATH=VALUE, e.g. optim.lr=1e-3")
        out[path.strip()] = parse_value(value)
    return out


class _SpecLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML (libyaml's parser when present) that reads numbers as W&B does and refuses
    what YAML allows but a spec never means: a key given twice (silently last-wins otherwise).

    The one loader for every YAML file (and --set value) sweeper reads.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _Refused(f"`{key}` is given twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    """A well-formed YAML document that is not an acceptable spec."""


# YAML 1.2's float forms that YAML 1.1 (PyYAML) reads as text: an exponent with no decimal
# point or with no sign (`1e-5`, `3e6`, `-2E+3`, `1.5e3`). W&B's server parses sweep files
# with a YAML 1.2 reader (Go) and `wandb sweep` sends it `1e-5` unquoted, so W&B reads a
# number; JSON reads these as numbers too. A quoted "1e-5" stays text: resolvers apply only
# to plain scalars.
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

MAX_DEPTH = 64
"""Nesting deeper than this is refused: no sweep config nests so deep, and deeper documents
overflow the parser's stack (libyaml's composer recurses in C) or Python's."""


def _check_depth(text: str) -> None:
    """Refuse a document nested past MAX_DEPTH, from the parser's events (libyaml's parser
    keeps its own stack; composing the document into nodes is what recurses)."""
    events = _SpecLoader(text)
    depth = 0
    try:
        while events.check_event():
            event = events.get_event()
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    # The parser marks every event; the stubs type a mark as optional.
                    mark = event.start_mark
                    where = f" (line {mark.line + 1})" if mark is not None else ""
                    raise _Refused(f"nested more than {MAX_DEPTH} levels deep{where}")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    finally:
        events.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes the document holds once every alias is expanded (an alias is its anchor's node,
    so memoising by identity counts each expansion without performing it): a YAML bomb or a
    giant list is refused before anything is built from it."""
    if sizes.get(id(node)) == 0:  # reached again while its own children are counted
        raise _Refused(
            f"an alias refers to the value that holds it (line {node.start_mark.line + 1})"
        )
    if id(node) not in sizes:
        sizes[id(node)] = 0
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise _Refused(
                f"the document holds more than {MAX_YAML_NODES:,} values (aliases expanded)"
            )
    return sizes[id(node)]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A spec or sweep file's top-level mapping, read with the one YAML loader sweeper uses.

    Size, nesting depth and alias expansion are bounded before the document is built
    (MAX_SPEC_BYTES, MAX_DEPTH, MAX_YAML_NODES), so a hostile file fails fast.

    Raises:
        SpecError: the file is missing, unreadable, a folder, too large, not UTF-8, not YAML,
            repeats a key, nests or expands past the limits, or is not a mapping.
    """
    file = str(path)
    try:
        raw = Path(path).read_bytes()
        if len(raw) > MAX_SPEC_BYTES:
            limit = f"limit {MAX_SPEC_BYTES // 2**20} MiB"
            raise SpecError(file, "", f"{len(raw):,} bytes: larger than any spec ({limit})")
        text = raw.decode("utf-8")
    except IsADirectoryError:
        raise SpecError(file, "", "is a folder, not a YAML file") from None
    except OSError as exc:
        raise SpecError(file, "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise SpecError(
            file, "", f"not UTF-8 text (byte 0x{byte:02x} at offset {exc.start})"
        ) from None
    loader = _SpecLoader(text)
    try:
        _check_depth(text)
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node, {})
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(file, "", f"invalid YAML{where}") from None
    except _Refused as exc:
        raise SpecError(file, "", str(exc)) from None
    except RecursionError:  # the pure-Python parser, where libyaml is missing
        raise SpecError(file, "", f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecError(file, "", "expected a mapping of spec fields at the top level")
    _check_strings(data, file)
    return data


def _check_strings(data: dict[str, Any], file: str) -> None:
    """Refuse a NUL byte in any key or text value, naming where: no file name, command
    argument or environment variable can hold one, so the trial would die on it later."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    raise SpecError(file, where, f"the key {shown(key)} holds a NUL byte")
                stack.append((f"{where}.{key}" if where else str(key), item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str) and "\x00" in value:
            raise SpecError(file, where, f"{shown(value)} holds a NUL byte")


def load_sweep_file(
    path: str | Path, overrides: dict[str, Any] | None = None, smoke: bool = False
) -> LoadedSpec | PlainSweep:
    """A sweeper spec (it names a `trainer`), or a plain W&B sweep config (`program` or
    `command`, no trainer) to run as it is."""
    raw = read_yaml(path)
    if is_plain(raw):
        return load_plain(str(path), raw, overrides, smoke)
    return _load_spec(str(path), raw, overrides, smoke)


def load_spec(
    path: str | Path, overrides: dict[str, Any] | None = None, smoke: bool = False
) -> LoadedSpec:
    """Load, apply --smoke and --set (trainer config paths into `base`), and validate."""
    return _load_spec(str(path), read_yaml(path), overrides, smoke)


def _load_spec(
    file: str, raw: dict[str, Any], overrides: dict[str, Any] | None, smoke: bool
) -> LoadedSpec:
    if "trainer" not in raw:
        raise SpecError(
            file,
            "trainer",
            "missing: a sweeper spec names a `trainer`; a plain W&B sweep config names "
            "`program` or `command`",
        )
    mixed = [key for key in ("program", "command") if key in raw]
    if mixed:
        raise SpecError(
            file,
            mixed[0],
            "a sweeper spec runs its `trainer`, so it has no program or command; to run your "
            "own program, drop `trainer` (a plain W&B sweep config)",
        )
    if smoke:
        if not isinstance(raw.get("smoke"), dict):
            raise SpecError(file, "smoke", "--smoke given, but the spec has no `smoke` section")
        raw = deep_merge(raw, raw["smoke"])
    for key, value in (overrides or {}).items():
        raw["base"] = with_path(raw.get("base") or {}, key, value)
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc)
        if where.startswith("scheduler.") and exc.errors()[0]["type"] == "extra_forbidden":
            message = unknown_key(where.removeprefix("scheduler."))
        raise SpecError(file, where, message) from None
    check_spec(spec, file)
    scheduler = _check_scheduler(spec, file)
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    return LoadedSpec(
        spec=spec,
        path=file,
        hash=digest,
        warnings=_warnings(spec, file) + scheduler.warnings,
        scheduler_source=str(scheduler.source) if scheduler.source else None,
    )


def _check_scheduler(spec: Spec, file: str) -> CheckedScheduler:
    """Each stage's compiled config as wandb's sweep scheduler reads it (`check_scheduler`),
    and the configuration a `search_space` returns as a config of the spec's trainer.

    Raises:
        SpecError: naming the spec's field (`search.optim.lr`, `scheduler.search_space`).
    """
    checked = CheckedScheduler()
    if spec.scheduler is None:
        return checked
    for i, stage in enumerate(spec.stage_list()):
        prefix = f"stages.{i}.search" if spec.stages else "search"
        field = _field_in(prefix, stage.search)
        checked = check_scheduler(compile_stage(spec, i, file=file), file, field)
    if checked.sample is not None:
        model = get_trainer(spec.trainer).config_model()
        for name, value in checked.sample.items():
            problem = missing_part(model, name)
            if problem:
                raise SpecError(
                    file,
                    "scheduler.search_space",
                    f"suggests {name!r}, not a field of the {spec.trainer} config: {problem}",
                )
            validate_config(
                model, with_path(spec.base, name, value), file, "scheduler.search_space", (value,)
            )
    return checked


def _warnings(spec: Spec, file: str) -> tuple[str, ...]:
    """Deprecated distributions, which W&B runs with a warning (see deprecated_distributions)."""
    lines = []
    for i, stage in enumerate(spec.stage_list()):
        prefix = f"stages.{i}.search" if spec.stages else "search"
        params = {name: dist.to_wandb() for name, dist in stage.search.items()}
        for name, message in deprecated_distributions(params).items():
            lines.append(f"{file}: {prefix}.{name}: {message}")
    return tuple(lines)


def check_spec(spec: Spec, file: str) -> None:
    """Search paths exist, every value and bound passes the trainer config, grids are finite.

    A grid of at most FULL_CHECK_LIMIT points has every combination validated; a larger one
    only each value and bound on its own.

    Raises:
        SpecError: an unknown trainer, a metric (or one of `metrics`) the trainer never logs,
            an objective without its goal, `method: custom` without an engine to suggest runs
            (see `check_method`), bayes or early_terminate without a `metric`, a searched path
            that is not a config field, `seed` swept beside `repeats`, a search W&B's engine
            cannot run (see `check_search`), or a base, value or combination the config model
            rejects.
    """
    try:
        info = get_trainer(spec.trainer)
    except NotFoundError as exc:
        raise SpecError(file, "trainer", str(exc)) from None
    if spec.metric is not None:
        _check_logged(info, spec.metric.name, file, "metric.name")
    for i, objective in enumerate(spec.metrics or []):
        _check_logged(info, objective.name, file, f"metrics.{i}.name")
        if objective.goal is None:  # W&B's default (minimize) is not a spec metric's (maximize)
            raise SpecError(
                file,
                f"metrics.{i}.goal",
                f"missing: say whether {objective.name} is maximized or minimized",
            )
    engine = spec.scheduler.engine if spec.scheduler else "wandb"
    if spec.metric is None and spec.early_terminate:  # W&B's hyperband ranks by `metric`
        raise SpecError(file, "metric", "early_terminate needs a `metric` to optimise")
    model = info.config_model()
    validate_config(model, spec.base, file, "base")
    for i, stage in enumerate(spec.stage_list()):
        prefix = f"stages.{i}.search" if spec.stages else "search"
        method = stage.method or spec.method
        try:
            check_method(method, spec.scheduler)
        except ValueError as exc:
            where = f"stages.{i}.method" if stage.method and spec.stages else "method"
            raise SpecError(file, where, str(exc)) from None
        if engine != "wandb":
            method = "custom"  # optuna and ax never read `method`: W&B's search rules are moot
        if method == "bayes" and spec.metric is None:  # W&B's bayes models one `metric`
            where = f"stages.{i}.method" if stage.method and spec.stages else "method"
            raise SpecError(file, where, "bayes search needs a `metric` to optimise")
        if "seed" in stage.search and spec.repeats > 1:
            raise SpecError(file, f"{prefix}.seed", "seed is swept by `repeats`; drop one of them")
        for param in stage.search:
            problem = missing_part(model, param)
            if problem:
                raise SpecError(
                    file,
                    f"{prefix}.{param}",
                    f"not a field of the {spec.trainer} config: {problem}",
                )
        check_search(stage.search, method, file, prefix, spec.repeats)
        for param, value in stage.search.items():
            field = f"{prefix}.{param}"
            dist = as_distribution(value)
            for j, sample in enumerate(representative_values(dist)):
                where = f"{field}[{j}]" if dist.kind == "categorical" else field
                validate_config(model, with_path(spec.base, param, sample), file, where, (sample,))
        if method == "grid" and grid_size(stage.search) * spec.repeats <= FULL_CHECK_LIMIT:
            _check_combinations(model, spec.base, stage.search, file, prefix)


def _field_in(prefix: str, search: dict[str, Distribution]) -> Callable[[str], str]:
    """The spec field a compiled parameter came from: a searched path, or `base`."""
    return lambda name: f"{prefix}.{name}" if name in search else f"base.{name}"


def _check_logged(info: TrainerInfo, metric: str, file: str, field: str) -> None:
    """Refuse a metric the trainer never logs: every trial would run, and the sweep fail at
    the end.

    Raises:
        SpecError: at `field`, with the closest name the trainer logs (or all of them).
    """
    if info.logs(metric):
        return
    close = difflib.get_close_matches(metric, info.metrics, n=1)
    hint = (
        f"; did you mean {shown(close[0])}?" if close else f" (it logs {', '.join(info.metrics)})"
    )
    raise SpecError(file, field, f"the {info.name} trainer never logs {shown(metric)}{hint}")


def check_search(
    search: dict[str, Distribution], method: str, file: str, prefix: str, repeats: int = 1
) -> None:
    """What W&B's engine cannot run, whatever the trainer: a grid too big or not discrete,
    a bayes search over weighted values.

    `repeats` multiplies the grid (a study's seeds are a swept `seed`). The grid's kinds are
    those `sweeps.grid_search` enumerates; bayes fails on `probabilities` in
    `sweeps.bayes_search` (W&B: https://docs.wandb.ai/guides/sweeps/sweep-config-keys).

    Raises:
        SpecError: a parameter W&B's sweep schema rejects, more than MAX_GRID values or grid
            points, `probabilities` under bayes, or a grid over a continuous or weighted
            parameter.
    """
    for param, dist in search.items():  # first: the engine cannot even read what this refuses
        if dist.kind == "constant":  # any value is one (a `value: null` has no `to_wandb` form)
            continue
        try:
            check_wandb_schema(
                {"method": method, "parameters": {param: dist.to_wandb()}}, file, what="it"
            )
        except SpecError as exc:
            raise SpecError(file, f"{prefix}.{param}", exc.message) from None
    for param, dist in search.items():
        if dist.values is not None and len(dist.values) > MAX_GRID:
            raise SpecError(
                file, f"{prefix}.{param}", f"{len(dist.values):,} values; the limit is {MAX_GRID:,}"
            )
    # Counted, not built (an int_uniform can span 10^12 points), when W&B's grid can enumerate
    # every parameter; the loop below names one it cannot.
    if method == "grid" and all(dist.kind in GRID_DISTRIBUTIONS for dist in search.values()):
        size = grid_size(search) * repeats
        if size > MAX_GRID:
            raise SpecError(file, prefix, f"grid has {size:,} points; the limit is {MAX_GRID:,}")
    for param, dist in search.items():
        field = f"{prefix}.{param}"
        if method == "bayes" and dist.probabilities:
            raise SpecError(
                file,
                field,
                "bayes search cannot weight values with `probabilities` (W&B's engine "
                "fails on them); drop them, or use method: random",
            )
        if method == "grid" and (dist.kind not in GRID_DISTRIBUTIONS or dist.probabilities):
            raise SpecError(
                file,
                field,
                f"grid search needs discrete values (a list, int_uniform or q_uniform), "
                f"got {dist.kind}{' with probabilities' if dist.probabilities else ''}",
            )


def base_config(
    trainer: str, source: Path | None, overrides: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """What `sweeper train` and `sweeper augment` start from: a spec's base (a spec of this
    trainer) or a config YAML, then the --set overrides. Returns it and the file to blame.

    Raises:
        SpecError: the file cannot be read as YAML (see `read_yaml`), or is a spec of another
            trainer.
    """
    file = str(source or "--set")
    raw = read_yaml(source) if source else {}
    if "trainer" in raw and raw["trainer"] != trainer:
        raise SpecError(
            file, "trainer", f"the spec is for {shown(raw['trainer'])}, not {trainer!r}"
        )
    base = raw.get("base", {}) if "trainer" in raw else raw
    for path, value in overrides.items():
        base = with_path(base, path, value)
    return base, file


def validate_config(
    model: type[TrainConfig],
    config: dict[str, Any],
    file: str,
    field: str,
    swept: tuple[Any] | None = None,
) -> BaseModel:
    """Validate a trainer config; `swept` holds the one searched value being tried, if any.

    Raises:
        SpecError: the model rejects the config; located at `field` plus the failing key, or,
            for a swept value, at `field` with the value quoted.
    """
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        loc, msg = first_error(exc)
        if swept is None:
            raise SpecError(file, f"{field}.{loc}" if loc else field, msg) from None
        elsewhere = f" (at {loc})" if loc and not field.endswith(loc) else ""
        raise SpecError(file, field, f"{shown(swept[0])} rejected: {msg}{elsewhere}") from None


def representative_values(dist: Distribution) -> list[Any]:
    """The values a trainer may receive at the edges of a parameter's range."""
    kind = dist.kind
    if kind == "constant":
        return [dist.value]
    if kind == "categorical":
        return list(dist.values or [])
    if kind in ("int_uniform",):
        low, high = dist.bounds
        return [int(low), int(high)]
    if kind in ("uniform", "q_uniform", "log_uniform_values", "q_log_uniform_values"):
        return list(dist.bounds)
    if kind in ("log_uniform", "q_log_uniform"):
        low, high = dist.bounds
        return [math.exp(low), math.exp(high)]
    if kind == "inv_log_uniform":
        low, high = dist.bounds
        return [math.exp(-high), math.exp(-low)]
    if kind == "inv_log_uniform_values":
        low, high = dist.bounds
        return [1 / high, 1 / low]
    if kind in ("normal", "q_normal"):
        return [dist.mu if dist.mu is not None else 0.0]
    if kind in ("log_normal", "q_log_normal"):
        return [math.exp(dist.mu if dist.mu is not None else 0.0)]
    a, b = dist.a or 1.0, dist.b or 1.0  # beta, q_beta: the mean
    return [a / (a + b)]


def grid_points(dist: Distribution) -> list[Any]:
    """A parameter's grid values in W&B's order (`sweeps.grid_search`): int_uniform is
    `range(min, max + 1)`, q_uniform `numpy.arange(min, max, q)`, values as listed."""
    if dist.kind == "constant":
        return [dist.value]
    if dist.kind == "int_uniform":
        low, high = dist.bounds
        return list(range(int(low), int(high) + 1))
    if dist.kind == "q_uniform":
        q = dist.q or 1.0
        low, high = dist.bounds
        return [low + k * q for k in range(math.ceil((high - low) / q))]
    return list(dist.values or [])


def grid_size(search: dict[str, Any]) -> int:
    """Points of the grid over `search` (a spec's search block), counted without listing, as
    `sweeper.sweep.planned_trials` counts the compiled sweep's (W&B's grid enumeration).

    A constant is one point, so it is left out (a `value: null` has no W&B form to count);
    `probabilities` do not change how many values there are, so they are left out too
    (`check_search` refuses them under grid with its own message).

    Raises:
        ValueError: a parameter W&B's grid cannot enumerate (a continuous distribution).
        jsonschema.ValidationError: W&B's schema does not accept a parameter.
    """
    swept = {path: as_distribution(value) for path, value in search.items()}
    parameters = {
        path: {key: v for key, v in dist.to_wandb().items() if key != "probabilities"}
        for path, dist in swept.items()
        if dist.kind != "constant"
    }
    size = planned_trials({"method": "grid", "parameters": parameters})
    assert size is not None  # a grid without a run_cap has a known length
    return size


def _check_combinations(
    model: type[TrainConfig], base: dict[str, Any], search: dict[str, Any], file: str, prefix: str
) -> None:
    names = list(search)
    axes = [grid_points(as_distribution(search[n])) for n in names]
    for point in itertools.product(*axes):
        config = copy.deepcopy(base)
        for name, value in zip(names, point, strict=True):
            set_path(config, name, value)
        try:
            model.model_validate(config)
        except ValidationError as exc:
            combo = ", ".join(f"{n}={shown(v)}" for n, v in zip(names, point, strict=True))
            raise SpecError(
                file, prefix, f"the grid point {combo} is invalid: {first_error(exc)[1]}"
            ) from None
