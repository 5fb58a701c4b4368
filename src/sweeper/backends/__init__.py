"""Where sweeps live: the embedded SQLite store (default) or a W&B server."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from sweeper.errors import SweeperError

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
    wait: float | None = None,
) -> Backend:
    """The local store at `store` (a SQLite file or a postgresql:// URL), or the W&B server
    wandb is configured for (its run files still go under the store's folder). `wait`: the
    most seconds one W&B call waits on a server that does not answer (WandbBackend).

    Raises:
        SweeperError: a postgresql:// store with the W&B backend (a W&B server keeps the runs;
            only a folder for their files is wanted), or as LocalBackend raises.
    """
    from sweeper.backends.local import LocalBackend
    from sweeper.backends.postgres import is_url, masked
    from sweeper.backends.sqlite import store_path

    if kind == "local":
        return LocalBackend(store, create=create, readonly=readonly)
    if is_url(store):
        raise SweeperError(
            f"--store {masked(str(store))}: a W&B server keeps this sweep's runs; give the"
            " wandb backend a local path for their files, or drop --backend wandb"
        )
    from sweeper.backends.wandb import WandbBackend

    return WandbBackend(store_path(store), entity=entity, project=project, wait=wait)
