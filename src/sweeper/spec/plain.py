"""A plain W&B sweep config (`program`/`command`, no `trainer`), run as it is by local agents.

It is already a sweep config: it is checked (W&B's JSON schema, what the local engine can
run, the program and the command's macros) but not compiled. Each trial runs where `wandb agent`
runs it: in the launcher's working directory, so `program` and the data paths a program opens
are relative to it (see `program_folder`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from sweeper.errors import SpecError, shown
from sweeper.spec.command import CommandError, check_command, command_of, uses_program
from sweeper.spec.compile import check_wandb_schema, deprecated_distributions
from sweeper.spec.models import (
    NAME_MAX,
    Agents,
    Hyperband,
    Seed,
    as_distribution,
    check_wandb_name,
    first_error,
)
from sweeper.spec.scheduler import check_metrics, check_scheduler
from sweeper.sweep import ParameterClash, flat_parameters

KIND = "wandb-command"
"""The `kind` recorded in a plain sweep's stored spec."""


def is_plain(raw: dict[str, Any]) -> bool:
    """Whether a loaded YAML file is a plain W&B sweep config (it names a `program` or a
    `command`, as `wandb sweep` needs) rather than a sweeper spec (which names a `trainer`)."""
    return ("program" in raw or "command" in raw) and "trainer" not in raw


@dataclass(frozen=True)
class PlainSweep:
    """A loaded plain W&B sweep config: what `launch` needs of it."""

    config: dict[str, Any]
    path: str
    folder: str
    """Absolute: where trials run and `program` is found."""
    hash: str
    agents: Agents = field(default_factory=Agents)
    warnings: tuple[str, ...] = ()
    """What W&B only warns about (a deprecated distribution), one line each."""
    note: str | None = None
    """Said once at launch when trials run elsewhere than the launcher's directory."""
    seed: int | None = None
    """The file's top-level `seed` (sweeper's key, kept out of `config`: W&B's schema has
    none); None: draw one when the sweep is made."""
    scheduler_source: str | None = None
    """`scheduler.source` as found (absolute), when the engine loads a function from it."""

    @property
    def name(self) -> str:
        """The config's `name`, else the file's stem (`sweep.yaml` -> `sweep`)."""
        return str(self.config.get("name") or Path(self.path).stem)

    @property
    def entity(self) -> str | None:
        """The config's W&B `entity`; None: the login's default entity."""
        return self.config.get("entity")

    @property
    def project(self) -> str:
        """The config's W&B `project`, else `sweeper`."""
        return str(self.config.get("project") or "sweeper")

    def record(self) -> dict[str, Any]:
        """What the store keeps as this sweep's spec."""
        record = {"kind": KIND, "name": self.name, "folder": self.folder}
        if self.scheduler_source:
            record["scheduler_source"] = self.scheduler_source
        return record


def load_plain(
    file: str, raw: dict[str, Any], overrides: dict[str, Any] | None, smoke: bool
) -> PlainSweep:
    """A plain W&B sweep config (`raw`, read from `file`), checked as `wandb sweep` and W&B's
    engine would: names, parameters, W&B's schema, what the method can search, `metric` where
    bayes or early_terminate needs one, hyperband's keys, `run_cap`, `metrics` and `scheduler`
    (see `sweeper.spec.scheduler`), and the `command`. A top-level `seed` is sweeper's own key:
    it is taken out of the config W&B gets.

    W&B: https://docs.wandb.ai/guides/sweeps/define-sweep-configuration.

    Raises:
        SpecError: `--set` or `--smoke` given (a plain sweep has neither), or any of the checks
            above fails; the message names the field.
    """
    if overrides:
        raise SpecError(
            file, "--set", "a plain W&B sweep has no trainer config; edit its `parameters`"
        )
    if smoke:
        raise SpecError(file, "smoke", "--smoke given, but a plain W&B sweep has no `smoke`")
    _check_names(raw, file)
    seed = _seed(raw.get("seed"), file)
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    raw = {key: value for key, value in raw.items() if key != "seed"}
    parameters = raw.get("parameters")
    try:
        named = flat_parameters(parameters if isinstance(parameters, dict) else {})
    except ParameterClash as exc:
        raise SpecError(file, f"parameters.{exc.name}", str(exc)) from None
    for name, param in named.items():
        if not isinstance(param, dict):
            raise SpecError(
                file,
                f"parameters.{name}",
                f"expected {{value: ...}}, {{values: [...]}} or a distribution, got {shown(param)}",
            )
        try:
            as_distribution(param)
        except ValidationError as exc:
            where, msg = first_error(exc)
            raise SpecError(
                file, ".".join(filter(None, ("parameters", name, where))), msg
            ) from None
    check_wandb_schema(raw, file, "the file")
    check_metrics(raw.get("metrics"), file)
    scheduler = check_scheduler(raw, file)
    method: str = raw["method"]  # W&B's schema requires one of grid, random, bayes, custom
    engine = (raw.get("scheduler") or {}).get("engine", "wandb")
    searched = method if engine == "wandb" else "custom"  # optuna and ax never read `method`
    from sweeper.spec.load import check_search  # load imports this module

    search = {n: as_distribution(p) for n, p in flat_parameters(raw["parameters"]).items()}
    check_search(search, searched, file, "parameters")
    if not raw.get("metric") and (searched == "bayes" or raw.get("early_terminate")):
        why = "bayes search" if method == "bayes" else "early_terminate"
        raise SpecError(file, "metric", f"{why} needs a `metric` to optimise")
    if raw.get("early_terminate"):
        try:
            Hyperband.model_validate(raw["early_terminate"])
        except ValidationError as exc:
            raise SpecError(
                file, "early_terminate", exc.errors()[0]["msg"].removeprefix("Value error, ")
            ) from None
    cap = raw.get("run_cap")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise SpecError(file, "run_cap", f"must be a whole number of at least 1, got {shown(cap)}")
    command = command_of(raw)
    try:
        check_command(command)
    except CommandError as exc:
        raise SpecError(file, "command", str(exc)) from None
    folder, note = program_folder(file, raw, uses_program(command))
    warnings = tuple(
        f"{file}: parameters.{name}: {message}"
        for name, message in deprecated_distributions(raw["parameters"]).items()
    )
    return PlainSweep(
        config=raw,
        path=file,
        folder=str(folder),
        hash=digest,
        warnings=warnings + scheduler.warnings,
        note=note,
        seed=seed,
        scheduler_source=str(scheduler.source) if scheduler.source else None,
    )


def _seed(value: Any, file: str) -> int | None:
    """The file's `seed`, a whole number from 0 to `models.SEED_MAX` (strictly: not `"42"` nor 1e3).

    Raises:
        SpecError: anything else.
    """
    if value is None:
        return None
    try:
        return TypeAdapter(Seed).validate_python(value)
    except ValidationError:
        raise SpecError(
            file, "seed", f"expected a whole number from 0 to 2**63 - 1, got {shown(value)}"
        ) from None


def program_folder(file: str, raw: dict[str, Any], runs_program: bool) -> tuple[Path, str | None]:
    """Where the trials run, and a note when that is not the launcher's directory.

    `wandb agent` runs the command in its own working directory with `program` as written
    (wandb/wandb_agent.py: `AgentProcess` hands `subprocess.Popen` no cwd), so
    `program: tools/train.py` is found from the repository root it is launched in. As a
    fallback, a program found only beside the sweep file runs from that folder.

    Raises:
        SpecError: the command runs ${program} and it is in neither place.
    """
    here = Path.cwd().resolve()
    if not runs_program:
        return here, None
    if not raw.get("program"):
        raise SpecError(file, "program", "the command runs ${program}, but none is given")
    program = str(raw["program"])
    beside = Path(file).resolve().parent
    if (here / program).is_file():
        return here, None
    if (beside / program).is_file():
        note = f"{file}: program {program} is not in {here}; trials run in {beside}, beside it"
        return beside, note
    looked = here if here == beside else f"{here} and {beside}"
    raise SpecError(file, "program", f"{program} not found (looked in {looked})")


def _check_names(raw: dict[str, Any], file: str) -> None:
    """The sweep's name, project and entity as W&B takes them (see `check_wandb_name`)."""
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise SpecError(file, "name", f"expected text, got {shown(name)}")
    if name is not None and len(name) > NAME_MAX:
        raise SpecError(file, "name", f"{len(name):,} characters; the limit is {NAME_MAX}")
    for key in ("project", "entity"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise SpecError(file, key, f"expected text, got {shown(value)}")
        try:
            check_wandb_name(value)
        except ValueError as exc:
            raise SpecError(file, key, str(exc)) from None
