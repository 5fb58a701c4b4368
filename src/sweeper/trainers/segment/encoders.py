"""smp's encoder names, listed here so a spec is checked without importing torch.

tests/test_segment_models.py keeps this list equal to smp's own; `tu-<timm model>` names
(timm's universal encoders) are checked when the model is built.
"""

from __future__ import annotations

import difflib

ENCODERS: tuple[str, ...] = (
    *("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
    *(f"resnext101_32x{w}d" for w in (4, 8, 16, 32, 48)),
    "resnext50_32x4d",
    *("dpn68", "dpn68b", "dpn92", "dpn98", "dpn107", "dpn131"),
    *("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"),
    *("senet154", "se_resnet50", "se_resnet101", "se_resnet152"),
    *("se_resnext50_32x4d", "se_resnext101_32x4d"),
    *("densenet121", "densenet169", "densenet201", "densenet161"),
    *("inceptionresnetv2", "inceptionv4", "mobilenet_v2", "xception"),
    *(f"efficientnet-b{i}" for i in range(8)),
    *(f"timm-efficientnet-b{i}" for i in range(9)),
    "timm-efficientnet-l2",
    *(f"timm-tf_efficientnet_lite{i}" for i in range(5)),
    *("timm-skresnet18", "timm-skresnet34", "timm-skresnext50_32x4d"),
    *(f"mit_b{i}" for i in range(6)),
    *(f"mobileone_s{i}" for i in range(5)),
)
TIMM_PREFIX = "tu-"


def unknown_encoder_message(name: str) -> str | None:
    """None for a name smp knows (or a tu- timm name); else a one-line reason with suggestions."""
    if name in ENCODERS or (name.startswith(TIMM_PREFIX) and len(name) > len(TIMM_PREFIX)):
        return None
    close = difflib.get_close_matches(name, ENCODERS, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"unknown encoder {name!r}: {hint}smp knows {len(ENCODERS)} encoders "
        "(segmentation_models_pytorch.encoders.get_encoder_names()) or tu-<timm model>"
    )
