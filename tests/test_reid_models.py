"""Backbones by name, the training/evaluation outputs, local weights, and the losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import models
from torchvision.ops import SqueezeExcitation

from sweeper.errors import SweeperError
from sweeper.trainers.reid.config import ARCHS, CNN_MIN_SIZE, MIN_SIZE, ReidConfig, ReidLoss
from sweeper.trainers.reid.losses import ReidCriterion, batch_hard_triplet
from sweeper.trainers.reid.models import build_backbone, build_model


@pytest.mark.slow  # trains every backbone a step: 1-4 s each
@pytest.mark.parametrize("arch", ARCHS)
def test_every_backbone_trains_and_evaluates_at_its_smallest_size(arch: str) -> None:
    side = MIN_SIZE.get(arch, CNN_MIN_SIZE)
    config = ReidConfig(model={"arch": arch}, data={"image_size": [side, side]})
    model = build_model(config, num_classes=5)
    images = torch.randn(2, 3, side, side)
    logits, features = model(images)
    assert logits.shape == (2, 5) and features.shape == (2, model.feat_dim)
    if arch.endswith("_fc512"):
        assert model.feat_dim == 512
    model.eval()
    with torch.no_grad():
        assert model(images).shape == (2, model.feat_dim)


def test_fc512_has_last_stride_one_and_se_gates() -> None:
    plain, _ = build_backbone("resnet50", (64, 64))
    fine, _ = build_backbone("se_resnet50_fc512", (64, 64))
    trunk = lambda net: net[0]  # noqa: E731 - the Sequential before pooling
    x = torch.randn(1, 3, 64, 64)
    assert trunk(plain).eval()(x).shape[-2:] == (2, 2)
    assert trunk(fine).eval()(x).shape[-2:] == (4, 4)
    assert sum(isinstance(m, SqueezeExcitation) for m in fine.modules()) == 16  # 3+4+6+3 blocks
    assert not any(isinstance(m, SqueezeExcitation) for m in plain.modules())


def test_pretrained_only_from_a_local_file(tmp_path: Path) -> None:
    source = models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    backbone, _ = build_backbone("se_resnet18", (32, 32), pretrained=str(path))
    assert torch.equal(backbone[0][0].weight, source.conv1.weight)
    with pytest.raises(SweeperError, match="is not a file"):
        build_backbone("resnet18", (32, 32), pretrained=str(tmp_path / "missing.pth"))
    torch.save({"unrelated": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(SweeperError, match="no tensor matches"):
        build_backbone("resnet18", (32, 32), pretrained=str(tmp_path / "other.pth"))


def test_batch_hard_triplet_by_hand() -> None:
    features = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    pids = torch.tensor([0, 0, 1, 1])
    # hardest positive / negative: a0 1 / 3, a1 1 / 2, a2 0.5 / 2, a3 0.5 / 2.5
    expected = (0 + max(0, 1 - 2 + 1.5) + 0 + 0) / 4
    assert batch_hard_triplet(features, pids, margin=1.5).item() == pytest.approx(expected)


def test_criterion_weights_and_switches_terms_off() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    features, pids = torch.tensor([[0.0], [2.0]]), torch.tensor([0, 1])
    log_p = logits.log_softmax(1)
    smoothed = -(0.9 * log_p[[0, 1], pids] + 0.1 * log_p.mean(1)).mean()
    total, xent, htri = ReidCriterion(ReidLoss(lambda_xent=2, lambda_htri=0))(
        logits, features, pids
    )
    assert xent.item() == pytest.approx(smoothed.item(), rel=1e-5)
    assert htri.item() == 0 and total.item() == pytest.approx(2 * smoothed.item(), rel=1e-5)
    total, xent, htri = ReidCriterion(ReidLoss(lambda_xent=0, margin=0.5))(logits, features, pids)
    assert xent.item() == 0 and total.item() == pytest.approx(0.0)  # negatives 2 apart > margin
