"""A sweep's `scheduler:`, `metrics:` and `method: custom`, checked as wandb 0.31's sweep
scheduler reads them, before anything runs.

`wandb sweep-scheduler` builds its optimizer from these keys at start-up
(wandb/sdk/sweeps/scheduler/optimizer.py `make_optimizer`) and fails there on a missing engine
package, a `source` file it cannot import or a parameter its engine cannot express; here the
same faults are one line naming the field, at `validate`. The engine's own code does the
reading (wandb's `load_source_object`, `load_trial_constructor`, optuna's parameter converter),
so what passes here is what the scheduler accepts.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sweeper.errors import SpecError, shown
from sweeper.spec.models import (
    Objective,
    Scheduler,
    check_method,
    check_objectives,
    first_error,
)
from sweeper.sweep.engine import SCHEDULER_PACKAGES

READS: dict[str, tuple[str, ...]] = {
    "wandb": (),
    "optuna": ("optimizer", "search_space"),
    "ax": ("optimizer",),
}
"""The functions each engine loads from `source` (build_wandb_optimizer warns that it reads
neither; build_ax_optimizer that it does not read `search_space`)."""


@dataclass(frozen=True)
class CheckedScheduler:
    """What the checks found that running the sweep needs."""

    source: Path | None = None
    """`scheduler.source` as found (absolute), when the engine loads a function from it."""
    sample: dict[str, Any] | None = None
    """One configuration `search_space` returned for a throwaway optuna trial."""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    """What wandb's scheduler only warns about, one line each."""


def check_metrics(raw: Any, file: str) -> list[Objective] | None:
    """A W&B config's `metrics:` (None when absent).

    Raises:
        SpecError: not a list of {name, goal} (goal maximize or minimize), fewer than two, or a
            name twice; the field names the entry (`metrics.1.goal`).
    """
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise SpecError(file, "metrics", f"expected a list of {{name, goal}}, got {shown(raw)}")
    objectives = []
    for i, item in enumerate(raw):
        try:
            objectives.append(Objective.model_validate(item))
        except ValidationError as exc:
            where, message = first_error(exc)
            field = ".".join(filter(None, ("metrics", str(i), where)))
            raise SpecError(file, field, message) from None
    try:
        return check_objectives(objectives)
    except ValueError as exc:
        raise SpecError(file, "metrics", str(exc)) from None


def check_scheduler(
    config: Mapping[str, Any],
    file: str,
    parameter_field: Callable[[str], str] = lambda name: f"parameters.{name}",
) -> CheckedScheduler:
    """A W&B sweep config's `scheduler:` block and what it names, as the scheduler would load
    them; `method: custom` without one. `parameter_field` names a parameter's field in the
    file (a spec's `search.x`).

    Raises:
        SpecError: a key wandb's scheduler does not read, an unknown engine, `method` and the
            engine disagree, no `metric`/`metrics` for optuna or ax, the engine's package not
            installed (the line says how to install it), `source` missing or not found, a
            function it names missing, not callable or of the wrong shape, or a parameter
            wandb's optuna engine cannot express.
    """
    method = str(config.get("method"))
    raw = config.get("scheduler")
    if raw is None:
        try:
            check_method(method, None)
        except ValueError as exc:
            raise SpecError(file, "method", str(exc)) from None
        return CheckedScheduler()
    scheduler = _scheduler_model(raw, file)
    try:
        check_method(method, scheduler)
    except ValueError as exc:
        raise SpecError(file, "method", str(exc)) from None
    engine = scheduler.engine
    if engine != "wandb" and not (config.get("metric") or config.get("metrics")):
        raise SpecError(
            file, "metric", f"engine {engine} optimises the sweep's `metric` or `metrics`: give one"
        )
    if engine in SCHEDULER_PACKAGES:
        module, install = SCHEDULER_PACKAGES[engine]
        try:
            importlib.import_module(module)
        except ImportError:
            raise SpecError(
                file,
                "scheduler.engine",
                f"engine {engine} needs the {module} package, not installed here: {install}",
            ) from None
    named = {key: getattr(scheduler, key) for key in ("optimizer", "search_space")}
    unread = [key for key, name in named.items() if name and key not in READS[engine]]
    lines = [f"{file}: scheduler.{key}: engine {engine} does not read it" for key in unread]
    loads = {key: name for key, name in named.items() if name and key in READS[engine]}
    if scheduler.source and not loads:
        lines.append(f"{file}: scheduler.source: nothing of engine {engine} is loaded from it")
    if engine == "wandb":
        _check_flat(config, file, parameter_field)
    if not loads:
        if engine == "optuna":
            _check_optuna_parameters(config, file, parameter_field)
        _check_builds(config, None, file)
        return CheckedScheduler(warnings=tuple(lines))
    if not scheduler.source:
        key = next(iter(loads))
        raise SpecError(
            file, "scheduler.source", f"missing: the Python file that defines {key} {loads[key]!r}"
        )
    source = find_source(file, scheduler.source)
    sample = None
    if "optimizer" in loads:
        _check_optimizer(source, loads["optimizer"], file)
    if "search_space" in loads:
        sample = _sample_search_space(source, loads["search_space"], file)
    else:
        _check_optuna_parameters(config, file, parameter_field)
    _check_builds(config, source, file)
    return CheckedScheduler(source=source, sample=sample, warnings=tuple(lines))


@contextmanager
def _quiet_engines() -> Iterator[None]:
    """The engines' own chatter while an optimizer is built to be checked: optuna's INFO line
    of each study made, and wandb's warnings, which `check_scheduler` says itself."""
    optuna = sys.modules.get("optuna")
    before = optuna.logging.get_verbosity() if optuna is not None else None
    if optuna is not None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        if optuna is not None and before is not None:
            optuna.logging.set_verbosity(before)


def _check_flat(
    config: Mapping[str, Any], file: str, parameter_field: Callable[[str], str]
) -> None:
    """wandb's scheduler engine `wandb` (scheduler/wandb.py WandbOptimizer) keeps each
    suggestion as `sweeps` returns it, nested along a `parameters:` block, while `sweeps`'
    grid looks earlier runs up by flat names: under it a nested block's first grid point is
    suggested again and again, and no run records its point.

    Raises:
        SpecError: naming the first nested block.
    """
    for name, parameter in (config.get("parameters") or {}).items():
        if isinstance(parameter, Mapping) and "parameters" in parameter:
            raise SpecError(
                file,
                parameter_field(name),
                "a nested `parameters:` block: wandb's scheduler engine `wandb` walks one flat"
                " level (its grid would repeat the block's first point); name the key with a"
                " dot, or drop `scheduler:` for W&B's own search",
            )


def _check_builds(config: Mapping[str, Any], source: Path | None, file: str) -> None:
    """Build the optimizer as `wandb sweep-scheduler` does at start-up (wandb's
    `make_optimizer`: the engine's study or client from `optimizer`, its directions checked
    against `metric`/`metrics`), so a factory that raises, returns the wrong thing or
    disagrees with the objectives is said here, before a sweep is made.

    Raises:
        SpecError: at `scheduler.optimizer` (or `scheduler`), with the optimizer's reason.
    """
    from wandb.sdk.sweeps.scheduler.optimizer import make_optimizer
    from wandb.sdk.sweeps.sweep_info import SweepInfo

    block = dict(config["scheduler"])
    if source is not None:
        block["source"] = str(source)
    info = SweepInfo("validate", "validate", "", "", {**config, "scheduler": block}, "")
    where = "scheduler.optimizer" if block.get("optimizer") else "scheduler"
    try:
        with _quiet_engines():
            make_optimizer(info)
    except (Exception, SystemExit) as exc:  # the user's factory, or the engine's own check
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SpecError(file, where, f"the scheduler cannot start: {reason}") from None


def find_source(file: str, source: str) -> Path:
    """Where `scheduler.source` is: as `wandb sweep-scheduler` finds it, in the working
    directory (its help: "run in a directory containing the Python file referenced by
    `source`"); failing that, beside the sweep file, as `program` is found (see
    `sweeper.spec.plain.program_folder`).

    Raises:
        SpecError: it is in neither place.
    """
    here = Path.cwd().resolve()
    beside = Path(file).resolve().parent
    for folder in (here, beside):
        if (folder / source).is_file():
            return (folder / source).resolve()
    looked = here if here == beside else f"{here} and {beside}"
    raise SpecError(file, "scheduler.source", f"{source} not found (looked in {looked})")


def _scheduler_model(raw: Any, file: str) -> Scheduler:
    """`raw` as a Scheduler; an unknown key is named with the keys wandb's scheduler reads."""
    try:
        return Scheduler.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc)
        if exc.errors()[0]["type"] == "extra_forbidden":
            message = unknown_key(where)
        raise SpecError(file, ".".join(filter(None, ("scheduler", where))), message) from None


def unknown_key(key: str) -> str:
    """Why `scheduler.<key>` is refused: the keys wandb's scheduler reads instead."""
    keys = ", ".join(Scheduler.model_fields)
    message = f"not a key of W&B's scheduler (it reads {keys})"
    if key == "batch_size":
        message += "; the batch is `wandb sweep-scheduler --batch-size`"
    return message


def _load(source: Path, name: str, key: str, file: str) -> Any:
    """`name` from the file `source`, with wandb's own loader (it runs the file as a module).

    Raises:
        SpecError: the file fails to run (at `scheduler.source`) or lacks `name` (at `key`).
    """
    from wandb.sdk.sweeps.scheduler.client import load_source_object

    try:
        return load_source_object(str(source), name)
    except ValueError as exc:  # wandb's own: not importable, or no such attribute
        hint = " (a name defined in the file; a dotted path is not followed)" if "." in name else ""
        raise SpecError(file, f"scheduler.{key}", f"{exc}{hint}") from None
    except (Exception, SystemExit) as exc:  # the user's module failed (or exited) as it ran
        raise SpecError(
            file, "scheduler.source", f"{source} fails to import: {type(exc).__name__}: {exc}"
        ) from None


def _check_optimizer(source: Path, name: str, file: str) -> None:
    """`optimizer` names a function of one argument, the sweep's SweepInfo, as wandb's
    `load_optimizer_config` requires before it calls it (not called here: it builds the
    engine's study or client, which the scheduler does once it runs).

    Raises:
        SpecError: not found, not callable, or not callable with one argument.
    """
    factory = _load(source, name, "optimizer", file)
    if not callable(factory):
        raise SpecError(
            file,
            "scheduler.optimizer",
            f"{name!r} in {source} is a {type(factory).__name__}, "
            "not a function of the sweep's SweepInfo",
        )
    try:
        inspect.signature(factory).bind(None)
    except TypeError:
        raise SpecError(
            file,
            "scheduler.optimizer",
            f"{name!r} in {source} cannot be called with one argument (the sweep's SweepInfo)",
        ) from None
    except ValueError:  # no signature to read (a builtin): the scheduler finds out
        return


def _sample_search_space(source: Path, name: str, file: str) -> dict[str, Any]:
    """One configuration from optuna's `search_space` (define-by-run), checked with wandb's
    `load_trial_constructor`: a function of one optuna Trial returning a mapping.

    Raises:
        SpecError: not found, the wrong shape, or failing on a trial.
    """
    import optuna
    from wandb.sdk.sweeps.scheduler.optuna import load_trial_constructor

    _load(source, name, "search_space", file)  # the file's own faults, named as such
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in memory"
    try:
        constructor = load_trial_constructor(str(source), name)
        params = constructor(optuna.create_study().ask())
    except ValueError as exc:  # wandb's own: the wrong shape
        raise SpecError(file, "scheduler.search_space", str(exc)) from None
    except (Exception, SystemExit) as exc:  # the user's function failed (or exited) on a trial
        raise SpecError(
            file,
            "scheduler.search_space",
            f"{name!r} in {source} fails on a trial: {type(exc).__name__}: {exc}",
        ) from None
    finally:
        optuna.logging.set_verbosity(verbosity)
    return dict(params)


def _check_optuna_parameters(
    config: Mapping[str, Any], file: str, parameter_field: Callable[[str], str]
) -> None:
    """Each parameter as wandb's optuna engine reads `parameters` without a `search_space`:
    one flat level, each a distribution optuna has (its `sweep_parameter_to_distribution`).

    Raises:
        SpecError: naming the first parameter it cannot convert.
    """
    from wandb.sdk.sweeps.scheduler.optuna import sweep_parameter_to_distribution

    for name, parameter in (config.get("parameters") or {}).items():
        if isinstance(parameter, dict) and "parameters" in parameter:
            raise SpecError(
                file,
                parameter_field(name),
                "a nested `parameters:` block: wandb's optuna engine reads one flat level "
                "(name the key with a dot, or give scheduler.search_space)",
            )
        try:
            with warnings.catch_warnings():  # optuna's note on a list value: memory is fine
                warnings.simplefilter("ignore")
                sweep_parameter_to_distribution(parameter)
        except (ValueError, TypeError, KeyError) as exc:
            raise SpecError(
                file, parameter_field(name), f"wandb's optuna engine cannot read it: {exc}"
            ) from None
