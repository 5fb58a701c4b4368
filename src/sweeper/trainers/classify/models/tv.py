"""torchvision classification models: random init, or weights from a local file (never fetched)."""

from __future__ import annotations

from pathlib import Path

from torch import nn
from torchvision import models

from sweeper.errors import SweeperError
from sweeper.trainers.common.checkpoint import read_state_dict

NO_AUX = ("googlenet", "inception_v3")
"""Models whose auxiliary heads would change the output type in training mode."""


def torchvision_model(name: str, n_outputs: int, weights: str | None) -> nn.Module:
    """torchvision's `name` with an `n_outputs` head, randomly initialised, then given the
    matching tensors of a local `weights` file when there is one.

    Raises:
        SweeperError: the weights file is missing, refused, or has no matching tensor.
    """
    extra = {"aux_logits": False, "init_weights": True} if name in NO_AUX else {}
    model = models.get_model(name, weights=None, num_classes=n_outputs, **extra)
    if weights is not None:
        load_matching(model, Path(weights))
    return model


def load_matching(model: nn.Module, path: Path) -> None:
    """Load every tensor whose name and shape match; the classifier head of another class
    count is left at its fresh init (fine-tuning from ImageNet weights).

    Raises:
        SweeperError: the file is missing or refused, or has no tensor matching the model.
    """
    if not path.is_file():
        raise SweeperError(f"model.weights {str(path)!r} is not a file")
    state = read_state_dict(path, "model.weights")
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    own = model.state_dict()
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise SweeperError(f"model.weights {str(path)!r} has no tensor matching this model")
    model.load_state_dict(matching, strict=False)
