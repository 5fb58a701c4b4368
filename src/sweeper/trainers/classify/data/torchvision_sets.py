"""MNIST and CIFAR-10 from torchvision's on-disk layout (downloaded only when asked)."""

from __future__ import annotations

import torch
from torchvision import datasets

from sweeper.errors import SweeperError
from sweeper.trainers.classify.data.source import Source

LAYOUT = {"mnist": "MNIST/raw/*-ubyte", "cifar10": "cifar-10-batches-py/"}


def read_torchvision(name: str, root: str, download: bool) -> Source:
    """MNIST (uint8 [N, 1, 28, 28]) or CIFAR-10 (uint8 [N, 3, 32, 32]) with its own test split.

    Raises:
        SweeperError: the files are not under root (or the download, when asked, failed).
    """
    cls = {"mnist": datasets.MNIST, "cifar10": datasets.CIFAR10}[name]
    try:
        train = cls(root, train=True, download=download)
        test = cls(root, train=False, download=download)
    except (RuntimeError, OSError) as exc:
        why = "download failed" if download else "not found"
        raise SweeperError(
            f"{name} {why} under data.root {root!r} (expected {root}/{LAYOUT[name]}): "
            f"copy torchvision's {name} files there, or set data.download: true on a machine "
            f"with network access ({type(exc).__name__})"
        ) from None
    return Source(
        _images(train.data),
        torch.as_tensor(train.targets),
        list(train.classes),
        _images(test.data),
        torch.as_tensor(test.targets),
    )


def _images(data: object) -> torch.Tensor:
    """uint8 (N, C, H, W) from MNIST's (N, H, W) tensor or CIFAR's (N, H, W, C) array."""
    images = torch.as_tensor(data)
    return images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()
