"""Where sweeps live: the embedded SQLite store (default) or a W&B server."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sweeper.backends.base import Backend

BackendKind = Literal["local", "wandb"]


def open_backend(
    kind: BackendKind,
    store: str | os.PathLike[str] | None = None,
    *,
    create: bool = True,
    readonly: bool = False,
    entity: str | None = None,
    project: str | None = None,
) -> Backend:
    """The local store at `store`, or the W&B server wandb is configured for (its run files
    still go under the store's folder)."""
    from sweeper.backends.local import LocalBackend
    from sweeper.backends.sqlite import store_path

    if kind == "local":
        return LocalBackend(store, create=create, readonly=readonly)
    from sweeper.backends.wandb import WandbBackend

    return WandbBackend(store_path(store), entity=entity, project=project)
