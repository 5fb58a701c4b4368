"""The albumentations training pipeline by name, applied jointly to image and mask."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # it calls the network otherwise

import albumentations as A

from sweeper.trainers.segment.config import SegmentAug


def build_augment(cfg: SegmentAug, seed: int) -> A.Compose | None:
    """A seeded pipeline over uint8 grayscale images and 0/1 masks; None when nothing is named."""
    if not cfg.names:
        return None
    p = cfg.p
    steps = {
        "hflip": lambda: A.HorizontalFlip(p=p),
        "affine": lambda: A.Affine(
            translate_percent=(-cfg.shift, cfg.shift),
            scale=(1 - cfg.scale, 1 + cfg.scale),
            rotate=(-cfg.rotate, cfg.rotate),
            p=p,
        ),
        "brightness_contrast": lambda: A.RandomBrightnessContrast(
            brightness_limit=cfg.brightness, contrast_limit=cfg.contrast, p=p
        ),
        "clahe": lambda: A.CLAHE(p=p),
        "noise": lambda: A.GaussNoise(std_range=(0.0, cfg.noise_std), p=p),
        "elastic": lambda: A.ElasticTransform(
            alpha=cfg.elastic_alpha, sigma=cfg.elastic_sigma, p=p
        ),
    }
    return A.Compose([steps[name]() for name in cfg.names], seed=seed)
