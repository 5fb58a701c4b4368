"""Config of the lung segmentation trainer. Torch-free: specs are validated without torch."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sweeper.trainers.common.config import OptimConfig, Strict, TrainConfig
from sweeper.trainers.segment.encoders import unknown_encoder_message

STRIDE = 32
"""Five stride-2 encoder stages: the input side must divide by 2**5."""
SMP_DECODER_CHANNELS = (256, 128, 64, 32, 16)

Layout = Literal["auto", "montgomery", "shenzhen", "folders"]
AugName = Literal["hflip", "affine", "brightness_contrast", "clahe", "noise", "elastic"]


class SegmentModel(Strict):
    arch: Literal["unet", "unetplusplus", "fpn"] = Field(
        "unet", description="smp architecture: Unet, UnetPlusPlus or FPN."
    )
    encoder_name: str = Field(
        "efficientnet-b0", description="Any smp encoder (resnet34, mobilenet_v2, tu-<timm name>)."
    )
    encoder_depth: int = Field(5, ge=3, le=5, description="Encoder stages used (3-5).")
    encoder_weights: str | None = Field(
        None,
        description="Local path of an encoder state dict to start from (never downloaded); "
        "3-channel first-layer weights are summed to the one grayscale channel. null: random.",
    )
    decoder_channels: list[Annotated[int, Field(ge=1, le=4096)]] | None = Field(
        None,
        description="unet/unetplusplus: one width per decoder stage (encoder_depth of them); "
        "null: smp's (256, 128, 64, 32, 16) cut to encoder_depth.",
    )

    @field_validator("encoder_name")
    @classmethod
    def _known_encoder(cls, name: str) -> str:
        problem = unknown_encoder_message(name)
        if problem:
            raise ValueError(problem)
        return name

    @field_validator("encoder_weights")
    @classmethod
    def _local_weights(cls, weights: str | None) -> str | None:
        if weights in ("imagenet", "ssl", "swsl", "advprop", "noisy-student"):
            raise ValueError(
                f"{weights!r} would be downloaded; give a local state-dict file path, or null"
            )
        return weights

    @model_validator(mode="after")
    def _decoder_fits_depth(self) -> SegmentModel:
        if self.decoder_channels is not None and self.arch == "fpn":
            raise ValueError("decoder_channels is for unet and unetplusplus, not fpn")
        if self.decoder_channels is not None and len(self.decoder_channels) != self.encoder_depth:
            raise ValueError(
                f"decoder_channels has {len(self.decoder_channels)} entries; encoder_depth "
                f"{self.encoder_depth} needs one per stage"
            )
        return self

    def decoder(self) -> tuple[int, ...]:
        return tuple(self.decoder_channels or SMP_DECODER_CHANNELS[: self.encoder_depth])


class SegmentData(Strict):
    root: str = Field(
        "data/xray",
        description="Montgomery (CXR_png/ + ManualMask/), Shenzhen (CXR_png/ + masks/) "
        "or images/ + masks/ with matching file stems.",
    )
    layout: Layout = Field("auto", description="Which of those layouts; auto: detect it.")
    synthetic: bool = Field(
        False, description="Write the generated chest-X-ray-like set to root when it is missing."
    )
    image_size: int = Field(
        256, ge=STRIDE, le=2048, description="Square side images are resized to (x32)."
    )
    val_fraction: float = Field(0.2, gt=0, le=0.5, description="Share held out for validation.")
    test_fraction: float = Field(
        0.1, ge=0, le=0.5, description="Share held out to score the best checkpoint (0: none)."
    )
    split_seed: int = Field(0, ge=0, description="Seed of the train/val/test split.")
    batch_size: int = Field(16, ge=1, le=4096, description="Training batch size.")
    eval_batch_size: int = Field(32, ge=1, le=4096, description="Validation/test batch size.")
    workers: int = Field(0, ge=0, le=64, description="DataLoader worker processes.")
    cache_mb: int = Field(
        2048,
        ge=0,
        description="Decode every image once and keep it in memory when the set fits in this "
        "many MB; larger sets are decoded per batch.",
    )

    @field_validator("image_size")
    @classmethod
    def _multiple_of_stride(cls, size: int) -> int:
        if size % STRIDE:
            nearest = max(STRIDE, round(size / STRIDE) * STRIDE)
            raise ValueError(f"image_size {size} is not a multiple of {STRIDE} (try {nearest})")
        return size

    @model_validator(mode="after")
    def _something_to_train(self) -> SegmentData:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction leave under 10% to train on")
        return self


class SegmentAug(Strict):
    names: list[AugName] = Field(
        default_factory=list,
        description="Train-time albumentations, applied jointly to image and mask in this "
        "order (hflip, affine, brightness_contrast, clahe, noise, elastic).",
    )
    p: float = Field(0.5, ge=0, le=1, description="Chance each named augmentation is applied.")
    shift: float = Field(0.05, ge=0, le=0.5, description="affine: largest shift (image share).")
    scale: float = Field(0.1, ge=0, le=0.5, description="affine: zoom range 1+-scale.")
    rotate: float = Field(10.0, ge=0, le=180, description="affine: largest angle either way.")
    brightness: float = Field(0.2, ge=0, le=1, description="brightness_contrast: brightness.")
    contrast: float = Field(0.2, ge=0, le=1, description="brightness_contrast: contrast.")
    noise_std: float = Field(
        0.05, ge=0, le=1, description="noise: largest Gaussian sigma (0-1 scale)."
    )
    elastic_alpha: float = Field(30.0, ge=0, le=1000, description="elastic: displacement scale.")
    elastic_sigma: float = Field(5.0, gt=0, le=100, description="elastic: smoothing sigma.")


class SegmentLoss(Strict):
    name: Literal["dice", "bce", "dice_bce"] = Field(
        "dice_bce", description="smp DiceLoss, SoftBCEWithLogitsLoss, or their weighted sum."
    )
    dice_weight: float = Field(1.0, gt=0, le=100, description="dice_bce: weight of Dice.")
    bce_weight: float = Field(1.0, gt=0, le=100, description="dice_bce: weight of BCE.")


class SegmentConfig(TrainConfig):
    """Binary lung segmentation on chest X-rays: an smp model, Dice/BCE, Dice and IoU."""

    epochs: int = Field(50, ge=1, le=100_000)
    model: SegmentModel = Field(default_factory=SegmentModel)
    data: SegmentData = Field(default_factory=SegmentData)
    aug: SegmentAug = Field(default_factory=SegmentAug)
    loss: SegmentLoss = Field(default_factory=SegmentLoss)
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3))
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")
    log_every: int = Field(
        0,
        ge=0,
        description="Log the mean training loss of every N batches as train/batch_loss "
        "against `batch` (0: off).",
    )
    overlays: int = Field(
        4, ge=0, le=64, description="Validation images drawn with true and predicted masks."
    )
