"""The classify trial's model, data and loss, assembled once for training and for the
landscape."""

from __future__ import annotations

import torch
from torch import nn

from sweeper.trainers.classify.config import ClassifyConfig
from sweeper.trainers.classify.data.build import Data, load_data
from sweeper.trainers.classify.losses import Objective, make_objective
from sweeper.trainers.classify.models.build import build_model
from sweeper.trainers.common.build import Built
from sweeper.trainers.common.seed import seed_everything

ClassifyBuilt = Built[ClassifyConfig, nn.Module, Data, Objective]


def build(config: ClassifyConfig, device: torch.device) -> ClassifyBuilt:
    """Seed, then read the data set once into normalised tensors on `device` (images
    [N, C, H, W] float32, feature vectors [N, F], labels [N] int64), the objective and a model
    with as many outputs as it needs.

    Raises:
        SweeperError: the data is missing or cannot be split as configured, a binary loss
            meets more than two classes, or the model does not fit the input.
    """
    seed_everything(config.seed, config.deterministic)
    data = load_data(config.data, device)
    objective = make_objective(config.loss, len(data.classes))
    model = build_model(config.model, data.shape, objective.n_outputs).to(device)
    return Built(config, device, model, data, objective)
