"""Config models shared by every trainer. Torch-free: specs are validated without torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a spec must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OptimConfig(Strict):
    name: Literal["sgd", "adam", "amsgrad", "adamw", "rmsprop"] = Field(
        "sgd", description="Optimizer; amsgrad is Adam with the AMSGrad variant."
    )
    lr: float = Field(0.1, gt=0, le=10, description="Learning rate.")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD/RMSprop momentum.")
    nesterov: bool = Field(False, description="Nesterov momentum (sgd only, momentum > 0).")
    weight_decay: float = Field(0.0, ge=0, lt=1, description="L2 penalty (decoupled for adamw).")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam-family betas.")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs name 'sgd' and momentum > 0")
        return self


class SchedConfig(Strict):
    name: Literal["none", "step", "cosine"] = Field("none", description="LR schedule per epoch.")
    step_size: int = Field(10, ge=1, description="Epochs between decays (step).")
    gamma: float = Field(0.1, gt=0, le=1, description="Decay factor (step).")


class TrainConfig(Strict):
    """Fields every trainer config has; trainers subclass it and add their own."""

    seed: int = Field(0, ge=0, description="Seeds torch, numpy and random.")
    epochs: int = Field(10, ge=1, le=100_000, description="Training epochs.")
    deterministic: bool = Field(False, description="Deterministic kernels (slower on GPU).")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto: cuda when present."
    )
    optim: OptimConfig = Field(default_factory=OptimConfig)
    sched: SchedConfig = Field(default_factory=SchedConfig)
