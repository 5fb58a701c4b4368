"""Dice (F1) and IoU, over all pixels (micro) and per image, plus pixel accuracy (smp.metrics).

Dice = 2 TP / (2 TP + FP + FN) (Dice 1945, Sørensen 1948) and IoU = TP / (TP + FP + FN)
(Jaccard 1912), over the lung pixels; both are fractions in [0, 1].
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch


class MaskStats:
    """Per-image true/false positive/negative pixel counts, gathered batch by batch."""

    def __init__(self) -> None:
        self.counts: list[torch.Tensor] = []

    def update(self, logits: torch.Tensor, masks: torch.Tensor) -> None:
        """Count a batch: logits [B, 1, H, W], masks [B, 1, H, W] of 0/1."""
        predicted = (logits > 0).long()  # probability > 0.5
        self.counts.append(torch.stack(smp.metrics.get_stats(predicted, masks.long(), "binary")))

    def compute(self) -> dict[str, float]:
        """dice, iou and pixel_acc over every pixel seen; dice_per_image and iou_per_image
        averaged over images."""
        tp, fp, fn, tn = torch.cat(self.counts, dim=1)
        f1, iou = smp.metrics.f1_score, smp.metrics.iou_score
        return {
            "dice": f1(tp, fp, fn, tn, reduction="micro").item(),
            "iou": iou(tp, fp, fn, tn, reduction="micro").item(),
            "dice_per_image": f1(tp, fp, fn, tn, reduction="micro-imagewise").item(),
            "iou_per_image": iou(tp, fp, fn, tn, reduction="micro-imagewise").item(),
            "pixel_acc": smp.metrics.accuracy(tp, fp, fn, tn, reduction="micro").item(),
        }
