"""Identity cross-entropy with label smoothing, and the batch-hard triplet loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sweeper.trainers.reid.config import ReidLoss


def batch_hard_triplet(features: torch.Tensor, pids: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over anchors of relu(d(hardest positive) - d(hardest negative) + margin): the
    batch-hard triplet loss of Hermans, Beyer and Leibe 2017, "In Defense of the Triplet Loss
    for Person Re-Identification".

    Euclidean distances between features [B, D] of identities pids [B]; needs every anchor to
    have a positive and a negative in the batch, which the P x K identity sampler guarantees.
    Returns a scalar.
    """
    features = features.float()
    dist = torch.cdist(features, features).clamp_min(1e-12)
    same = pids[:, None] == pids[None, :]
    hardest_positive = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    hardest_negative = dist.masked_fill(same, float("inf")).amin(dim=1)
    return F.relu(hardest_positive - hardest_negative + margin).mean()


class ReidCriterion(nn.Module):
    """lambda_xent * smoothed cross-entropy + lambda_htri * batch-hard triplet (label
    smoothing: Szegedy et al. 2016, "Rethinking the Inception Architecture")."""

    def __init__(self, config: ReidLoss) -> None:
        super().__init__()
        self.config = config
        self.xent = nn.CrossEntropyLoss(label_smoothing=config.label_smooth)

    def forward(
        self, logits: torch.Tensor, features: torch.Tensor, pids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, xent, triplet) scalars for identity logits [B, C], features [B, D] and
        training identities pids [B]; a switched-off term is zero and costs nothing."""
        cfg = self.config
        zero = logits.new_zeros((), dtype=torch.float32)
        xent = self.xent(logits.float(), pids) if cfg.lambda_xent > 0 else zero
        htri = batch_hard_triplet(features, pids, cfg.margin) if cfg.lambda_htri > 0 else zero
        return cfg.lambda_xent * xent + cfg.lambda_htri * htri, xent, htri
