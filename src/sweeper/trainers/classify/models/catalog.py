"""Which model names exist and what input each accepts. Torch-free: used at spec time."""

from __future__ import annotations

BUILTIN = ("mlp", "cnn", "lenet", "lenet5", "alexnet", "two_branch")

TORCHVISION = frozenset(
    [
        "alexnet",
        "convnext_base",
        "convnext_large",
        "convnext_small",
        "convnext_tiny",
        "densenet121",
        "densenet161",
        "densenet169",
        "densenet201",
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_b3",
        "efficientnet_b4",
        "efficientnet_b5",
        "efficientnet_b6",
        "efficientnet_b7",
        "efficientnet_v2_l",
        "efficientnet_v2_m",
        "efficientnet_v2_s",
        "googlenet",
        "inception_v3",
        "maxvit_t",
        "mnasnet0_5",
        "mnasnet0_75",
        "mnasnet1_0",
        "mnasnet1_3",
        "mobilenet_v2",
        "mobilenet_v3_large",
        "mobilenet_v3_small",
        "regnet_x_16gf",
        "regnet_x_1_6gf",
        "regnet_x_32gf",
        "regnet_x_3_2gf",
        "regnet_x_400mf",
        "regnet_x_800mf",
        "regnet_x_8gf",
        "regnet_y_128gf",
        "regnet_y_16gf",
        "regnet_y_1_6gf",
        "regnet_y_32gf",
        "regnet_y_3_2gf",
        "regnet_y_400mf",
        "regnet_y_800mf",
        "regnet_y_8gf",
        "resnet101",
        "resnet152",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "resnext50_32x4d",
        "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_5",
        "shufflenet_v2_x2_0",
        "squeezenet1_0",
        "squeezenet1_1",
        "swin_b",
        "swin_s",
        "swin_t",
        "swin_v2_b",
        "swin_v2_s",
        "swin_v2_t",
        "vgg11",
        "vgg11_bn",
        "vgg13",
        "vgg13_bn",
        "vgg16",
        "vgg16_bn",
        "vgg19",
        "vgg19_bn",
        "vit_b_16",
        "vit_b_32",
        "vit_h_14",
        "vit_l_16",
        "vit_l_32",
        "wide_resnet101_2",
        "wide_resnet50_2",
    ]
)
"""torchvision's classification models (`torchvision.models.list_models`), checked by a test."""

TV_PREFIX = "tv."
"""`tv.alexnet` names torchvision's model where a built-in one has the same name."""

MIN_SIZE = {"cnn": 10, "lenet": 12, "alexnet": 8, "two_branch": 4}
"""Smallest height/width each conv model's pooling stack can take."""

Shape = tuple[int, ...]


def torchvision_name(arch: str) -> str | None:
    """The torchvision model `arch` refers to, or None for a built-in model."""
    if arch in BUILTIN:
        return None
    name = arch.removeprefix(TV_PREFIX)
    return name if name in TORCHVISION else None


def unknown_arch_message(arch: str) -> str | None:
    """What to say about an architecture name sweeper does not know; None when it knows it."""
    if arch in BUILTIN or torchvision_name(arch):
        return None
    return (
        f"unknown model {arch!r}: use one of {', '.join(BUILTIN)}, or a torchvision "
        f"classification model such as resnet18 ({TV_PREFIX}alexnet for torchvision's AlexNet)"
    )


def input_problem(arch: str, shape: tuple[int | None, ...]) -> str | None:
    """Why `arch` cannot take inputs of `shape` (C, H, W) or (features,); None if it can.

    Unknown sizes (None) pass: a folder set's image size is known only once it is read.
    """
    if len(shape) == 1:
        return None if arch == "mlp" else f"{arch} needs images; this data set has feature vectors"
    channels, height, width = shape
    sizes = [s for s in (height, width) if s is not None]
    if arch == "lenet5" and any(
        s not in (None, t) for s, t in zip(shape, (3, 32, 32), strict=True)
    ):
        return "lenet5 takes 3x32x32 images"
    if arch in MIN_SIZE and any(s < MIN_SIZE[arch] for s in sizes):
        return f"{arch} needs images of at least {MIN_SIZE[arch]}x{MIN_SIZE[arch]} pixels"
    if torchvision_name(arch) and channels != 3:
        return f"torchvision model {arch} takes 3-channel images"
    return None
