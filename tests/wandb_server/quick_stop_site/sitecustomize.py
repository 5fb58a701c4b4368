"""Shortens wandb's run stop check in a test's child process (see `quick_stop_env`).

Python imports `sitecustomize` at start-up from the first `sys.path` folder holding one;
`quick_stop_env` puts this folder first on PYTHONPATH. When the process later imports
wandb's `wandb.sdk.lib.run_stopping`, its `RunStopChecker` polls every
`$STANDIN_WANDB_STOP_POLL_S` seconds instead of 15. Everything else is wandb's own: the
file_stream answer, wandb-core's `IsStopped`, and the SIGINT of `interrupt_main`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_MODULE = "wandb.sdk.lib.run_stopping"


class _ShortPoll:
    """A `sys.meta_path` finder that patches one module right after it is executed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        spec = next(
            (
                found
                for finder in sys.meta_path
                if (found := finder.find_spec(name, path, target)) is not None
            ),
            None,
        )
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        execute = loader.exec_module
        seconds = self.seconds

        def exec_module(module: ModuleType) -> None:
            execute(module)
            # `poll_interval` is keyword-only; its default was bound at definition time.
            module.RunStopChecker.__init__.__kwdefaults__["poll_interval"] = seconds

        loader.exec_module = exec_module
        return spec


if seconds := float(os.environ.get("STANDIN_WANDB_STOP_POLL_S") or 0):
    sys.meta_path.insert(0, _ShortPoll(seconds))
