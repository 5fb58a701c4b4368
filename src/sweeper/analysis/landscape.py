"""`sweeper landscape`: the loss surface around a run's trained weights, written to a folder.

f(a, b) = L(θ* + a·δ + b·η) on a steps-by-steps grid (or f(a) along δ with one dimension),
δ and η seeded, filter-wise normalised Gaussian directions; or, with `between`, the line
from θ* to another checkpoint. Pictures, the raw grid (CSV, NPZ) and a JSON of what was done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeper.analysis import plots
from sweeper.analysis.attach import FOLDER, keep_in_run, log_to_mirror
from sweeper.analysis.checkpoints import load_weights, locate, resolve_between
from sweeper.analysis.directions import (
    Direction,
    Ignore,
    difference,
    float_state,
    random_directions,
    weights,
)
from sweeper.analysis.surface import mean_loss, scan
from sweeper.backends.local import LocalBackend
from sweeper.errors import SweeperError
from sweeper.output import OutputFolder, write_csv
from sweeper.trainers.common.rebuild import Rebuilt
from sweeper.trainers.registry import get_trainer

SPLITS = ("train", "val")
IGNORES = ("biasbn", "none")


@dataclass(frozen=True)
class Options:
    steps: int = 25
    low: float = -1.0
    high: float = 1.0
    dims: int = 2
    split: str = "train"
    seed: int = 0
    ignore: Ignore = "biasbn"
    between: str | None = None
    """A checkpoint file or run id: the line from θ* (0) to its weights (1) instead."""
    limit: int | None = None
    """Score the first `limit` items of the split (None: all)."""

    def check(self) -> None:
        """Every option, before anything is loaded or written.

        Raises:
            SweeperError: fewer than 2 steps, a range that is not finite and increasing, dims
                other than 1 or 2, an unknown split or ignore mode, `between` with 2 dims, or a
                limit below 1; the message names the CLI option.
        """
        if self.steps < 2:
            raise SweeperError(f"--steps: must be at least 2, got {self.steps}")
        if not np.isfinite([self.low, self.high]).all() or self.low >= self.high:
            raise SweeperError(f"--range: min must be below max, got {self.low:g} {self.high:g}")
        if self.dims not in (1, 2):
            raise SweeperError(f"--dims: expected 1 or 2, got {self.dims}")
        if self.split not in SPLITS:
            raise SweeperError(f"--split: expected train or val, got {self.split!r}")
        if self.ignore not in IGNORES:
            raise SweeperError(f"--ignore: expected biasbn or none, got {self.ignore!r}")
        if self.between is not None and self.dims != 1:
            raise SweeperError("--between draws a line (--dims 1), not a surface")
        if self.limit is not None and self.limit < 1:
            raise SweeperError(f"--limit: must be at least 1, got {self.limit}")


@dataclass
class Result:
    folder: Path
    files: list[Path]
    checkpoint: Path
    scored: str
    origin_loss: float
    seconds: float
    kept: Path
    """The run's own copy: run_dir/landscape."""
    mirror: Path | None = None
    """The offline wandb run the images were logged to."""


def rebuild(backend: LocalBackend, run_id: str, split: str, limit: int | None) -> tuple[Any, ...]:
    """(run source, rebuilt model/data/loss with the checkpoint loaded).

    The model comes from the trainer's own `build(config, device)`, as its `train` made it, so
    the weights scored are those of the model that was trained.

    Raises:
        NotFoundError: no such run.
        SweeperError: the run has no trainer or checkpoint (`locate`), the trainer cannot
            rebuild, its data cannot be rebuilt, or the checkpoint does not fit the model.
        SpecError: the run's config no longer validates against the trainer's config model.
        CheckpointError: the checkpoint is not a weights-only sweeper checkpoint.
    """
    from sweeper.spec.load import validate_config
    from sweeper.trainers.common.device import select_device

    source = locate(backend, run_id)
    info = get_trainer(source.trainer)
    build, scored = info.build_fn(), info.rebuild_fn()
    if build is None or scored is None:
        raise SweeperError(f"trainer {source.trainer!r} cannot rebuild its runs for analysis")
    config = validate_config(info.config_model(), source.config, f"run {run_id}", "config")
    try:
        # The trainer's own build, as its train() makes it: the model trained is the one scored.
        rebuilt: Rebuilt = scored(build(config, select_device("auto")), split, limit)
    except SweeperError as exc:
        raise SweeperError(
            f"run {run_id}: cannot rebuild its {source.trainer} data: {exc}"
        ) from None
    except (OSError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweeperError(
            f"run {run_id}: cannot rebuild its {source.trainer} data: {first}"
        ) from None
    load_into(rebuilt, source.checkpoint)
    return source, rebuilt


def load_into(rebuilt: Rebuilt, checkpoint: Path) -> None:
    """Load the checkpoint's weights into the rebuilt model, in place.

    Raises:
        SweeperError: the state dict does not fit the model (torch's first line quoted).
        CheckpointError: not a weights-only sweeper checkpoint (`load_weights`).
    """
    try:
        rebuilt.model.load_state_dict(load_weights(checkpoint))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise SweeperError(f"{checkpoint}: does not fit the rebuilt model: {first}") from None


def _directions(
    backend: LocalBackend, rebuilt: Rebuilt, options: Options
) -> tuple[Direction, list[Direction]]:
    """(the live tensors to move, the directions to move them along)."""
    if options.between is None:
        live = weights(rebuilt.model)
        return live, random_directions(live, options.seed, options.dims, options.ignore)
    other_path = resolve_between(backend, options.between)
    live = float_state(rebuilt.model)
    other = load_weights(other_path)
    for name, tensor in live.items():
        if name not in other or other[name].shape != tensor.shape:
            raise SweeperError(
                f"--between {options.between}: its weights do not match this run's model "
                f"(at {name})"
            )
    return live, [difference({k: other[k].to(t) for k, t in live.items()}, live)]


def landscape(
    backend: LocalBackend,
    run_id: str,
    options: Options,
    out: Path | None = None,
    on_total: Callable[[int], None] = lambda total: None,
    tick: Callable[[], None] = lambda: None,
) -> Result:
    """Scan the loss around a run's weights and write the pictures, the grid and a JSON.

    `options.steps` points per axis over [low, high] (a steps x steps grid with 2 dims, plus
    the 1-D curve along δ); the loss is the trainer's mean loss over the split. Written to
    `out`, else to the run's own `landscape/` folder; kept with the run and logged to its
    offline W&B mirror. `on_total` gets the number of points once, `tick` is called per point.
    Directions: filter-wise normalised (Li et al. 2018, "Visualizing the Loss Landscape of
    Neural Nets", section 4).

    Raises:
        SweeperError: a bad option (`Options.check`), a run that cannot be rebuilt
            (`rebuild`), `between` weights that do not match, or an output folder that cannot
            be created or is not sweeper's own.
    """
    options.check()
    # A folder given with --out may be the user's: written only if new, empty or sweeper
    # landscape's own (checked before the run is loaded); the run's landscape/ is the store's.
    given = OutputFolder(out, "sweeper landscape") if out is not None else None
    source, rebuilt = rebuild(backend, run_id, options.split, options.limit)
    live, directions = _directions(backend, rebuilt, options)
    target = out or backend.run_dir(run_id) / FOLDER
    with ExitStack() as writing:
        try:  # before the scan, not after minutes of it
            if given is None:
                target.mkdir(parents=True, exist_ok=True)
            folder = target if given is None else writing.enter_context(given)
        except OSError as exc:
            raise SweeperError(
                f"{target}: cannot create the output folder: {exc.strerror}"
            ) from None
        started = time.perf_counter()
        alphas = np.linspace(options.low, options.high, options.steps)
        grid = [(a, b) for a in alphas for b in alphas] if options.dims == 2 else []
        on_total(len(grid) + len(alphas))
        curve = scan(rebuilt, live, directions[:1], [(a,) for a in alphas], tick)
        loss = (
            scan(rebuilt, live, directions, grid, tick).reshape(len(alphas), -1) if grid else None
        )
        origin = mean_loss(rebuilt)
        seconds = time.perf_counter() - started
        what = "θ* → other checkpoint" if options.between else f"{options.split} loss"
        title = f"run {run_id}: {what}"
        files = _write_grid(folder, alphas, loss, curve, origin)
        xlabel = (
            "t (0: this run, 1: --between)" if options.between else r"$\alpha$ (direction $\delta$)"
        )
        images = {"curve": plots.curve(alphas, curve, title, xlabel, folder / "curve.png")}
        if loss is not None:
            images["contour"] = plots.contour(alphas, alphas, loss, title, folder / "contour.png")
            images["surface"] = plots.surface(alphas, alphas, loss, title, folder / "surface.png")
        about = {
            "run": run_id,
            "trainer": source.trainer,
            "checkpoint": str(source.checkpoint),
            "scored": rebuilt.described,
            "loss_at_trained_weights": origin,
            "seconds": seconds,
            "grid_points": len(grid) + len(alphas),
            **asdict(options),
        }
        (folder / "landscape.json").write_text(json.dumps(about, indent=2) + "\n")
        files += [*images.values(), folder / "landscape.json"]
    # moved from the staging folder (when --out was given) into the output folder
    files = [target / f.relative_to(folder) for f in files]
    images = {name: target / f.relative_to(folder) for name, f in images.items()}
    kept = keep_in_run(backend, run_id, files)
    mirror = log_to_mirror(backend, run_id, images)
    return Result(
        target, files, source.checkpoint, rebuilt.described, origin, seconds, kept, mirror
    )


def _write_grid(
    folder: Path, alphas: np.ndarray, loss: np.ndarray | None, curve: np.ndarray, origin: float
) -> list[Path]:
    """The raw numbers: NPZ for code, CSV (one row per point) for spreadsheets."""
    arrays: dict[str, Any] = {"alphas": alphas, "curve": curve, "origin_loss": np.array(origin)}
    if loss is not None:
        arrays |= {"betas": alphas, "loss": loss}
    np.savez(folder / "landscape.npz", **arrays)
    files = [folder / "landscape.npz"]
    write_csv(pd.DataFrame({"alpha": alphas, "loss": curve}), folder / "curve.csv")
    files.append(folder / "curve.csv")
    if loss is not None:
        alpha, beta = np.meshgrid(alphas, alphas, indexing="ij")  # loss[i, j] is at (a_i, b_j)
        surface = {"alpha": alpha.ravel(), "beta": beta.ravel(), "loss": loss.ravel()}
        write_csv(pd.DataFrame(surface), folder / "surface.csv")
        files.append(folder / "surface.csv")
    return files
