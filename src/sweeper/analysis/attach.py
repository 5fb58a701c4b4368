"""Attach a landscape to its run: files in the run's folder of the store, and images in the
run's offline wandb mirror when it has one (`wandb sync` then shows them in its media)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sweeper.backends.local import LocalBackend
from sweeper.backends.wandbrun import start_wandb

FOLDER = "landscape"
"""run_dir/landscape: where a run's landscape is kept."""


def keep_in_run(backend: LocalBackend, run_id: str, files: list[Path]) -> Path:
    """Copy the outputs into run_dir/landscape unless they were written there."""
    kept = backend.run_dir(run_id) / FOLDER
    kept.mkdir(parents=True, exist_ok=True)
    for path in files:
        if path.resolve().parent != kept.resolve():
            shutil.copy2(path, kept / path.name)
    return kept


def offline_mirrors(backend: LocalBackend, run_id: str) -> list[Path]:
    """The run's offline wandb folders (`offline-run-<time>-<id>`), as trials write them."""
    return sorted((backend.root / "wandb").glob(f"offline-run-*-{run_id}*"))


def log_to_mirror(backend: LocalBackend, run_id: str, images: dict[str, Path]) -> Path | None:
    """Resume the run's offline wandb run under its id and log the images one step after its
    last epoch (W&B drops rows at steps it has passed). None when the run has no mirror."""
    if not offline_mirrors(backend, run_id):
        return None
    import wandb

    run = backend.run(run_id)
    sweep = backend.sweep(run["sweep_id"]) if run["sweep_id"] else None
    steps = backend.history([run_id])["_step"]
    mirror = start_wandb(
        "offline",
        run_id=run_id,
        project=sweep.project if sweep else "sweeper",
        entity=sweep.entity if sweep else None,
        group=(sweep.study or sweep.id) if sweep else None,
        job_type=sweep.stage_name if sweep else None,
        config={},
        directory=backend.root,
    )
    if mirror is None:  # only "disabled" gives none
        return None
    step = int(steps.max()) + 1 if len(steps) else 0
    logged = {f"landscape/{name}": wandb.Image(str(path)) for name, path in images.items()}
    mirror.log(logged, step=step)
    folder = Path(mirror.dir).parent
    mirror.finish()
    return folder
