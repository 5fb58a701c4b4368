"""smp segmentation models by name: one grayscale channel in, one lung logit per pixel out."""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
from torch import nn

from sweeper.errors import SweeperError
from sweeper.trainers.common.checkpoint import read_state_dict
from sweeper.trainers.segment.config import SegmentModel

ARCHS = {"unet": smp.Unet, "unetplusplus": smp.UnetPlusPlus, "fpn": smp.FPN}


def build_model(cfg: SegmentModel) -> nn.Module:
    """The smp model: grayscale images [N, 1, H, W] to one logit per pixel [N, 1, H, W].

    Raises:
        SweeperError: smp cannot build the encoder on one channel, or the encoder weights
            are missing, refused or do not fit.
    """
    kwargs: dict = {"encoder_depth": cfg.encoder_depth}
    if cfg.arch == "fpn":  # smp's FPN upsamples 4x whatever the depth: full size needs this
        kwargs["upsampling"] = 2 ** (cfg.encoder_depth - 3)
    else:
        kwargs["decoder_channels"] = cfg.decoder()
    try:
        model = ARCHS[cfg.arch](
            encoder_name=cfg.encoder_name, encoder_weights=None, in_channels=1, classes=1, **kwargs
        )
    except (KeyError, ValueError, RuntimeError) as exc:  # an unknown tu- name, a mit_b* on 1 ch
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweeperError(
            f"model.encoder_name {cfg.encoder_name!r} ({cfg.arch}): {reason}"
        ) from None
    if cfg.encoder_weights is not None:
        load_encoder_weights(model.encoder, Path(cfg.encoder_weights))
    return model


def load_encoder_weights(encoder: nn.Module, path: Path) -> None:
    """Load a local encoder state dict; RGB first-layer kernels are summed to one channel.

    Raises:
        SweeperError: the file is missing or refused, or does not fit the encoder.
    """
    if not path.is_file():
        raise SweeperError(f"model.encoder_weights {str(path)!r} is not a file")
    state = read_state_dict(path, "model.encoder_weights")
    own = encoder.state_dict()
    for name, tensor in state.items():
        target = own.get(name)
        if target is not None and tensor.ndim == 4 and tensor.shape[1] == 3 != target.shape[1]:
            state[name] = tensor.sum(1, keepdim=True)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        raise SweeperError(
            f"model.encoder_weights {str(path)!r} does not fit the encoder: "
            f"{str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc}"
        ) from None


def parameter_count(model: nn.Module) -> int:
    """Every parameter's elements, trainable or frozen."""
    return sum(p.numel() for p in model.parameters())
