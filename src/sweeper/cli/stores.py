"""`sweeper store ...`: commands on a store as a whole (`copy` moves sweeps between stores)."""

from __future__ import annotations

from typing import Annotated

import typer

from sweeper.cli.common import App, Group, say, user_errors

store_app = App(
    help="Commands on a whole store: a SQLite file or a PostgreSQL server.",
    cls=Group,
    no_args_is_help=True,
    rich_markup_mode=None,
)


@store_app.command("copy")
@user_errors
def copy(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SRC",
            help="The store to copy from: a SQLite file or postgresql://USER@HOST:PORT/DB.",
            show_default=False,
        ),
    ],
    destination: Annotated[
        str,
        typer.Argument(
            metavar="DST",
            help="The store to copy into (made if there is none): a file or a URL.",
            show_default=False,
        ),
    ],
    sweep: Annotated[
        str | None,
        typer.Option(
            "--sweep",
            help="Copy only this sweep or study (an id, a spec path or a name; a stage brings"
            " its whole study) [default: every sweep, and the runs outside any].",
        ),
    ] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Copy running runs as they are now; the destination requeues them after"
            " their heartbeat timeout [default: refuse while a run is running].",
        ),
    ] = False,
) -> None:
    """Copy sweeps, their runs, history, summaries and meta from SRC to DST, ids kept, in one
    transaction on DST (all or nothing): a study moved between a laptop's SQLite store and a
    cluster's PostgreSQL server, either way. The same `sweeper launch` against DST resumes it.
    The password of a URL comes from the URL, PGPASSWORD or ~/.pgpass."""
    from sweeper.backends.postgres import masked
    from sweeper.backends.storecopy import copy_store

    done = copy_store(source, destination, sweep, live=live)
    shown = masked(destination)
    line = f"copied {done.sweeps} sweep(s), {done.runs} run(s), {done.history} history row(s)"
    say(
        line
        + f" to {shown}"
        + (f" ({done.live} running, copied as they were)" if done.live else "")
    )
