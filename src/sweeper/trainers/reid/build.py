"""The re-id trial's model, data and loss, assembled once for training and for the landscape."""

from __future__ import annotations

import torch

from sweeper.trainers.common.build import Built
from sweeper.trainers.common.seed import seed_everything
from sweeper.trainers.reid.config import ReidConfig
from sweeper.trainers.reid.data.loaders import Loaders, build_loaders
from sweeper.trainers.reid.losses import ReidCriterion
from sweeper.trainers.reid.models import ReidNet, build_model

ReidBuilt = Built[ReidConfig, ReidNet, Loaders, ReidCriterion]


def build(config: ReidConfig, device: torch.device) -> ReidBuilt:
    """Seed, then the VeRi-776 loaders (the stand-in generated first when asked), the network
    with one output per training identity, and xent + batch-hard triplet.

    Raises:
        SweeperError: the data is missing or does not fit the batch (see `build_loaders`),
            or model.pretrained is not a weights file that fits the backbone.
    """
    generator = seed_everything(config.seed, config.deterministic)
    loaders = build_loaders(config, generator, device)
    model = build_model(config, loaders.num_classes).to(device)
    return Built(config, device, model, loaders, ReidCriterion(config.loss))
