"""Build a model by name for a given input shape and output width, and check it fits."""

from __future__ import annotations

from typing import TypedDict

import torch
from torch import nn

from sweeper.errors import SweeperError
from sweeper.trainers.classify.config import ClassifyModel
from sweeper.trainers.classify.models.alexnet import SmallAlexNet
from sweeper.trainers.classify.models.catalog import input_problem, torchvision_name
from sweeper.trainers.classify.models.cnn import CNN
from sweeper.trainers.classify.models.lenet import LeNet, LeNet5
from sweeper.trainers.classify.models.mlp import MLP
from sweeper.trainers.classify.models.two_branch import TwoBranch


class _Conv(TypedDict):
    """What the convolutional nets (CNN, LeNet, SmallAlexNet, TwoBranch) share."""

    n_base: int
    dropout: float
    batch_norm: bool


def parameter_count(model: nn.Module) -> int:
    """Every parameter's elements, trainable or frozen (buffers are not parameters)."""
    return sum(p.numel() for p in model.parameters())


def build_model(cfg: ClassifyModel, shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """A model for inputs of `shape` (C, H, W) or (features,), giving `n_outputs` logits.

    Raises:
        SweeperError: the architecture does not fit the input shape or the output width, or
            its weights file is missing or does not match.
    """
    problem = input_problem(cfg.arch, shape)
    if problem:
        raise SweeperError(f"model.arch {cfg.arch!r} does not fit the data: {problem}")
    conv: _Conv = {"n_base": cfg.n_base, "dropout": cfg.dropout, "batch_norm": cfg.batch_norm}
    if cfg.arch == "mlp":
        hidden = cfg.hidden if cfg.hidden is not None else [cfg.width] * cfg.depth
        model: nn.Module = MLP(shape, hidden, n_outputs, cfg.activation, cfg.dropout)
    elif cfg.arch == "cnn":
        model = CNN(shape, n_outputs, **conv)
    elif cfg.arch == "lenet":
        model = LeNet(shape, n_outputs, **conv)
    elif cfg.arch == "lenet5":
        model = LeNet5(n_outputs)
    elif cfg.arch == "alexnet":
        model = SmallAlexNet(shape, n_outputs, **conv)
    elif cfg.arch == "two_branch":
        model = TwoBranch(shape, n_outputs, **conv)
    else:  # torchvision.models is imported only when one of its models is asked for
        from sweeper.trainers.classify.models.tv import torchvision_model

        model = torchvision_model(torchvision_name(cfg.arch) or cfg.arch, n_outputs, cfg.weights)
    probe(model, cfg.arch, shape, n_outputs)
    return model


@torch.no_grad()
def probe(model: nn.Module, arch: str, shape: tuple[int, ...], n_outputs: int) -> None:
    """Run two blank inputs through, so a misfit fails here in one line, not mid-epoch.

    Raises:
        SweeperError: the model cannot take the input, or its output is not [2, n_outputs].
    """
    was_training = model.training
    model.eval()
    try:
        out = model(torch.zeros(2, *shape))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        size = "x".join(map(str, shape))
        raise SweeperError(f"model.arch {arch!r} cannot take {size} input: {first}") from None
    finally:
        model.train(was_training)
    if tuple(out.shape) != (2, n_outputs):
        raise SweeperError(
            f"model.arch {arch!r} gives outputs {tuple(out.shape)[1:]}, expected ({n_outputs},)"
        )
