"""The `sweeper` command. Thin: parse, call the library, print.

Heavy imports (torch, wandb, pandas) stay inside commands: `--help` and `validate` stay fast.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer vendors click
from typer.core import TyperArgument, TyperCommand, TyperGroup

from sweeper.text import strip_controls


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
    _refuse(f"{message} (see `{command} --help`)")


class _OneLineErrors:
    """Parse errors of a command or of the group are one line (see `_usage_error`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)  # click's parser consumes the list it is given
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _usage_error(ctx, exc, given)


class _Command(_OneLineErrors, TyperCommand):
    """A command whose usage line names its arguments as man pages do (`SPEC`, `[CONFIG]`;
    typer writes a required one `{SPEC}`) and whose parse errors are one line."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.display_name_raw + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class _Group(_OneLineErrors, TyperGroup):
    """The `sweeper` group: an unknown command or option is one line too."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            _usage_error(ctx, exc, args)


class _App(typer.Typer):
    """Every command made with `_Command`."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _App(
    help="Experiment specs -> W&B sweeps, run by local agents, with or without a W&B server.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is literal: rich markup would eat every "[default: …]"
)


class _Terminal(Console):
    """A console that prints every string as it is: never as rich markup (a sweep, stage or
    metric name, a value or a program's line may hold `[/bold]`), never highlighted (rich's
    highlighter is quadratic on long text), and without terminal control sequences (a value's
    `\\x1b[2J` must not clear the screen). Table cells and titles are strings too; styled
    words are Text built with `_styled`."""

    def render_str(self, text: str, **options: Any) -> Text:
        options.update(markup=False, highlight=False)
        return super().render_str(strip_controls(text), **options)


def _styled(*parts: str | tuple[str, str]) -> Text:
    """A line with styled words, (text, style) parts, each part literal and stripped of control
    sequences as `_Terminal` does for every string."""
    return Text.assemble(
        *(strip_controls(p) if isinstance(p, str) else (strip_controls(p[0]), p[1]) for p in parts)
    )


console = _Terminal()
errors = _Terminal(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

Store = Annotated[
    Path | None,
    typer.Option(
        "--store", envvar="SWEEPER_STORE", help="SQLite store [default: .sweeper/sweeper.db]"
    ),
]
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
        help="A sweep id, a study id (all its stages), a spec path (its latest study) or a "
        "sweep or spec name.",
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


def _say(line: str) -> None:
    """A line from the library, printed as it is (see `_Terminal`)."""
    console.print(line)


MAX_ERROR = 400
"""Characters of an error line shown; the rest is said to exist, not printed."""


def _refuse(message: str) -> NoReturn:
    line = " ".join(message.split("\n", 1)[0].split())
    if len(line) > MAX_ERROR:
        line = f"{line[:MAX_ERROR]}… ({len(line) - MAX_ERROR:,} more characters)"
    errors.print(_styled(("error:", "red"), f" {line}"), soft_wrap=True)
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
            _refuse(str(exc))
        except sqlite3.DatabaseError as exc:  # a store damaged past what opening it showed
            _refuse(f"the sweeper store is damaged: {exc}")
        except OSError as exc:  # a path given, or one under it: not a folder, no permission
            _refuse(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))

    return wrapper  # type: ignore[return-value]


def _wandb_mode(value: WandbMode | None, backend: BackendKind = "local") -> WandbMode:
    """offline by default; with the W&B backend, trials log online: the run is the record."""
    from sweeper.errors import SweeperError

    if backend == "wandb":
        if value not in (None, "online"):
            raise SweeperError(f"--wandb {value}: with --backend wandb, trials log online")
        return "online"
    return value or "offline"


def _backend_kind(kind: BackendKind | None, sweep: str = "") -> BackendKind:
    """The parser checked a given kind; none given: W&B for an entity/project/sweep_id path
    (not a spec file two folders deep)."""
    if kind is None:
        from sweeper.backends.targets import is_wandb_target

        return "wandb" if sweep and is_wandb_target(sweep) else "local"
    return kind


def _backend(kind: str, store: Path | None, **options: Any) -> Any:
    from sweeper.backends import open_backend

    return open_backend(kind, store, **options)  # type: ignore[arg-type]


def _at_least(option: str, value: float | None, minimum: float, strict: bool = False) -> None:
    """Options a bad value would turn into a livelock or a crash loop, refused up front."""
    from sweeper.errors import SweeperError

    if value is not None and (value <= minimum if strict else value < minimum):
        bound = f"above {minimum:g}" if strict else f"at least {minimum:g}"
        raise SweeperError(f"{option}: must be {bound}, got {value:g}")


def _overrides(sets: list[str] | None, device: str | None) -> dict[str, Any]:
    """Trainer config overrides from --set PATH=VALUE and --device."""
    from sweeper.spec.load import parse_overrides

    overrides = parse_overrides(sets or [])
    if device:
        overrides["device"] = device
    return overrides


def _load(spec: Path, sets: list[str] | None, smoke: bool, device: str | None = None) -> Any:
    from sweeper.spec.load import load_sweep_file

    loaded = load_sweep_file(spec, _overrides(sets, device), smoke=smoke)
    for warning in loaded.warnings:  # what W&B only warns about; the sweep runs as W&B runs it
        errors.print(_styled(("warning:", "yellow"), f" {warning}"), soft_wrap=True)
    return loaded


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        console.print(f"sweeper {version('sweeper')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print sweeper's version and exit.",
        ),
    ] = False,
) -> None:
    pass


@app.command()
@user_errors
def validate(
    spec: SpecArg, sets: Sets = None, smoke: Smoke = False, estimate: EstimateOpt = False
) -> None:
    """Check a spec against its trainer's config and the W&B schema, and that the data and
    weights files its trials need are there; writes nothing."""
    from sweeper.agent.launch import planned_trials
    from sweeper.spec.compile import compile_spec
    from sweeper.spec.load import grid_size
    from sweeper.spec.plain import PlainSweep
    from sweeper.spec.preflight import preflight

    loaded = _load(spec, sets, smoke)
    if isinstance(loaded, PlainSweep):
        method, total = loaded.config["method"], planned_trials(loaded.config)
        size = f"{method}, up to {total} trials" if total else f"{method}, runs until stopped"
        console.print(_styled(("ok", "green"), f" {loaded.name}: {size} (a plain W&B sweep)"))
        if estimate:
            _print_estimate(loaded, None, None)
        return
    preflight(loaded)
    configs = compile_spec(loaded.spec, loaded.path)
    for stage, config in zip(loaded.spec.stage_list(), configs, strict=True):
        cap, method = config.get("run_cap"), config["method"]
        if method == "grid":
            points = grid_size(stage.search) * loaded.spec.repeats
            size = f"{min(points, cap) if cap else points} trials"
        else:
            size = f"{method}, up to {cap} trials" if cap else f"{method}, runs until stopped"
        console.print(_styled(("ok", "green"), f" {config['name']}: {size}"))
    if estimate:
        _print_estimate(loaded, None, None)


def _print_estimate(loaded: Any, agents: int | None, gpus: str | None) -> None:
    """`--estimate`: trials per stage and their time here, from a probe of one trial, with the
    agents `launch` would run (agents.cpus_per_trial or the cores shared, first GPU slot)."""
    from sweeper.agent.launch import agent_count
    from sweeper.agent.slots import make_slots, parse_gpus, threads_per_trial, visible_gpus
    from sweeper.spec.plain import PlainSweep

    if isinstance(loaded, PlainSweep):
        errors.print("estimate: not probed: a plain W&B sweep runs your program, not a trainer")
        return
    from sweeper.analysis.estimate import estimate

    slots = make_slots(
        parse_gpus(gpus) if gpus is not None else visible_gpus(), loaded.agents.gpus_per_trial
    )
    n_agents = agent_count(loaded, agents, slots)
    threads = threads_per_trial(loaded.agents.cpus_per_trial, n_agents)
    for line in estimate(loaded, n_agents, threads, slots[0]).lines():
        console.print(line, soft_wrap=True)


@app.command("compile")
@user_errors
def compile_(
    spec: SpecArg,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here [default: stdout].")
    ] = None,
    stage: Annotated[
        str | None, typer.Option(help="A study's stage, by name or number [default: the first].")
    ] = None,
    carry: Annotated[
        list[str] | None,
        typer.Option(help="The previous stages' best, PATH=VALUE [default: read from the store]."),
    ] = None,
    sets: Sets = None,
    smoke: Smoke = False,
    store: Store = None,
) -> None:
    """Print one W&B sweep config (a study: one stage, carrying the best of the ones before).

    `wandb sweep` takes the output as it is.
    """
    import yaml

    from sweeper.agent.launch import compile_for_stage
    from sweeper.spec.load import parse_overrides

    loaded = _load(spec, sets, smoke)
    config, note = compile_for_stage(
        loaded, stage, parse_overrides(carry, "--carry") if carry else None, store
    )
    text = yaml.safe_dump(config, sort_keys=False)
    if output:
        output.write_text(text)
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text)
    if note:
        errors.print(note)


@app.command()
@user_errors
def schema(trainer: TrainerArg) -> None:
    """Print the JSON Schema of a trainer's config (for editors)."""
    import json

    from sweeper.trainers.registry import get_trainer

    sys.stdout.write(
        json.dumps(get_trainer(trainer).config_model().model_json_schema(), indent=2) + "\n"
    )


@app.command()
def trainers() -> None:
    """List the registered trainers."""
    from sweeper.trainers.registry import TRAINERS

    for info in TRAINERS.values():
        console.print(
            _styled((f"{info.name:10}", "bold"), f" {info.summary}  (metric: {info.metric})")
        )


@app.command()
@user_errors
def generate(
    name: Annotated[str, typer.Argument(metavar="DATASET", help="shapes, veri or xray.")],
    out: Annotated[Path, typer.Argument(metavar="FOLDER", help="A new or empty folder.")],
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Write a small data set in a real on-disk layout (shapes, veri, xray) into a new or
    empty folder (or one it wrote before: only its own files are replaced)."""
    from sweeper.output import OutputFolder
    from sweeper.trainers.registry import generator

    _at_least("--seed", seed, 0)
    write = generator(name)
    with OutputFolder(out, f"sweeper generate {name}") as staging:
        write(staging, seed=seed)
    folders = _file_counts(out)
    total = sum(folders.values())
    _say(f"wrote {total} files into {out}:")
    for folder, count in folders.items():
        _say(f"  {folder}/  {count} files")
    where = shlex.quote(str(out))
    # one line whatever the terminal's width, so that it can be copied as it is
    console.print(f"next: {_GENERATED_NEXT[name].format(root=where)}", soft_wrap=True)


_GENERATED_NEXT = {
    "shapes": "sweeper augment classify --set data.name=folder --set data.root={root}",
    "veri": "sweeper augment reid --set data.root={root} --set 'data.image_size=[64,64]'",
    "xray": "sweeper augment segment --set data.root={root} --set data.image_size=64",
}
"""The command that looks at a generated set through its trainer (the augmentation grid):
the set's layout, read as a trial would read it, in seconds."""


def _file_counts(root: Path) -> dict[str, int]:
    """Files per folder under `root` (its own marker and other dot files left out)."""
    counts: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            folder = path.parent.relative_to(root).as_posix()
            counts[folder] = counts.get(folder, 0) + 1
    return counts


@app.command()
@user_errors
def launch(
    spec: SpecArg,
    agents: Annotated[
        int | None, typer.Option(help="Agent processes [default: one per GPU, else 1].")
    ] = None,
    gpus: Annotated[
        str | None, typer.Option(help="GPU ids to use, e.g. 0,1 [default: all visible].")
    ] = None,
    store: Store = None,
    wandb: Wandb = None,
    sets: Sets = None,
    smoke: Smoke = False,
    device: Annotated[
        str | None,
        typer.Option(help="Trainer device: auto, cpu, cuda, cuda:N [default: the spec's]."),
    ] = None,
    heartbeat_timeout: HeartbeatTimeout = 60.0,
    backend_kind: BackendOpt = None,
    entity: Entity = None,
    project: Project = None,
    trial_timeout: TrialTimeout = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new study, even if this spec has one.")
    ] = False,
    estimate: EstimateOpt = False,
) -> None:
    """Create the sweep, run it to completion with local agents, print the best and a summary.

    With --backend wandb the sweep (one per stage) is created on the W&B server; the agents
    started here, and any `sweeper agent` elsewhere, pull trials from it. Running the same
    launch again resumes the latest study made from this exact spec (--fresh: a new one).
    """
    from sweeper.agent import prestart

    if not estimate:  # the estimate's probe would share the CPU with its imports
        prestart.start()  # the first agent imports while this validates and makes the sweep
    from sweeper.agent.launch import AgentSettings, Interrupted, check_backend
    from sweeper.agent.launch import launch as run_launch
    from sweeper.agent.progress import LaunchBar
    from sweeper.agent.slots import make_slots, parse_gpus, visible_gpus
    from sweeper.spec.plain import PlainSweep
    from sweeper.spec.preflight import preflight

    loaded = _load(spec, sets, smoke, device)
    _at_least("--agents", agents, 1)
    _at_least("--heartbeat-timeout", heartbeat_timeout, 0, strict=True)
    _at_least("--trial-timeout", trial_timeout, 0, strict=True)
    gpu_list = parse_gpus(gpus) if gpus is not None else visible_gpus()
    make_slots(gpu_list, loaded.agents.gpus_per_trial)  # refused before the store is made
    if not isinstance(loaded, PlainSweep):  # a missing data set: refused before any trial
        preflight(loaded)
    if estimate:
        _print_estimate(loaded, agents, gpus)
        return
    kind = _backend_kind(backend_kind)
    mode = _wandb_mode(wandb, kind)
    check_backend(loaded, kind)
    backend = _backend(
        kind,
        store,
        entity=entity or loaded.entity,
        project=project or loaded.project,
    )
    where = backend.where  # W&B connects here: a bad key or server fails before the bar draws
    bar = LaunchBar(console)

    def on_stage(sweep: Any, resumed: bool) -> None:
        what = "resumed" if resumed else "created"
        console.print(_styled("sweep ", (sweep.title, "bold"), f" ({what}, {where})"))
        if backend.kind == "wandb":
            console.print(f"  {backend.url(sweep.id)}")
            console.print(f"  more agents: sweeper agent {sweep.id} --backend wandb")
            console.print(f"  in Docker:   {backend.docker_line(sweep.id)}")
        if sweep.config["method"] != "grid" and not sweep.config.get("run_cap"):
            console.print(f"  {sweep.config['method']} search with no run_cap: runs until stopped")
        bar.add_sweep(sweep)

    try:
        with bar:
            results = run_launch(
                loaded,
                backend,
                agents=agents,
                gpus=gpu_list,
                settings=AgentSettings(mode, heartbeat_timeout, trial_timeout),
                fresh=fresh,
                on_stage=on_stage,
                on_progress=bar.update,
                on_note=_say,
            )
    except Interrupted as stopped:
        errors.print(f"{stopped}: running trials were requeued; the same launch resumes")
        raise typer.Exit(128 + stopped.signum) from None
    finished = [_print_summary(backend, result.sweep.id) for result in results]
    if len(results) > 1:
        _print_stages(results)
    if not all(finished):  # the failures and the first reason are printed above
        raise typer.Exit(1)


def _print_summary(backend: Any, sweep_id: str) -> bool:
    """Print the sweep's table, best run and failures; False when no run finished."""
    from sweeper.report.tables import config_cells, has_repeats, summary_title
    from sweeper.report.values import label, metric_label
    from sweeper.sweep import DONE, best_configuration, config_table, swept_params

    sweep = backend.sweep(sweep_id)
    metric, goal = sweep.metric
    params = swept_params(sweep.config)
    runs = backend.runs(sweep.id)
    table = config_table(runs, params, metric, goal)
    # One line above the table: rich wraps a Table's own title to the table's width.
    console.print(summary_title(sweep.name, metric_label(metric), goal, has_repeats(table)))
    cells = config_cells(table, params, metric_label(metric))
    out = Table()
    for column in cells.columns:
        out.add_column(str(column), justify="right")
    for row in cells.itertuples(index=False):
        out.add_row(*row)
    console.print(out)
    best = best_configuration(runs, params, metric, goal)
    if best:
        console.print(best.describe(metric_label(metric), label))
    failed = runs[runs["state"].isin(["failed", "crashed"])] if len(runs) else runs
    if len(failed):
        first = failed.iloc[0]
        reason = (first["error"] or "no reason recorded").splitlines()[0]
        errors.print(
            f"{len(failed)} of {len(runs)} runs failed; run {first['run_id']}: {reason} "
            f"(`sweeper status {sweep.id}` lists them)",
            soft_wrap=True,
        )
    if len(runs) and runs["state"].isin(DONE).any():
        return True
    if not len(failed):
        errors.print(f"sweep {sweep.id} ended with no finished run", soft_wrap=True)
    return False


def _print_stages(results: list[Any]) -> None:
    from sweeper.report.values import label
    from sweeper.sweep import swept_params

    out = Table(title="staged study: best configuration carried from each stage")
    for column in ("stage", "searched", "best"):
        out.add_column(column)
    for result in results:
        searched = ", ".join(swept_params(result.sweep.config))
        best = ", ".join(f"{k}={label(v)}" for k, v in (result.best_config or {}).items())
        out.add_row(result.sweep.stage_name or result.sweep.name, searched, best)
    console.print(out)


@app.command()
@user_errors
def agent(
    sweep_id: Annotated[
        str,
        typer.Argument(
            metavar="SWEEP",
            help="A local sweep or study id, or entity/project/sweep_id on W&B.",
        ),
    ],
    count: Annotated[
        int | None, typer.Option(help="Run at most this many trials [default: no limit].")
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPU ids, one trial per slot; '' for CPU [default: all visible]."),
    ] = None,
    store: Store = None,
    wandb: Wandb = None,
    heartbeat_timeout: HeartbeatTimeout = 60.0,
    grace: Annotated[
        float, typer.Option(help="Seconds a stopped trial gets before it is killed.")
    ] = 10.0,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads per trial [default: agents.cpus_per_trial, else cores/slots]."
        ),
    ] = None,
    backend_kind: BackendOpt = None,
    trial_timeout: TrialTimeout = None,
) -> None:
    """Pull trials of a sweep and run each in its own child process until the sweep is done.

    SWEEP is a local sweep or study id, or entity/project/sweep_id with --backend wandb.
    """
    from sweeper.agent.loop import Agent, AgentOptions
    from sweeper.agent.slots import parse_gpus, visible_gpus

    _at_least("--count", count, 1)
    _at_least("--threads", threads, 1)
    _at_least("--grace", grace, 0)
    _at_least("--heartbeat-timeout", heartbeat_timeout, 0, strict=True)
    _at_least("--trial-timeout", trial_timeout, 0, strict=True)
    kind = _backend_kind(backend_kind, sweep_id)
    options = AgentOptions(
        sweep_id=sweep_id,
        store=store,
        backend=kind,
        gpus=parse_gpus(gpus) if gpus is not None else visible_gpus(),
        count=count,
        wandb_mode=_wandb_mode(wandb, kind),
        heartbeat_timeout=heartbeat_timeout,
        heartbeat_interval=max(0.2, heartbeat_timeout / 6),
        grace=grace,
        threads=threads,
        trial_timeout=trial_timeout,
    )
    runner = Agent(options, say=_say)
    raise typer.Exit(runner.run())


@app.command()
@user_errors
def status(
    target: Annotated[
        str,
        typer.Argument(
            metavar="SWEEP",
            help="A sweep id, a study id (all its stages), a spec path (its latest study), a "
            "sweep or spec name, or entity/project/sweep_id on W&B.",
        ),
    ],
    store: Store = None,
    backend_kind: BackendOpt = None,
) -> None:
    """States, progress and best configuration so far of a sweep, or of each stage of a study."""
    from sweeper.agent.launch import planned_trials
    from sweeper.report.values import label
    from sweeper.sweep import ACTIVE, best_configuration, swept_params

    kind = _backend_kind(backend_kind, target)
    backend = _backend(kind, store, create=False, readonly=True)
    for sweep in _resolve(backend, target):
        counts = backend.counts(sweep.id)
        metric, goal = sweep.metric
        total = planned_trials(sweep.config)
        done = sum(n for s, n in counts.items() if s not in ACTIVE)
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs yet"
        console.print(_styled("sweep ", (sweep.title, "bold"), f" [{sweep.state}]"))
        console.print(f"progress: {done}/{total if total is not None else '?'} done ({states})")
        runs = backend.runs(sweep.id)
        best = best_configuration(runs, swept_params(sweep.config), metric, goal)
        if best:
            console.print(f"so far, {best.describe(metric, label)}")


def _resolve(backend: Any, target: str) -> list[Any]:
    """The sweeps a command's SWEEP names (`sweeper.backends.targets`); on W&B, its path."""
    from sweeper.backends.targets import resolve_target

    return [backend.sweep(target)] if backend.kind == "wandb" else resolve_target(backend, target)


@app.command("sweeps")
@user_errors
def sweeps_(store: Store = None) -> None:
    """List the store's sweeps, newest first, a study's stages together: id, name, spec, stage,
    state, runs done of planned, and the best configuration's mean metric."""
    from sweeper.agent.launch import planned_trials
    from sweeper.backends.local import LocalBackend
    from sweeper.sweep import ACTIVE, best_configuration, swept_params

    backend = LocalBackend(store, create=False, readonly=True)
    launches: dict[str, list[Any]] = {}
    for sweep in backend.sweeps():  # in creation order; a study's stages under its id
        launches.setdefault(sweep.study or sweep.id, []).append(sweep)
    out = Table(title=f"sweeps in {backend.path}, newest first", title_justify="left")
    for column in ("id", "name", "spec", "stage", "state", "done", "best"):
        out.add_column(column, justify="right" if column == "done" else "left")
    for launch in reversed(launches.values()):
        for sweep in sorted(launch, key=lambda s: s.stage):
            counts = backend.counts(sweep.id)
            total = planned_trials(sweep.config)
            done = sum(n for state, n in counts.items() if state not in ACTIVE)
            metric, goal = sweep.metric
            best = best_configuration(
                backend.runs(sweep.id), swept_params(sweep.config), metric, goal
            )
            out.add_row(
                sweep.id,
                sweep.name,
                _shown_path(sweep.spec_path),
                f"{sweep.stage + 1} {sweep.stage_name}" if sweep.study else "-",
                sweep.state,
                f"{done}/{total if total is not None else '?'}",
                f"{metric} {best.mean:.4g}" if best else "-",
            )
    if not launches:
        console.print(f"no sweeps in {backend.path} yet (`sweeper launch SPEC` makes one)")
        return
    console.print(out)


app.command("ls", help="Same as `sweeper sweeps`.")(sweeps_)


def _shown_path(path: str | None) -> str:
    """A spec path as the user would type it here: relative when under this folder."""
    if not path:
        return "-"
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(Path.cwd()))
    return path


@app.command()
@user_errors
def sync(
    sweep_id: Annotated[str, typer.Argument(metavar="SWEEP", help="A local sweep or study id.")],
    entity: Entity = None,
    project: Project = None,
    store: Store = None,
) -> None:
    """Publish a local sweep (every stage of a study) to W&B: its runs under their own ids,
    then a W&B sweep over them. Runs already there are skipped."""
    from sweeper.backends.local import LocalBackend
    from sweeper.backends.sync import sync as publish
    from sweeper.backends.wandb import WandbBackend

    local = LocalBackend(store, create=False, readonly=True)
    target = WandbBackend(local.path, entity=entity, project=project)
    for result in publish(local, target, sweep_id, _say):
        waiting = f", {len(result.skipped)} not over yet" if result.skipped else ""
        console.print(
            f"sweep {result.local} -> {result.sweep}: {len(result.uploaded)} uploaded, "
            f"{len(result.already)} already there{waiting}"
        )
        console.print(f"  {target.url(result.sweep)}")


@app.command()
@user_errors
def runs(
    target: Target,
    store: Store = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            help="Write the complete run table (every column) to this CSV file "
            "[default: none: print the table].",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the complete run table as JSON records for scripts: times in ISO "
            "8601 (UTC), NaN and missing values null, infinities the strings inf and -inf.",
        ),
    ] = False,
) -> None:
    """The runs of a sweep or study: id, state, swept values, seed, metric and runtime."""
    from sweeper.backends.local import LocalBackend
    from sweeper.backends.targets import resolve_target
    from sweeper.errors import SweeperError
    from sweeper.report.runlist import readable_runs, runs_json

    backend = LocalBackend(store, create=False, readonly=True)
    sweeps = resolve_target(backend, target)
    table = backend.runs([s.id for s in sweeps])
    if csv:
        from sweeper.output import write_csv

        try:
            write_csv(table, csv)
        except OSError as exc:
            raise SweeperError(f"--csv {csv}: cannot write: {exc.strerror or exc}") from None
        (errors if as_json else console).print(f"wrote {csv} ({len(table)} runs)")
    if as_json:
        sys.stdout.write(runs_json(table) + "\n")
    elif not csv:
        shown, numeric = readable_runs(table, sweeps)
        out = Table(title=", ".join(s.title for s in sweeps), title_justify="left")
        for column in shown.columns:
            out.add_column(column, justify="right" if column in numeric else "left")
        for row in shown.itertuples(index=False):
            out.add_row(*row)
        console.print(out)


def _cpus_per_trial(source: Path | None) -> int | None:
    """A spec's agents.cpus_per_trial (`train` runs its trial with as many torch threads as an
    agent would); None for a plain config file or no file."""
    from pydantic import ValidationError

    from sweeper.errors import SpecError
    from sweeper.spec.load import read_yaml
    from sweeper.spec.models import Agents

    raw = read_yaml(source) if source else {}
    if "trainer" not in raw:
        return None
    try:
        return Agents.model_validate(raw.get("agents") or {}).cpus_per_trial
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(["agents", *map(str, error["loc"])])
        raise SpecError(str(source), where, error["msg"]) from None


@app.command()
@user_errors
def train(
    trainer: TrainerArg,
    config: ConfigArg = None,
    sets: Sets = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda, cuda:N [default: the config's, else auto].")
    ] = None,
    store: Store = None,
    wandb: Wandb = None,
) -> None:
    """Run one trial outside any sweep, with the same logging, to debug a config."""
    from sweeper.agent.progress import EpochLine
    from sweeper.agent.slots import threads_per_trial
    from sweeper.agent.trial import execute
    from sweeper.backends.local import LocalBackend
    from sweeper.spec.load import base_config, validate_config
    from sweeper.spec.paths import flatten
    from sweeper.trainers.registry import get_trainer

    info = get_trainer(trainer)
    base, file = base_config(trainer, config, _overrides(sets, device))
    resolved = validate_config(info.config_model(), base, file, "config")
    threads = threads_per_trial(_cpus_per_trial(config), 1)  # as an agent with one slot
    backend = LocalBackend(store)
    claim = backend.create_run(flatten(resolved.model_dump(mode="json")), agent="train")
    console.print(_styled("run ", (claim.run_id, "bold"), f" ({trainer}) in {backend.path}"))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if info.torch:
        import torch

        torch.set_num_threads(threads)
    epochs = getattr(resolved, "epochs", None)
    with EpochLine(console, epochs if isinstance(epochs, int) else None, info.metric) as echo:
        state = execute(backend, claim, trainer, wandb_mode=_wandb_mode(wandb), echo=echo)
    run = backend.run(claim.run_id)
    console.print(
        f"{state}: "
        + ", ".join(f"{k}={v:.4g}" for k, v in run["summary"].items() if isinstance(v, float))
    )
    if state not in ("finished", "stopped"):
        errors.print(run["error"] or "")
        raise typer.Exit(1)


@app.command()
@user_errors
def landscape(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN", help="A run of the store with a checkpoint.")
    ],
    store: Store = None,
    steps: Annotated[int, typer.Option(help="Grid points per axis.")] = 25,
    span: Annotated[
        tuple[float, float], typer.Option("--range", help="Min and max of alpha (and beta).")
    ] = (-1.0, 1.0),
    dims: Annotated[
        Literal[1, 2] | None,
        typer.Option(help="1: a curve; 2: a surface and its curve [default: 2; 1 with --between]."),
    ] = None,
    split: Annotated[
        Literal["train", "val"], typer.Option(help="The split the loss is scored on.")
    ] = "train",
    seed: Annotated[int, typer.Option(help="Seed of the random directions.")] = 0,
    ignore: Annotated[
        Literal["biasbn", "none"],
        typer.Option(help="biasbn: 1-D tensors (biases, batch norm) stay; none: moved too."),
    ] = "biasbn",
    between: Annotated[
        str | None,
        typer.Option(
            help="A checkpoint file or run id: the line from this run's weights to it "
            "[default: none: random directions].",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Folder [default: the run's landscape/].")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Score the first N items of the split [default: all].")
    ] = None,
) -> None:
    """The loss surface around a run's trained weights (filter-normalised directions, Li et al.
    2018): contour, 3-D surface, 1-D curve, CSV and NPZ, kept with the run."""
    from rich.progress import Progress

    from sweeper.analysis.landscape import Options, landscape
    from sweeper.backends.local import LocalBackend

    if dims is None:
        dims = 1 if between else 2
    options = Options(steps, span[0], span[1], dims, split, seed, ignore, between, limit)
    options.check()  # before the store is opened or torch imported
    backend = LocalBackend(store, create=False)
    progress = Progress(console=console, transient=True)
    task = progress.add_task("loss at grid points", total=None)

    def start(total: int) -> None:  # shown once the run, data and weights are loaded
        progress.update(task, total=total)
        progress.start()

    try:
        result = landscape(
            backend, run_id, options, out, on_total=start, tick=lambda: progress.advance(task)
        )
    finally:
        if progress.live.is_started:
            progress.stop()
    _say(f"scored {result.scored} at {result.checkpoint}")
    _say(f"loss at the trained weights {result.origin_loss:.6g}; {result.seconds:.1f} s")
    _say(f"wrote {result.folder}: " + ", ".join(p.name for p in result.files))
    if result.kept.resolve() != result.folder.resolve():
        _say(f"kept with the run in {result.kept}")
    if result.mirror is not None:
        _say(f"logged the images to the offline wandb run {result.mirror}")


@app.command()
@user_errors
def augment(
    trainer: TrainerArg,
    config: ConfigArg = None,
    names: Annotated[
        str | None,
        typer.Option(
            help="Augmentations to show, comma-separated (the trainer's names, or one "
            "classify preset such as rotate_upto90) [default: the config's]."
        ),
    ] = None,
    n: Annotated[int, typer.Option("-n", help="Training images shown (1-64).")] = 9,
    output: Annotated[Path, typer.Option("-o", "--output", help="The PNG written.")] = Path(
        "augment.png"
    ),
    seed: Annotated[int, typer.Option(help="Which images, and the augmentations' draws.")] = 0,
    sets: Sets = None,
) -> None:
    """Picture what a config's training augmentations do: training images beside their
    augmented copies (masks overlaid for segment), before a sweep pays for them."""
    from sweeper.analysis.augment_preview import write_preview
    from sweeper.trainers.registry import get_trainer

    _at_least("--seed", seed, 0)
    chosen = None if names is None else [x.strip() for x in names.split(",") if x.strip()]
    info = get_trainer(trainer)
    _say(f"wrote {write_preview(info, config, _overrides(sets, None), chosen, n, seed, output)}")


@app.command()
@user_errors
def report(
    sweep_or_spec: Annotated[
        str,
        typer.Argument(
            metavar="SWEEP",
            help="A sweep id, a study id (all its stages), a spec path (its latest study), a "
            "sweep or spec name, or entity/project/sweep_id on W&B.",
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder [default: reports/ID].")
    ] = None,
    fmt: Annotated[
        Literal["html", "md", "latex"],
        typer.Option(
            "--format",
            help="html (with Markdown, PNG, CSV), md (no HTML) or latex (report.tex: every "
            "table, beside the Markdown, PNG and CSV).",
        ),
    ] = "html",
    axes: Annotated[
        str | None, typer.Option(help="Parallel-coordinates axes: a,b [default: by importance].")
    ] = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option(help="Baseline for the deltas: PATH=VALUE [default: the spec's base]."),
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric [default: the sweep's].")] = None,
    store: Store = None,
    wandb_report: Annotated[
        bool, typer.Option("--wandb-report", help="Also save a W&B Report (W&B sweeps).")
    ] = False,
) -> None:
    """Tables, parallel coordinates, importance and curves of a sweep or study, in one folder."""
    from sweeper.report.build import FORMATS, build_report
    from sweeper.report.load import load_report_data
    from sweeper.report.wandb_report import publish
    from sweeper.report.wandb_report import wandb_report as make_wandb_report
    from sweeper.spec.load import parse_overrides

    data = load_report_data(sweep_or_spec, store, metric)
    chosen = [a.strip() for a in axes.split(",") if a.strip()] if axes else None
    if wandb_report:
        make_wandb_report(data, chosen or data.params)  # refuse before writing anything
    out = build_report(
        data,
        output or Path("reports") / data.key,
        fmt,
        chosen,
        parse_overrides(baseline or [], "--baseline"),
    )
    console.print(f"wrote {out / FORMATS[fmt]}")
    if wandb_report:
        console.print(f"W&B report: {publish(data, chosen or data.params)}")
