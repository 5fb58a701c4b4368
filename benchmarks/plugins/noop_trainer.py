"""A trainer that does nothing: what is left of a trial's time is the platform's overhead."""

from __future__ import annotations

import time

from pydantic import Field

from sweeper.trainers.common.config import TrainConfig
from sweeper.trainers.logger import Logger
from sweeper.trainers.registry import TrainerInfo, register


class NoopConfig(TrainConfig):
    x: float = Field(0.0, ge=-1e9, le=1e9)
    sleep: float = Field(0.0, ge=0, le=60, description="seconds of pretend work, so trials overlap")


def train(config: NoopConfig, logger: Logger) -> dict[str, float]:
    time.sleep(config.sleep)
    logger.log({"loss": config.x}, step=0)
    return {"loss": config.x}


register(
    TrainerInfo(
        name="noop",
        summary="benchmark: logs its x once and returns",
        config_ref="noop_trainer:NoopConfig",
        train_ref="noop_trainer:train",
        metric="loss",
        torch=False,
    )
)
