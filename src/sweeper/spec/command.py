"""A plain W&B sweep's `command`, expanded into the argv of one trial as `wandb agent` does.

`wandb agent` replaces an item that is exactly `${name}` by that macro's items (the args
macros render each parameter as Python's `str(value)` after `name=`), and `${envvar:NAME}`
anywhere in an item by the variable's value. Unlike it, an unknown macro or a missing
variable is an error here, not an item silently dropped or left as the variable's name.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
"""What W&B runs when a sweep config gives no `command`."""

ARGS_MACROS = (
    "args",
    "args_no_hyphens",
    "args_no_boolean_flags",
    "args_no_equals",
    "args_json",
    "args_append_hydra",
    "args_override_hydra",
)
MACROS = ("env", "interpreter", "program", "args_json_file", *ARGS_MACROS)

_MACRO = re.compile(r"\$\{([^}]*)\}")
_ENVVAR = re.compile(r"envvar:([A-Z0-9_]*)")


class CommandError(ValueError):
    """A command this sweep cannot run: an unknown macro, a missing variable."""


def command_of(config: Mapping[str, Any]) -> list[str]:
    """The sweep config's `command` as strings, else W&B's DEFAULT_COMMAND
    (https://docs.wandb.ai/guides/sweeps/sweep-config-keys/#command)."""
    return [str(item) for item in config.get("command") or DEFAULT_COMMAND]


def check_command(command: Sequence[str]) -> None:
    """Refuse, before anything runs, a macro `wandb agent` would not expand.

    Raises:
        CommandError: an unknown `${...}` macro, or a macro other than `${envvar:NAME}` that
            shares its command item with other text.
    """
    for item in command:
        for match in _MACRO.finditer(item):
            name = match.group(1)
            if _ENVVAR.fullmatch(name):
                continue
            if name not in MACROS:
                known = ", ".join(f"${{{m}}}" for m in (*MACROS, "envvar:NAME"))
                raise CommandError(f"unknown macro ${{{name}}} (known: {known})")
            if item != match.group(0):
                raise CommandError(f"{item!r}: ${{{name}}} must be a command item of its own")


def uses_program(command: Sequence[str]) -> bool:
    """Whether the command runs the sweep's `program` (a `${program}` item)."""
    return "${program}" in command


def args_items(args: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every args macro's items for the trial's parameters {name: value}."""
    out: dict[str, list[str]] = {name: [] for name in ARGS_MACROS}
    for name, value in args.items():
        pair = f"{name}={value}"
        out["args"].append(f"--{pair}")
        out["args_no_hyphens"].append(pair)
        out["args_no_equals"] += [f"--{name}", str(value)]
        out["args_append_hydra"].append(f"+{pair}")
        out["args_override_hydra"].append(f"++{pair}")
        if not isinstance(value, bool):
            out["args_no_boolean_flags"].append(f"--{pair}")
        elif value:
            out["args_no_boolean_flags"].append(f"--{name}")
    out["args_json"] = [json.dumps(dict(args))]
    return out


def expand(
    command: Sequence[str],
    args: Mapping[str, Any],
    *,
    program: str | None,
    args_json_file: Path,
    environ: Mapping[str, str] | None,
) -> list[str]:
    """The argv of one trial. `args_json_file` is written only when the command uses it.

    With `environ` None, `${envvar:NAME}` stays as written: the argv to record or show, which
    must not hold a secret the variable carries.

    Raises:
        CommandError: a macro `check_command` refuses, `${program}` with no `program`, or an
            `${envvar:NAME}` whose variable is not in `environ`.
    """
    check_command(command)
    items = args_items(args)
    items["env"] = ["/usr/bin/env"]
    items["interpreter"] = [sys.executable]  # the environment sweeper runs in, as `python`
    items["program"] = [program] if program is not None else []
    items["args_json_file"] = [str(args_json_file)]
    argv: list[str] = []
    for item in command:
        whole = _MACRO.fullmatch(item)
        if whole and whole.group(1) in items:
            argv += items[whole.group(1)]
        elif environ is None:
            argv.append(item)
        else:
            argv.append(_MACRO.sub(lambda m: _envvar(m, environ), item))
    if "${program}" in command and program is None:
        raise CommandError("the command uses ${program}, but the sweep gives no `program`")
    if "${args_json_file}" in command:
        args_json_file.parent.mkdir(parents=True, exist_ok=True)
        args_json_file.write_text(items["args_json"][0])
    return argv


def _envvar(match: re.Match[str], environ: Mapping[str, str]) -> str:
    name = match.group(1).removeprefix("envvar:")
    if name not in environ:
        raise CommandError(f"${{envvar:{name}}}: the environment variable {name} is not set")
    return environ[name]
