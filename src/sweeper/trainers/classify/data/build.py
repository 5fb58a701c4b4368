"""Read a data set once into normalised tensors on the training device, split train/val/test."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sweeper.errors import SweeperError
from sweeper.trainers.classify.config import ClassifyData
from sweeper.trainers.classify.data.source import Source
from sweeper.trainers.classify.data.split import stratified_split

LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 weights: RGB -> grayscale."""


@dataclass
class Split:
    """Inputs and labels of one split, on the training device."""

    x: torch.Tensor
    """[N, C, H, W] float32 images, or [N, F] feature vectors, normalised."""
    y: torch.Tensor
    """[N] int64 class indices."""

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Data:
    """Every split of a data set, normalised by the training split's statistics."""

    train: Split
    val: Split | None
    test: Split | None
    classes: list[str]
    shape: tuple[int, ...]
    mean: torch.Tensor
    """Per-channel mean and std of the training images (broadcastable over a batch)."""
    std: torch.Tensor

    def scored(self) -> Split:
        """The split epochs are scored on: validation, or test when there is none
        (retrain_full, val_fraction 0).

        Raises:
            SweeperError: there is neither.
        """
        scored = self.val if self.val is not None else self.test
        if scored is None:
            raise SweeperError(
                "nothing to evaluate on: no validation split and no test split; "
                "set data.val_fraction or data.test_fraction"
            )
        return scored


def read(cfg: ClassifyData) -> Source:
    """The configured data set as read from disk (the folder stand-in generated first when
    data.synthetic asks for it).

    Raises:
        SweeperError: its files are missing or not in the expected layout.
    """
    # Each reader is imported on use: they pull in sklearn, PIL or torchvision.datasets.
    if cfg.name == "digits":
        from sweeper.trainers.classify.data.digits import read_digits

        return read_digits()
    if cfg.name == "xor":
        from sweeper.trainers.classify.data.xor import read_xor

        return read_xor(cfg.n_samples, cfg.noise, cfg.split_seed)
    if cfg.name == "folder":
        from sweeper.trainers.classify.data.folder import read_folder
        from sweeper.trainers.classify.data.synthetic import write_shapes
        from sweeper.trainers.common.generate import ensure_generated

        if cfg.synthetic:
            ensure_generated(cfg.root, write_shapes)
        return read_folder(cfg.root, cfg.channels or 3, cfg.image_size)
    from sweeper.trainers.classify.data.torchvision_sets import read_torchvision

    return read_torchvision(cfg.name, cfg.root, cfg.download)


def to_float(x: torch.Tensor, cfg: ClassifyData) -> torch.Tensor:
    """[0, 1] float32 [N, C, H, W] in the configured channels and size (grayscale by the ITU-R
    601 luma weights; resized bilinearly with antialiasing); [N, F] feature vectors as they
    are."""
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 2:
        return x
    if cfg.channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif cfg.channels == 1 and x.shape[1] == 3:
        x = torch.einsum("nchw,c->nhw", x, torch.tensor(LUMA)).unsqueeze(1)
    if cfg.image_size and tuple(x.shape[-2:]) != tuple(cfg.image_size):
        x = F.interpolate(
            x, size=tuple(cfg.image_size), mode="bilinear", antialias=True, align_corners=False
        )
    return x.contiguous()


def load_data(cfg: ClassifyData, device: torch.device) -> Data:
    """Read once, split off test (when the set has none) and validation with the seeded
    stratified split, standardise every split by the training split's per-channel mean and
    std, and move it all to `device`.

    Raises:
        SweeperError: the data is missing, or a split cannot be made.
    """
    source = read(cfg)
    x, y = to_float(source.x_train, cfg), source.y_train
    test = (
        Split(to_float(source.x_test, cfg), source.y_test)
        if source.x_test is not None and source.y_test is not None
        else None
    )
    if test is None and cfg.test_fraction > 0:
        kept, held = stratified_split(y, cfg.test_fraction, cfg.split_seed, "the test split")
        x, y, test = x[kept], y[kept], Split(x[held], y[held])
    val = None
    if cfg.val_fraction > 0 and not cfg.retrain_full:
        kept, held = stratified_split(y, cfg.val_fraction, cfg.split_seed, "validation")
        x, y, val = x[kept], y[kept], Split(x[held], y[held])
    dims = [d for d in range(x.ndim) if d != 1]
    view = [1, -1] + [1] * (x.ndim - 2)
    mean = x.mean(dim=dims).view(view)
    std = x.std(dim=dims).clamp_min(1e-6).view(view)

    def prepared(split: Split) -> Split:
        # In place: every split here is a fresh tensor, and CIFAR-size copies add up.
        return Split(split.x.sub_(mean).div_(std).to(device), split.y.long().to(device))

    return Data(
        train=prepared(Split(x, y)),
        val=prepared(val) if val is not None else None,
        test=prepared(test) if test is not None else None,
        classes=source.classes,
        shape=tuple(x.shape[1:]),
        mean=mean.to(device),
        std=std.to(device),
    )
