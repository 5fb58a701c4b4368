"""Registered trainers, resolved lazily so that listing or validating never imports torch."""

from __future__ import annotations

import fnmatch
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sweeper.errors import NotFoundError
from sweeper.trainers.common.config import TrainConfig
from sweeper.trainers.logger import Logger

TrainFn = Callable[[Any, Logger], dict[str, float]]


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class TrainerInfo:
    """A registered trainer: `module:attribute` references, imported only when a `*_fn` or
    `config_model` method asks (ImportError or AttributeError for a reference that is wrong)."""

    name: str
    summary: str
    config_ref: str
    """`module:Class` of the config model; that module must not import torch."""
    train_ref: str
    """`module:function` implementing `train(config, logger) -> metrics`."""
    metric: str
    """The metric a spec for this trainer usually optimises (a default for `train`)."""
    metrics: tuple[str, ...] = ()
    """Every metric it logs per epoch or returns (`*` patterns allowed): a spec's metric must be
    one of them. Empty: not checked (a plugin that does not say)."""
    build_ref: str | None = None
    """`module:function` `build(config, device) -> Built` (`sweeper.trainers.common.build`):
    the trial's model, data and loss, assembled in the one place that train() uses too, so
    analysis rebuilds exactly what was trained. None: not exposed (a plugin that does not)."""
    rebuild_ref: str | None = None
    """`module:function` turning a `build(config, device)` into what analysis scores, without
    training: `fn(built, split: "train" | "val", limit: int | None) -> Rebuilt`
    (`sweeper.trainers.common.rebuild`). None, or no build_ref: analysis (`sweeper landscape`)
    cannot rebuild its runs."""
    augment_ref: str | None = None
    """`module:function` showing what the config's training augmentations do:
    `fn(config, n, seed) -> list[(original, augmented)]`, HWC uint8 arrays of n training images
    (masks overlaid where there are masks). None: `sweeper augment` has nothing to show."""
    augment_names: str | None = None
    """Dotted config path of the augmentation names list (`sweeper augment --names` replaces it;
    a `preset` field beside it, if any, takes a preset's name)."""
    check_ref: str | None = None
    """`module:function` `check(config) -> None`, torch-free and cheap: raises
    `sweeper.trainers.common.check.MissingInput` naming the config field when a trial of this
    config could not find its data or weights (`sweeper validate` and `launch` call it before
    any trial starts). None: nothing to check."""
    torch: bool = True
    """Whether train() uses torch. An agent imports torch once (2-3 s), before it forks its
    trials, only for a trainer that does; one that does not (a wrapper around another
    framework) starts its first trial without that wait."""

    def logs(self, metric: str) -> bool:
        """Whether `metric` is one the trainer logs (always, when it does not say)."""
        return not self.metrics or any(fnmatch.fnmatchcase(metric, m) for m in self.metrics)

    def config_model(self) -> type[TrainConfig]:
        return _resolve(self.config_ref)

    def train_fn(self) -> TrainFn:
        return _resolve(self.train_ref)

    def build_fn(self) -> Callable[[Any, Any], Any] | None:
        return _resolve(self.build_ref) if self.build_ref else None

    def rebuild_fn(self) -> Callable[..., Any] | None:
        return _resolve(self.rebuild_ref) if self.rebuild_ref else None

    def augment_fn(self) -> Callable[..., Any] | None:
        return _resolve(self.augment_ref) if self.augment_ref else None

    def check_fn(self) -> Callable[[Any], None] | None:
        return _resolve(self.check_ref) if self.check_ref else None


TRAINERS: dict[str, TrainerInfo] = {
    info.name: info
    for info in (
        TrainerInfo(
            name="xor",
            summary="noisy-XOR MLP (depth 0-3, width 1-3, tanh): the quickstart study",
            config_ref="sweeper.trainers.classify.config:XorConfig",
            train_ref="sweeper.trainers.classify.xor:train",
            build_ref="sweeper.trainers.classify.xor:build",
            rebuild_ref="sweeper.trainers.classify.rebuild:rebuild_xor",
            metric="val_acc",
            metrics=("val_acc", "val_loss", "best_val_acc", "train_loss", "lr"),
        ),
        TrainerInfo(
            name="classify",
            summary="image classification: MLP/CNN, LeNet, LeNet-5, AlexNet, torchvision nets",
            config_ref="sweeper.trainers.classify.config:ClassifyConfig",
            train_ref="sweeper.trainers.classify.train:train",
            build_ref="sweeper.trainers.classify.build:build",
            rebuild_ref="sweeper.trainers.classify.rebuild:rebuild",
            augment_ref="sweeper.trainers.classify.data.preview:preview",
            check_ref="sweeper.trainers.classify.data.check:check",
            augment_names="aug.names",
            metric="val_acc",
            metrics=(
                "val_acc",
                "val_loss",
                "best_val_acc",
                "train_loss",
                "test_acc",
                "test_loss",
                "n_params",
                "lr",
                "val_acc_class_*",
            ),
        ),
        TrainerInfo(
            name="reid",
            summary="vehicle re-identification (VeRi-776): xent+triplet, CMC/mAP",
            config_ref="sweeper.trainers.reid.config:ReidConfig",
            train_ref="sweeper.trainers.reid.train:train",
            build_ref="sweeper.trainers.reid.build:build",
            rebuild_ref="sweeper.trainers.reid.rebuild:rebuild",
            augment_ref="sweeper.trainers.reid.data.preview:preview",
            check_ref="sweeper.trainers.reid.data.check:check",
            augment_names="data.augment",
            metric="mAP",
            metrics=(
                "mAP",
                "rank1",
                "rank5",
                "rank10",
                "best_mAP",
                "best_epoch",
                "epochs_done",
                "train_loss",
                "xent_loss",
                "triplet_loss",
                "train_acc",
                "epoch_time",
                "train_time_s",
                "images_per_s",
                "lr",
            ),
        ),
        TrainerInfo(
            name="segment",
            summary="chest X-ray lung segmentation: smp U-Net/U-Net++/FPN, Dice/BCE, Dice/IoU",
            config_ref="sweeper.trainers.segment.config:SegmentConfig",
            train_ref="sweeper.trainers.segment.train:train",
            build_ref="sweeper.trainers.segment.build:build",
            rebuild_ref="sweeper.trainers.segment.rebuild:rebuild",
            augment_ref="sweeper.trainers.segment.data.preview:preview",
            check_ref="sweeper.trainers.segment.data.check:check",
            augment_names="aug.names",
            metric="val_dice",
            metrics=(
                "val_dice",
                "val_iou",
                "val_dice_per_image",
                "val_iou_per_image",
                "val_pixel_acc",
                "val_loss",
                "train_loss",
                "best_val_dice",
                "best_epoch",
                "epochs_done",
                "n_params",
                "n_train",
                "n_val",
                "n_test",
                "n_skipped",
                "test_*",
                "train/batch_loss",
                "lr",
            ),
        ),
    )
}

GENERATORS: dict[str, str] = {
    "shapes": "sweeper.trainers.classify.data.synthetic:write_shapes",
    "veri": "sweeper.trainers.reid.data.synthetic:write_veri",
    "xray": "sweeper.trainers.segment.data.synthetic:write_xray",
}
"""Small on-disk data sets in the real layouts: `fn(out: Path, seed: int = 0) -> Path`."""


def generator(name: str) -> Any:
    """The writer of a named data set, `fn(out, seed=0) -> Path`; raises NotFoundError."""
    if name not in GENERATORS:
        raise NotFoundError(f"unknown data set generator {name!r} (known: {', '.join(GENERATORS)})")
    return _resolve(GENERATORS[name])


def register(info: TrainerInfo) -> None:
    """Add a trainer: call it from a module named in SWEEPER_PLUGINS (comma-separated)."""
    TRAINERS[info.name] = info


def _load_plugins() -> None:
    for module in filter(None, os.environ.get("SWEEPER_PLUGINS", "").split(",")):
        importlib.import_module(module.strip())


def get_trainer(name: str) -> TrainerInfo:
    """The trainer registered as `name`, loading SWEEPER_PLUGINS first if it is not built in.

    Raises:
        NotFoundError: no trainer of that name.
    """
    if name not in TRAINERS:
        _load_plugins()
    try:
        return TRAINERS[name]
    except KeyError:
        known = ", ".join(sorted(TRAINERS))
        raise NotFoundError(f"unknown trainer {name!r} (known: {known})") from None
