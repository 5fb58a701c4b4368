"""`train`: one trial outside any sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweeper.cli.common import (
    ConfigArg,
    Sets,
    Store,
    TrainerArg,
    Wandb,
    choose_wandb_mode,
    config_overrides,
    console,
    errors,
    styled,
    user_errors,
)


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
    from sweeper.agent.trial import run_alone
    from sweeper.backends.local import LocalBackend
    from sweeper.spec.load import base_config, validate_config
    from sweeper.sweep import RunState
    from sweeper.trainers.registry import get_trainer

    info = get_trainer(trainer)
    base, file = base_config(trainer, config, config_overrides(sets, device))
    resolved = validate_config(info.config_model(), base, file, "config")
    backend = LocalBackend(store)
    epochs = getattr(resolved, "epochs", None)
    with EpochLine(console, epochs if isinstance(epochs, int) else None, info.metric) as echo:
        state, run = run_alone(
            backend,
            trainer,
            resolved,
            threads=threads_per_trial(_cpus_per_trial(config), 1),  # as an agent with one slot
            wandb_mode=choose_wandb_mode(wandb),
            echo=echo,
            on_start=lambda claim: console.print(
                styled("run ", (claim.run_id, "bold"), f" ({trainer}) in {backend.location}")
            ),
        )
    console.print(
        f"{state}: "
        + ", ".join(f"{k}={v:.4g}" for k, v in run["summary"].items() if isinstance(v, float))
    )
    if state not in (RunState.FINISHED, RunState.STOPPED):
        errors.print(run["error"] or "")
        raise typer.Exit(1)
