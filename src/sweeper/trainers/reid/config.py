"""Config of the re-identification trainer. Torch-free: specs are validated without torch."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from sweeper.trainers.common.config import OptimConfig, Strict, TrainConfig

Arch = Literal[
    "mobilenet_v3_small",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet18_fc512",
    "resnet34_fc512",
    "resnet50_fc512",
    "se_resnet18",
    "se_resnet34",
    "se_resnet50",
    "se_resnet18_fc512",
    "se_resnet34_fc512",
    "se_resnet50_fc512",
    "vgg16",
    "vit_b_16",
]
ARCHS: tuple[str, ...] = get_args(Arch)

Augment = Literal[
    "translate", "flip", "erase", "color_jitter", "color_aug", "perspective", "grayscale"
]
AUGMENTS: tuple[str, ...] = get_args(Augment)


def _default_augment() -> list[Augment]:
    return ["translate", "flip"]


MIN_SIZE = {"vit_b_16": 224}
"""Smallest (height, width) side per backbone; the CNNs need 32 (five stride-2 stages)."""
CNN_MIN_SIZE = 32
VIT_PATCH = 16

Side = Annotated[int, Field(ge=16, le=2048)]


class ReidModel(Strict):
    arch: Arch = Field(
        "resnet50", description="Backbone; *_fc512 adds last stride 1 + 512-d embedding."
    )
    pretrained: str | None = Field(
        None,
        description="Local path of backbone weights (a torchvision state dict); never downloaded.",
    )


class ReidData(Strict):
    root: str = Field(
        "data/VeRi", description="VeRi-776 root: image_train/, image_query/, image_test/."
    )
    synthetic: bool = Field(
        False, description="Generate a small VeRi-layout stand-in at root when it is missing."
    )
    image_size: tuple[Side, Side] = Field((224, 224), description="Input (height, width).")
    batch_size: int = Field(32, ge=2, le=4096, description="Training batch (P identities x K).")
    sampler: Literal["identity", "random"] = Field(
        "identity", description="identity: P x K batches (needed by the triplet loss)."
    )
    num_instances: int = Field(4, ge=1, le=64, description="K: images per identity in a batch.")
    augment: list[Augment] = Field(
        default_factory=_default_augment, description="Training augmentations by name."
    )
    workers: int = Field(4, ge=0, le=64, description="DataLoader worker processes.")


class ReidLoss(Strict):
    lambda_xent: float = Field(1.0, ge=0, le=100, description="Weight of cross-entropy (0: off).")
    lambda_htri: float = Field(
        1.0, ge=0, le=100, description="Weight of batch-hard triplet (0: off)."
    )
    label_smooth: float = Field(0.1, ge=0, lt=1, description="Label smoothing epsilon.")
    margin: float = Field(0.3, gt=0, le=10, description="Triplet margin.")

    @model_validator(mode="after")
    def _one_loss_on(self) -> ReidLoss:
        if self.lambda_xent == 0 and self.lambda_htri == 0:
            raise ValueError("lambda_xent and lambda_htri are both 0: nothing to train")
        return self


class ReidEval(Strict):
    every: int = Field(1, ge=1, description="Evaluate every N epochs (and always after the last).")
    distance: Literal["euclidean", "cosine"] = Field(
        "euclidean", description="euclidean: squared Euclidean between features."
    )
    batch_size: int = Field(128, ge=1, le=4096, description="Feature extraction batch.")
    max_rank: int = Field(50, ge=10, le=1000, description="Length of the CMC curve.")


class ReidConfig(TrainConfig):
    """VeRi-776 vehicle re-identification: cross-entropy + batch-hard triplet, CMC/mAP."""

    model: ReidModel = Field(default_factory=ReidModel)
    data: ReidData = Field(default_factory=ReidData)
    loss: ReidLoss = Field(default_factory=ReidLoss)
    eval: ReidEval = Field(default_factory=ReidEval)
    optim: OptimConfig = Field(
        default_factory=lambda: OptimConfig(name="amsgrad", lr=3e-4, weight_decay=5e-4)
    )
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")

    @model_validator(mode="after")
    def _image_size_fits_backbone(self) -> ReidConfig:
        height, width = self.data.image_size
        arch = self.model.arch
        least = MIN_SIZE.get(arch, CNN_MIN_SIZE)
        if min(height, width) < least:
            raise ValueError(
                f"data.image_size {height}x{width} is too small for model.arch {arch!r}: "
                f"it needs at least {least}x{least}"
            )
        if arch.startswith("vit") and (height != width or height % VIT_PATCH):
            raise ValueError(
                f"data.image_size {height}x{width}: model.arch {arch!r} needs a square size "
                f"that is a multiple of {VIT_PATCH}"
            )
        return self

    @model_validator(mode="after")
    def _sampler_fits_loss(self) -> ReidConfig:
        data = self.data
        if self.loss.lambda_htri > 0 and data.sampler != "identity":
            raise ValueError(
                "loss.lambda_htri > 0 (triplet loss) needs data.sampler 'identity' "
                "(P identities x K images per batch)"
            )
        if data.sampler == "identity":
            if data.batch_size % data.num_instances:
                raise ValueError(
                    f"data.batch_size {data.batch_size} is not a multiple of "
                    f"data.num_instances (K) {data.num_instances}"
                )
            if self.loss.lambda_htri > 0 and data.batch_size // data.num_instances < 2:
                raise ValueError(
                    f"data.batch_size {data.batch_size} holds one identity of "
                    f"data.num_instances {data.num_instances}: the triplet loss needs P >= 2"
                )
        return self
