"""The re-id network: backbone, optional 512-d embedding, identity classifier."""

from __future__ import annotations

import torch
from torch import nn

from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.models.backbones import build_backbone

EMBED_DIM = 512


class ReidNet(nn.Module):
    """Training: (identity logits, features). Evaluation: features only, for ranking."""

    def __init__(self, backbone: nn.Module, feat_dim: int, num_classes: int, fc512: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.embed: nn.Module = nn.Identity()
        if fc512:
            self.embed = nn.Sequential(
                nn.Linear(feat_dim, EMBED_DIM), nn.BatchNorm1d(EMBED_DIM), nn.ReLU(inplace=True)
            )
            feat_dim = EMBED_DIM
        self.feat_dim = feat_dim
        self.classifier = nn.Linear(feat_dim, num_classes)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Images [N, 3, H, W] to (logits [N, identities], features [N, feat_dim]) in
        training mode, features alone in eval mode."""
        features = self.embed(self.backbone(images))
        if not self.training:
            return features
        return self.classifier(features), features


def build_model(config: ReidConfig, num_classes: int) -> ReidNet:
    """The configured backbone with one classifier output per training identity.

    Raises:
        SweeperError: model.pretrained is missing, refused, or does not match the backbone.
    """
    arch = config.model.arch
    backbone, feat_dim = build_backbone(arch, config.data.image_size, config.model.pretrained)
    return ReidNet(backbone, feat_dim, num_classes, fc512=arch.endswith("_fc512"))
