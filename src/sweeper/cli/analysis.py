"""`landscape`, `augment`: looking at a trained run and at a config's augmentations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from sweeper.cli.common import (
    ConfigArg,
    Sets,
    Store,
    TrainerArg,
    at_least,
    config_overrides,
    console,
    say,
    user_errors,
)


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
    say(f"scored {result.scored} at {result.checkpoint}")
    say(f"loss at the trained weights {result.origin_loss:.6g}; {result.seconds:.1f} s")
    say(f"wrote {result.folder}: " + ", ".join(p.name for p in result.files))
    if result.kept.resolve() != result.folder.resolve():
        say(f"kept with the run in {result.kept}")
    if result.mirror is not None:
        say(f"logged the images to the offline wandb run {result.mirror}")


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

    at_least("--seed", seed, 0)
    chosen = None if names is None else [x.strip() for x in names.split(",") if x.strip()]
    info = get_trainer(trainer)
    written = write_preview(info, config, config_overrides(sets, None), chosen, n, seed, output)
    say(f"wrote {written}")
