"""`validate`, `compile`, `schema`, `trainers`, `generate`: specs, trainers and data sets,
before any sweep.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sweeper.cli.common import (
    BackendOpt,
    EstimateOpt,
    ReadEntity,
    ReadProject,
    Sets,
    Smoke,
    SpecArg,
    Store,
    TrainerArg,
    at_least,
    choose_backend_kind,
    console,
    errors,
    load_spec,
    print_estimate,
    say,
    styled,
    user_errors,
)

if TYPE_CHECKING:
    from sweeper.backends.base import Backend


@user_errors
def validate(
    spec: SpecArg, sets: Sets = None, smoke: Smoke = False, estimate: EstimateOpt = False
) -> None:
    """Check a spec against its trainer's config and the W&B schema, and that the data and
    weights files its trials need are there; writes nothing."""
    from sweeper.spec.compile import compile_spec
    from sweeper.spec.plain import PlainSweep
    from sweeper.spec.preflight import preflight
    from sweeper.sweep import planned_trials

    loaded = load_spec(spec, sets, smoke)
    if isinstance(loaded, PlainSweep):
        method, total = loaded.config["method"], planned_trials(loaded.config)
        size = f"{method}, up to {total} trials" if total else f"{method}, runs until stopped"
        console.print(styled(("ok", "green"), f" {loaded.name}: {size} (a plain W&B sweep)"))
        if estimate:
            print_estimate(loaded, None, None)
        return
    preflight(loaded)
    for config in compile_spec(loaded.spec, loaded.path):
        method, total = config["method"], planned_trials(config)
        if method == "grid":  # a spec's grid is exact: its repeats are a swept seed
            size = f"{total} trials"
        else:
            size = f"{method}, up to {total} trials" if total else f"{method}, runs until stopped"
        console.print(styled(("ok", "green"), f" {config['name']}: {size}"))
    if estimate:
        print_estimate(loaded, None, None)


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
    backend_kind: BackendOpt = None,
    entity: ReadEntity = None,
    project: ReadProject = None,
) -> None:
    """Print one W&B sweep config (a study: one stage, carrying the best of the ones before).

    `wandb sweep` takes the output as it is.
    """
    import yaml

    from sweeper.agent.launch import compile_for_stage
    from sweeper.backends import open_backend
    from sweeper.spec.load import parse_overrides
    from sweeper.spec.plain import PlainSweep

    loaded = load_spec(spec, sets, smoke)

    def opened() -> Backend:
        """Where the stages before ran: on W&B, the spec's entity and project by default."""
        named = None if isinstance(loaded, PlainSweep) else loaded.spec
        return open_backend(
            choose_backend_kind(backend_kind),
            store,
            create=False,
            readonly=True,
            entity=entity or (named.entity if named else None),
            project=project or (named.project if named else None),
        )

    config, note = compile_for_stage(
        loaded, stage, parse_overrides(carry, "--carry") if carry else None, opened
    )
    text = yaml.safe_dump(config, sort_keys=False)
    if output:
        output.write_text(text)
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text)
    if note:
        errors.print(note)


@user_errors
def schema(trainer: TrainerArg) -> None:
    """Print the JSON Schema of a trainer's config (for editors)."""
    import json

    from sweeper.trainers.registry import get_trainer

    sys.stdout.write(
        json.dumps(get_trainer(trainer).config_model().model_json_schema(), indent=2) + "\n"
    )


def trainers() -> None:
    """List the registered trainers."""
    from sweeper.trainers.registry import TRAINERS

    for info in TRAINERS.values():
        console.print(
            styled((f"{info.name:10}", "bold"), f" {info.summary}  (metric: {info.metric})")
        )


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

    at_least("--seed", seed, 0)
    write = generator(name)
    with OutputFolder(out, f"sweeper generate {name}") as staging:
        write(staging, seed=seed)
    folders = _file_counts(out)
    total = sum(folders.values())
    say(f"wrote {total} files into {out}:")
    for folder, count in folders.items():
        say(f"  {folder}/  {count} files")
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
