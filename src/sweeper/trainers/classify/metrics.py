"""Accuracy overall and per class, from predicted and true labels."""

from __future__ import annotations

import torch


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction in [0, 1] of predicted labels [N] equal to the true labels [N]."""
    return (predicted == labels).float().mean().item()


def per_class_accuracy(
    predicted: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> dict[int, float]:
    """Accuracy (recall) in [0, 1] of each class present in `labels` [N]; absent classes are
    left out."""
    correct = torch.bincount(labels[predicted == labels], minlength=n_classes)
    total = torch.bincount(labels, minlength=n_classes)
    return {c: (correct[c] / total[c]).item() for c in range(n_classes) if total[c] > 0}
