"""A stand-in W&B server on loopback, so tests run the real wandb client without network."""

from .fixture import wandb_server
from .server import WandbServer

__all__ = ["WandbServer", "wandb_server"]
