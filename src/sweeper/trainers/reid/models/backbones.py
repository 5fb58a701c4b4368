"""Backbones by name: torchvision builders, randomly initialised unless given local weights."""

from __future__ import annotations

from pathlib import Path

from torch import nn
from torchvision import models
from torchvision.ops import SqueezeExcitation

from sweeper.errors import SweeperError
from sweeper.trainers.common.checkpoint import read_state_dict

RESNETS = {18: models.resnet18, 34: models.resnet34, 50: models.resnet50}


def load_pretrained(net: nn.Module, path: str) -> int:
    """Copy every tensor whose name and shape match; return how many. Never downloads.

    Raises:
        SweeperError: the file is missing or refused, or no tensor in it matches.
    """
    if not Path(path).is_file():
        raise SweeperError(f"model.pretrained {path} is not a file (weights are never downloaded)")
    state = read_state_dict(Path(path), "model.pretrained")
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
    own = net.state_dict()
    matched = {
        name.removeprefix("module."): tensor
        for name, tensor in state.items()
        if own.get(name.removeprefix("module.")) is not None
        and own[name.removeprefix("module.")].shape == tensor.shape
    }
    if not matched:
        raise SweeperError(f"model.pretrained {path}: no tensor matches the backbone's names")
    net.load_state_dict(matched, strict=False)
    return len(matched)


def _add_squeeze_excite(net: models.ResNet, reduction: int = 16) -> None:
    """Gate each residual branch by its channel statistics, before the identity is added."""
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in stage:
            name = "bn3" if hasattr(block, "bn3") else "bn2"
            bn = getattr(block, name)
            channels = bn.num_features
            setattr(
                block, name, nn.Sequential(bn, SqueezeExcitation(channels, channels // reduction))
            )


def _last_stride_one(net: models.ResNet) -> None:
    """Keep layer4 at the resolution of layer3: finer feature maps for the embedding."""
    for module in net.layer4[0].modules():
        if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
            module.stride = (1, 1)


def _pooled(features: nn.Module) -> nn.Sequential:
    return nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def build_backbone(
    arch: str, image_size: tuple[int, int], pretrained: str | None = None
) -> tuple[nn.Module, int]:
    """(module mapping images [N, 3, H, W] to feature vectors [N, feature size], feature
    size) for a config arch name.

    Raises:
        SweeperError: `pretrained` is missing, refused, or does not match the backbone.
        ValueError: an arch name it does not know (configs are checked before).
    """
    base = arch.removesuffix("_fc512")

    def load(net: nn.Module) -> None:
        if pretrained is not None:
            load_pretrained(net, pretrained)

    if base == "mobilenet_v3_small":
        net = models.mobilenet_v3_small(weights=None)
        load(net)
        return _pooled(net.features), net.classifier[0].in_features
    if base == "vgg16":
        net = models.vgg16(weights=None)
        load(net)
        return _pooled(net.features), 512
    if base == "vit_b_16":
        net = models.vit_b_16(weights=None, image_size=image_size[0])
        load(net)
        net.heads = nn.Identity()  # the class token is the feature
        return net, net.hidden_dim
    if base.removeprefix("se_") in {f"resnet{depth}" for depth in RESNETS}:
        net = RESNETS[int(base.removeprefix("se_").removeprefix("resnet"))](weights=None)
        load(net)  # plain torchvision names: ImageNet weights fit, the SE gates stay random
        if base.startswith("se_"):
            _add_squeeze_excite(net)
        if arch.endswith("_fc512"):
            _last_stride_one(net)
        trunk = nn.Sequential(
            net.conv1,
            net.bn1,
            net.relu,
            net.maxpool,
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        return _pooled(trunk), net.fc.in_features
    raise ValueError(f"unknown backbone {arch!r}")
