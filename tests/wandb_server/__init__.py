"""A stand-in W&B server on loopback, so tests run the real wandb client without network."""

from .fixture import wandb_server
from .quick_stop import quick_stop_env
from .server import WandbServer

__all__ = ["WandbServer", "quick_stop_env", "wandb_server"]
