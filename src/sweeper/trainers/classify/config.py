"""Config models of the classification trainers. Torch-free (validated at spec time)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sweeper.trainers.common.config import OptimConfig, Strict, TrainConfig


class XorModel(Strict):
    depth: int = Field(1, ge=0, le=3, description="Hidden layers (0: logistic regression).")
    width: int = Field(2, ge=1, le=3, description="Units per hidden layer.")
    activation: Literal["tanh", "relu", "sigmoid"] = "tanh"


class XorData(Strict):
    n_train: int = Field(1000, ge=4, description="Training points.")
    n_test: int = Field(500, ge=4, description="Held-out points.")
    noise: float = Field(0.1, ge=0, description="Gaussian noise sigma around the 4 corners.")
    batch_size: int = Field(32, ge=1)


class XorConfig(TrainConfig):
    """Noisy XOR: four Gaussian blobs at the unit square's corners, label = x1 xor x2."""

    epochs: int = Field(100, ge=1, le=100_000)
    model: XorModel = Field(default_factory=XorModel)
    data: XorData = Field(default_factory=XorData)
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(name="sgd", lr=0.1))
