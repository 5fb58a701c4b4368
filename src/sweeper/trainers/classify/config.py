"""Config models of the classification trainers. Torch-free (validated at spec time)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from sweeper.trainers.classify.data.catalog import (
    HAS_TEST_SPLIT,
    N_CLASSES,
    input_shape,
    shape_text,
)
from sweeper.trainers.classify.models.catalog import (
    input_problem,
    torchvision_name,
    unknown_arch_message,
)
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


class ClassifyModel(Strict):
    arch: str = Field(
        "mlp",
        description="mlp, cnn, lenet, lenet5, alexnet, two_branch, or a torchvision "
        "classification model by name (resnet18; tv.alexnet for torchvision's AlexNet).",
    )
    depth: int = Field(2, ge=0, le=32, description="mlp: hidden layers.")
    width: int = Field(128, ge=1, le=65_536, description="mlp: units per hidden layer.")
    hidden: list[Annotated[int, Field(ge=1, le=65_536)]] | None = Field(
        None, description="mlp: hidden sizes, e.g. [128, 64]; overrides depth and width."
    )
    activation: Literal["relu", "tanh", "sigmoid", "gelu"] = Field(
        "relu", description="mlp: hidden activation."
    )
    n_base: int = Field(
        16,
        ge=1,
        le=1024,
        description="Channels of the first conv block (cnn, lenet, alexnet, "
        "two_branch); later blocks are multiples of it.",
    )
    batch_norm: bool = Field(
        False, description="Batch norm after each conv (cnn, lenet, alexnet, two_branch)."
    )
    dropout: float = Field(
        0.0, ge=0, lt=1, description="Dropout before the linear layers (not lenet5, torchvision)."
    )
    weights: str | None = Field(
        None,
        description="torchvision models: a local state-dict file to start from "
        "(nothing is downloaded); null: random init.",
    )

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        problem = unknown_arch_message(arch)
        if problem:
            raise ValueError(problem)
        return arch

    @model_validator(mode="after")
    def _weights_for_torchvision(self) -> ClassifyModel:
        if self.weights is not None and torchvision_name(self.arch) is None:
            raise ValueError(f"weights is for torchvision models; {self.arch!r} is built in")
        return self


class ClassifyData(Strict):
    name: Literal["digits", "mnist", "cifar10", "folder", "xor"] = Field(
        "digits",
        description="digits: sklearn's bundled 8x8 digits; mnist/cifar10: torchvision; "
        "folder: one sub-folder per class; xor: noisy 2-D points.",
    )
    root: str = Field(
        "data",
        description="mnist/cifar10: torchvision's root; folder: the class sub-folders, "
        "or train/ and test/ holding them.",
    )
    download: bool = Field(False, description="mnist/cifar10: download when missing (network).")
    synthetic: bool = Field(
        False, description="folder: write the generated two-shape set to root when it is missing."
    )
    val_fraction: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="Stratified share of the training set held out for "
        "validation (0: none; evaluation then uses the test split).",
    )
    test_fraction: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Stratified test share carved from sets that have no "
        "test split of their own (digits, folder without test/).",
    )
    split_seed: int = Field(0, ge=0, description="Seed of the val/test splits (and xor points).")
    retrain_full: bool = Field(
        False,
        description="Train on train+val (the final model); per-epoch val_* metrics are "
        "then measured on the test split.",
    )
    batch_size: int = Field(64, ge=1, le=65_536, description="Training batch size.")
    test_batch_size: int = Field(1000, ge=1, le=65_536, description="Evaluation batch size.")
    image_size: (
        tuple[Annotated[int, Field(ge=1, le=4096)], Annotated[int, Field(ge=1, le=4096)]] | None
    ) = Field(
        None,
        description="Resize to [height, width] once at load; null: the data set's own "
        "size (folder: the first image's).",
    )
    channels: Literal[1, 3] | None = Field(
        None, description="1: grayscale, 3: RGB; null: the data set's own (folder: RGB)."
    )
    n_samples: int = Field(
        1000,
        ge=8,
        le=10_000_000,
        description="xor: training points (the test split has half as many).",
    )
    noise: float = Field(0.1, ge=0, le=10, description="xor: Gaussian noise sigma.")

    def shape(self) -> tuple[int | None, ...]:
        """(channels, height, width) the model sees, None where unknown before reading."""
        return input_shape(self.name, self.image_size, self.channels)

    def has_test_split(self) -> bool | None:
        return self.test_fraction > 0 or HAS_TEST_SPLIT[self.name]


AugName = Literal[
    "hflip", "vflip", "rotate", "translate", "crop", "jitter", "contrast", "noise", "erase"
]
AugPreset = Literal[
    "none", "hflip", "rotate10", "vflip", "shift5", "contrast", "noise", "rotate_upto90", "combined"
]

AUG_PRESETS: dict[str, dict[str, Any]] = {
    "none": {"names": []},
    "hflip": {"names": ["hflip"]},
    "rotate10": {"names": ["rotate"], "degrees": 10.0},
    "vflip": {"names": ["vflip"]},
    "shift5": {"names": ["translate"], "translate": 5},
    "contrast": {"names": ["contrast"], "contrast": 0.3},
    "noise": {"names": ["noise"], "noise_std": 0.05},
    "rotate_upto90": {"names": ["rotate"], "degrees": 90.0},  # any angle in ±90°, not a 90° turn
    "combined": {
        "names": ["hflip", "rotate", "translate", "contrast"],
        "degrees": 10.0,
        "translate": 5,
        "contrast": 0.3,
    },
}
"""What each preset fixes, so that one categorical parameter sweeps whole augmentation choices.
"combined" is the label-preserving ones together (no up-down flip or 90-degree turns)."""


def _preset_doc() -> str:
    def fixed(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in values.items())

    return "; ".join(f"{name}: {fixed(values)}" for name, values in AUG_PRESETS.items())


class AugConfig(Strict):
    preset: AugPreset | None = Field(
        None,
        description="A named augmentation choice that sets names and their bounds "
        f"({_preset_doc()}); null: use names as given. Setting a field a preset fixes to "
        "another value is an error.",
    )
    names: list[AugName] = Field(
        default_factory=list,
        description="Train-time augmentations, applied in this order (hflip, vflip, rotate, "
        "translate, crop, jitter, contrast, noise, erase). Evaluation never augments.",
    )
    degrees: float = Field(15.0, ge=0, le=180, description="rotate: largest angle either way.")
    translate: int = Field(
        2, ge=0, le=256, description="translate: largest shift in pixels, either way."
    )
    crop_padding: int = Field(4, ge=1, le=256, description="crop: zero padding before the crop.")
    jitter: float = Field(
        0.2, ge=0, le=1, description="jitter: brightness/contrast/saturation factor range 1+-x."
    )
    contrast: float = Field(
        0.3, ge=0, le=1, description="contrast: factor range 1+-x around each image's mean."
    )
    noise_std: float = Field(0.05, ge=0, le=1, description="noise: sigma on the 0-1 scale.")
    erase_prob: float = Field(0.5, ge=0, le=1, description="erase: chance per image.")

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        """A preset fills in the fields it fixes; the Literal check names an unknown one."""
        if not isinstance(data, dict) or data.get("preset") not in AUG_PRESETS:
            return data
        preset = data["preset"]
        for key, value in AUG_PRESETS[preset].items():
            if key in data and data[key] != value:
                raise ValueError(
                    f"preset {preset!r} sets {key} to {value!r}, not {data[key]!r}; "
                    f"drop {key} or the preset"
                )
        return {**data, **AUG_PRESETS[preset]}


class LossConfig(Strict):
    name: Literal["cross_entropy", "bce", "hinge"] = Field(
        "cross_entropy",
        description="cross_entropy: one logit per class; bce and hinge: "
        "binary, one logit (hinge uses labels -1/+1).",
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross_entropy only.")

    @model_validator(mode="after")
    def _smoothing_for_cross_entropy(self) -> LossConfig:
        if self.label_smoothing > 0 and self.name != "cross_entropy":
            raise ValueError(f"label_smoothing is for cross_entropy, not {self.name}")
        return self


class ClassifyConfig(TrainConfig):
    """Image classification (and the XOR points) with one model, loss and data set each."""

    model: ClassifyModel = Field(default_factory=ClassifyModel)
    data: ClassifyData = Field(default_factory=ClassifyData)
    aug: AugConfig = Field(default_factory=AugConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(
        default_factory=lambda: OptimConfig(name="sgd", lr=0.01, momentum=0.9)
    )
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")

    @model_validator(mode="after")
    def _fits_together(self) -> ClassifyConfig:
        data, arch = self.data, self.model.arch
        shape = data.shape()
        problem = input_problem(arch, shape)
        if problem:
            fix = "" if len(shape) == 1 else "; set data.image_size / data.channels to match"
            raise ValueError(
                f"model.arch {arch!r} does not fit data {data.name!r} "
                f"({shape_text(shape)}): {problem}{fix}"
            )
        n_classes = N_CLASSES[data.name]
        if self.loss.name != "cross_entropy" and n_classes is not None and n_classes > 2:
            raise ValueError(
                f"loss.name {self.loss.name!r} is binary (one logit) but data {data.name!r} "
                f"has {n_classes} classes; use cross_entropy"
            )
        if self.aug.names and len(shape) == 1:
            raise ValueError(f"aug.names needs images; data {data.name!r} has feature vectors")
        no_val = data.val_fraction == 0 or data.retrain_full
        if no_val and data.has_test_split() is False:
            raise ValueError(
                f"nothing to evaluate on: data {data.name!r} has no test split and no "
                "validation split; set data.test_fraction or data.val_fraction"
            )
        return self
