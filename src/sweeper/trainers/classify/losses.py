"""Training objectives: the loss, how many logits it needs, and how logits become labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sweeper.errors import SweeperError
from sweeper.trainers.classify.config import LossConfig


class CrossEntropy(nn.Module):
    """One logit per class; optional label smoothing."""

    def __init__(self, n_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.n_outputs = n_classes
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss of logits [N, C] against class indices [N] (smoothing: Szegedy et al.
        2016, "Rethinking the Inception Architecture")."""
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Class indices [N]: the largest logit."""
        return logits.argmax(1)


class BinaryCrossEntropy(nn.Module):
    """One logit, sigmoid + BCE: the positive class is label 1."""

    n_outputs = 1

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss of logits [N, 1] against labels [N] in {0, 1}."""
        return F.binary_cross_entropy_with_logits(logits.squeeze(1), labels.float())

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Labels [N]: 1 where the probability is above 0.5 (logit > 0)."""
        return (logits.squeeze(1) > 0).long()


class Hinge(nn.Module):
    """One score, mean max(0, 1 - t * score) with targets t = -1 / +1 for labels 0 / 1."""

    n_outputs = 1

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean hinge loss (the soft-margin SVM's) of scores [N, 1] against labels [N]."""
        targets = labels.float() * 2 - 1
        return F.relu(1 - targets * logits.squeeze(1)).mean()

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Labels [N]: 1 where the score is positive."""
        return (logits.squeeze(1) > 0).long()


Objective = CrossEntropy | BinaryCrossEntropy | Hinge


def make_objective(cfg: LossConfig, n_classes: int) -> Objective:
    """The configured loss for `n_classes` classes.

    Raises:
        SweeperError: a binary loss (bce, hinge) for other than two classes.
    """
    if cfg.name == "cross_entropy":
        return CrossEntropy(n_classes, cfg.label_smoothing)
    if n_classes != 2:
        raise SweeperError(
            f"loss.name {cfg.name!r} is binary (one logit) but the data has {n_classes} "
            "classes; use cross_entropy"
        )
    return BinaryCrossEntropy() if cfg.name == "bce" else Hinge()
