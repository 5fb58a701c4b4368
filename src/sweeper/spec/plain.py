"""A plain W&B sweep config (`program`/`command`, no `trainer`), run as it is by local agents.

It is already a sweep config: it is checked (W&B's JSON schema, what the local engine can
run, the program and the command's macros) but not compiled. Paths in it are relative to the
file's folder, which is where each trial runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sweeper.agent.command import CommandError, check_command, command_of, uses_program
from sweeper.errors import SpecError
from sweeper.spec.compile import check_wandb_schema
from sweeper.spec.models import Agents, Hyperband, as_distribution
from sweeper.sweep import flat_parameters

KIND = "wandb-command"
"""The `kind` recorded in a plain sweep's stored spec."""


def is_plain(raw: dict[str, Any]) -> bool:
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

    @property
    def name(self) -> str:
        return str(self.config.get("name") or Path(self.path).stem)

    @property
    def entity(self) -> str | None:
        return self.config.get("entity")

    @property
    def project(self) -> str:
        return str(self.config.get("project") or "sweeper")

    def record(self) -> dict[str, Any]:
        """What the store keeps as this sweep's spec."""
        return {"kind": KIND, "name": self.name, "folder": self.folder}


def load_plain(
    file: str, raw: dict[str, Any], overrides: dict[str, Any] | None, smoke: bool
) -> PlainSweep:
    if overrides:
        raise SpecError(
            file, "--set", "a plain W&B sweep has no trainer config; edit its `parameters`"
        )
    if smoke:
        raise SpecError(file, "smoke", "--smoke given, but a plain W&B sweep has no `smoke`")
    method = raw.get("method")
    parameters = raw.get("parameters")
    for name, param in flat_parameters(parameters if isinstance(parameters, dict) else {}).items():
        if not isinstance(param, dict):
            raise SpecError(
                file,
                f"parameters.{name}",
                f"expected {{value: ...}}, {{values: [...]}} or a distribution, got {param!r}",
            )
        try:
            as_distribution(param)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = first["msg"].removeprefix("Value error, ")
            raise SpecError(
                file, f"parameters.{name}", f"{where}: {msg}" if where else msg
            ) from None
    check_wandb_schema(raw, file, "the file")
    from sweeper.spec.load import check_search  # load imports this module

    search = {n: as_distribution(p) for n, p in flat_parameters(raw["parameters"]).items()}
    check_search(search, method, file, "parameters")
    if not raw.get("metric") and (method == "bayes" or raw.get("early_terminate")):
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
        raise SpecError(file, "run_cap", f"must be a whole number of at least 1, got {cap!r}")
    command = command_of(raw)
    try:
        check_command(command)
    except CommandError as exc:
        raise SpecError(file, "command", str(exc)) from None
    folder = Path(file).resolve().parent
    if uses_program(command):
        if not raw.get("program"):
            raise SpecError(file, "program", "the command runs ${program}, but none is given")
        program = folder / str(raw["program"])
        if not program.is_file():
            raise SpecError(file, "program", f"{raw['program']} not found (looked in {folder})")
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    return PlainSweep(config=raw, path=file, folder=str(folder), hash=digest)
