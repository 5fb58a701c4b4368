"""What every command shares: one-line parse errors, the console that prints every
string as it is, the refusal of bad input (one line, exit 2), and the options several
commands take.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer vendors click
from typer.core import TyperArgument, TyperCommand, TyperGroup

from sweeper.text import strip_controls

if TYPE_CHECKING:
    from sweeper.spec.load import LoadedSpec
    from sweeper.spec.plain import PlainSweep


def _usage_error(ctx: Any, exc: UsageError, args: list[str]) -> NoReturn:
    """What the parser refuses (a value not among the choices, an unknown option or command)
    is one line and exit 2, as every other refusal, not typer's usage block. A bad value is
    named by where it came from: the option given in `args`, else its environment variable."""
    message = exc.format_message()
    bad = re.match(
        r"Invalid value for '([^']+)'(?: \(env var: '(\w+)'\))?: (?:Value error, )?", message
    )
    if bad:
        option, variable = bad.groups()
        given = any(a == option or a.startswith(f"{option}=") for a in args)
        message = f"{option if given or not variable else variable}: {message[bad.end() :]}"
    choices = re.search(r"'([^']*)' is not one of (.+)\.$", message)
    if choices:  # typer: "'3' is not one of '1', '2'." -> "expected 1 or 2, got '3'"
        *most, last = re.findall(r"'([^']*)'", choices.group(2))
        wanted = f"{', '.join(most)} or {last}" if most else last
        message = f"{message[: choices.start()]}expected {wanted}, got {choices.group(1)!r}"
    command = " ".join(["sweeper", *ctx.command_path.split()[1:]])  # the root's name varies
    refuse(f"{message} (see `{command} --help`)")


class OneLineErrors:
    """Parse errors of a command or of the group are one line (see `_usage_error`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)  # click's parser consumes the list it is given
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _usage_error(ctx, exc, given)


class Command(OneLineErrors, TyperCommand):
    """A command whose usage line names its arguments as man pages do (`SPEC`, `[CONFIG]`;
    typer writes a required one `{SPEC}`) and whose parse errors are one line."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.display_name_raw + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(OneLineErrors, TyperGroup):
    """The `sweeper` group: an unknown command or option is one line too."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            _usage_error(ctx, exc, args)


class App(typer.Typer):
    """Every command made with `Command`."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


class Terminal(Console):
    """A console that prints every string as it is: never as rich markup (a sweep, stage or
    metric name, a value or a program's line may hold `[/bold]`), never highlighted (rich's
    highlighter is quadratic on long text), and without terminal control sequences (a value's
    `\\x1b[2J` must not clear the screen). Table cells and titles are strings too; styled
    words are Text built with `styled`."""

    def render_str(self, text: str, **options: Any) -> Text:
        options.update(markup=False, highlight=False)
        return super().render_str(strip_controls(text), **options)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line with styled words, (text, style) parts, each part literal and stripped of control
    sequences as `Terminal` does for every string."""
    return Text.assemble(
        *(strip_controls(p) if isinstance(p, str) else (strip_controls(p[0]), p[1]) for p in parts)
    )


console = Terminal()


errors = Terminal(stderr=True)


F = TypeVar("F", bound=Callable[..., Any])


Store = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="SWEEPER_STORE",
        help="The store: a SQLite file, or a PostgreSQL server as postgresql://USER@HOST:PORT/DB"
        " (password from PGPASSWORD or ~/.pgpass) [default: .sweeper/sweeper.db].",
    ),
]
"""A string, not a Path: a Path would fold a URL's `//`."""


Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a trainer config value: PATH=VALUE (repeatable) [default: none].",
    ),
]


Smoke = Annotated[bool, typer.Option("--smoke", help="Apply the spec's `smoke` section.")]


SpecArg = Annotated[
    Path, typer.Argument(metavar="SPEC", help="An experiment spec or a plain W&B sweep.yaml.")
]


TrainerArg = Annotated[
    str, typer.Argument(metavar="TRAINER", help="A registered trainer (`sweeper trainers`).")
]


ConfigArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="CONFIG",
        help="A spec (its base is used) or a config YAML [default: the trainer's defaults].",
    ),
]


Target = Annotated[
    str,
    typer.Argument(
        metavar="SWEEP",
        help="A sweep id, a study id (all its stages), a spec path (its latest study), a "
        "sweep or spec name, or entity/project/sweep_id on W&B.",
    ),
]


EstimateOpt = Annotated[
    bool,
    typer.Option(
        "--estimate",
        help="Print the trials per stage and their time on this machine, from a short probe "
        "of one trial; runs no sweep.",
    ),
]


WandbMode = Literal["offline", "online", "disabled"]


Wandb = Annotated[
    WandbMode | None,
    typer.Option(
        "--wandb",
        help="Mirror runs to wandb [default: offline; online with --backend wandb].",
    ),
]


BackendKind = Literal["local", "wandb"]


BackendOpt = Annotated[
    BackendKind | None,
    typer.Option(
        "--backend",
        envvar="SWEEPER_BACKEND",
        help="Where the sweep lives: local (SQLite store) or wandb (a W&B server) "
        "[default: wandb for an entity/project/sweep_id path, else local].",
    ),
]


Entity = Annotated[
    str | None, typer.Option(help="W&B entity [default: the spec's, else your default].")
]


Project = Annotated[str | None, typer.Option(help="W&B project [default: the spec's].")]


ReadEntity = Annotated[
    str | None,
    typer.Option(
        "--entity", help="W&B entity of a sweep not given as a path [default: your default]."
    ),
]


ReadProject = Annotated[
    str | None,
    typer.Option(
        "--project", help="W&B project of a sweep not given as a path [default: sweeper]."
    ),
]


TrialTimeout = Annotated[
    float | None,
    typer.Option(
        "--trial-timeout",
        help="Kill and fail a trial running longer than this (s) [default: agents.trial_timeout].",
    ),
]


HeartbeatTimeout = Annotated[
    float,
    typer.Option(
        "--heartbeat-timeout", help="Requeue a trial whose agent is silent this long (s)."
    ),
]


OutageLimit = Annotated[
    float,
    typer.Option(
        "--outage-limit",
        help="Seconds to wait out a server that does not answer (trials keep running); "
        "past it, running trials are preempted and the command exits 2.",
    ),
]


def say(line: str) -> None:
    """A line from the library, printed as it is (see `Terminal`)."""
    console.print(line)


MAX_ERROR = 400
"""Characters of an error line shown; the rest is said to exist, not printed."""


def refuse(message: str) -> NoReturn:
    """Say `message` as one `error:` line on stderr (its first line, at most MAX_ERROR
    characters) and exit.

    Raises:
        typer.Exit: always, with code 2.
    """
    line = " ".join(message.split("\n", 1)[0].split())
    if len(line) > MAX_ERROR:
        line = f"{line[:MAX_ERROR]}… ({len(line) - MAX_ERROR:,} more characters)"
    errors.print(styled(("error:", "red"), f" {line}"), soft_wrap=True)
    if "wandb" in sys.modules:
        from sweeper.backends.wandb import release_service

        if not release_service(2):  # wandb's service is stuck on a request that failed us
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
    raise typer.Exit(2)


def user_errors(command: F) -> F:
    """Bad input becomes one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sweeper.errors import SweeperError

        try:
            return command(*args, **kwargs)
        except SweeperError as exc:
            refuse(str(exc))
        except sqlite3.DatabaseError as exc:  # a store damaged past what opening it showed
            refuse(f"the sweeper store is damaged: {exc}")
        except OSError as exc:  # a path given, or one under it: not a folder, no permission
            refuse(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))

    return wrapper  # type: ignore[return-value]


def choose_wandb_mode(value: WandbMode | None, backend: BackendKind = "local") -> WandbMode:
    """offline by default; with the W&B backend, trials log online: the run is the record."""
    from sweeper.errors import SweeperError

    if backend == "wandb":
        if value not in (None, "online"):
            raise SweeperError(f"--wandb {value}: with --backend wandb, trials log online")
        return "online"
    return value or "offline"


def choose_backend_kind(kind: BackendKind | None, sweep: str = "") -> BackendKind:
    """The parser checked a given kind; none given: W&B for an entity/project/sweep_id path
    (not a spec file two folders deep)."""
    if kind is None:
        from sweeper.backends.targets import is_wandb_target

        return "wandb" if sweep and is_wandb_target(sweep) else "local"
    return kind


def at_least(option: str, value: float | None, minimum: float, strict: bool = False) -> None:
    """Options a bad value would turn into a livelock or a crash loop, refused up front."""
    from sweeper.errors import SweeperError

    if value is not None and (value <= minimum if strict else value < minimum):
        bound = f"above {minimum:g}" if strict else f"at least {minimum:g}"
        raise SweeperError(f"{option}: must be {bound}, got {value:g}")


def check_seed(seed: int | None) -> None:
    """`--seed`, refused up front unless the spec's `seed` could hold it (0 .. SEED_MAX: the
    stores keep it as a signed 64-bit integer)."""
    from sweeper.errors import SweeperError
    from sweeper.spec.models import SEED_MAX

    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise SweeperError(f"--seed: must be from 0 to {SEED_MAX}, got {seed}")


def config_overrides(sets: list[str] | None, device: str | None) -> dict[str, Any]:
    """Trainer config overrides from --set PATH=VALUE and --device."""
    from sweeper.spec.load import parse_overrides

    overrides = parse_overrides(sets or [])
    if device:
        overrides["device"] = device
    return overrides


def load_spec(
    spec: Path, sets: list[str] | None, smoke: bool, device: str | None = None
) -> LoadedSpec | PlainSweep:
    """An experiment spec or a plain W&B sweep.yaml, with `--set`/`--device` overrides (and its
    `smoke` section), each of W&B's warnings about it printed as a `warning:` line.

    Raises:
        SweeperError: the file is not a valid spec or sweep (one line: where, and why).
    """
    from sweeper.spec.load import load_sweep_file

    loaded = load_sweep_file(spec, config_overrides(sets, device), smoke=smoke)
    for warning in loaded.warnings:  # what W&B only warns about; the sweep runs as W&B runs it
        errors.print(styled(("warning:", "yellow"), f" {warning}"), soft_wrap=True)
    return loaded


def print_estimate(loaded: LoadedSpec | PlainSweep, agents: int | None, gpus: str | None) -> None:
    """`--estimate`: trials per stage and their time here, from a probe of one trial, with the
    agents `launch` would run (agents.cpus_per_trial or the cores shared, first GPU slot)."""
    from sweeper.agent.slots import chosen_gpus
    from sweeper.spec.plain import PlainSweep

    if isinstance(loaded, PlainSweep):
        errors.print("estimate: not probed: a plain W&B sweep runs your program, not a trainer")
        return
    from sweeper.analysis.estimate import estimate_launch

    for line in estimate_launch(loaded, agents, chosen_gpus(gpus)).lines():
        console.print(line, soft_wrap=True)
