"""The `sweeper` command: the typer app, assembled from one module per group of commands.

Each command is thin: parse, call the library, print. Heavy imports (torch, wandb, pandas) stay
inside commands: `--help` and `validate` stay fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sweeper.cli import analysis, control, launch, report, spec, status, stores, sync, train
from sweeper.cli.common import App, Group, console

app = App(
    help="Experiment specs -> W&B sweeps, run by local agents, with or without a W&B server.",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is literal: rich markup would eat every "[default: …]"
)


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


# `sweeper --help` lists the commands in this order.
app.command()(spec.validate)
app.command("compile")(spec.compile_)
app.command()(spec.schema)
app.command()(spec.trainers)
app.command()(spec.generate)
app.command()(launch.launch)
app.command()(launch.agent)
app.command()(status.status)
app.command("sweeps")(status.sweeps_)
app.command("ls", help="Same as `sweeper sweeps`.")(status.sweeps_)
app.command()(control.pause)
app.command()(control.resume)
app.command()(control.stop)
app.command()(control.cancel)
app.command()(sync.sync)
app.command()(status.runs)
app.command()(train.train)
app.command()(analysis.landscape)
app.command()(analysis.augment)
app.command()(report.report)
app.add_typer(stores.store_app, name="store")
