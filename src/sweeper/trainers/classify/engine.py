"""Training and evaluation passes over stored tensors, batched by index."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sweeper.trainers.classify.data.build import Split
from sweeper.trainers.classify.losses import Objective
from sweeper.trainers.common.precision import Precision


class Engine:
    """A model, its objective and optimizer; mixed precision on CUDA when asked."""

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        amp: bool,
    ) -> None:
        self.model, self.objective, self.optimizer, self.device = (
            model,
            objective,
            optimizer,
            device,
        )
        self.precision = Precision(device, amp)

    def train_epoch(
        self,
        split: Split,
        batch_size: int,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> float:
        """One shuffled pass (torch's global RNG: checkpoints restore it); the mean loss."""
        self.model.train()
        order = torch.randperm(len(split)).to(self.device)
        losses, sizes = [], []
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            if len(index) == 1 and start > 0:
                break  # a lone trailing image: batch norm cannot train on one
            x, y = split.x[index], split.y[index]
            if augment is not None:
                x = augment(x)
            loss = self.precision.step(self.model, self.objective, x, y, self.optimizer)
            losses.append(loss.detach())
            sizes.append(len(index))
        weights = torch.tensor(sizes, device=self.device, dtype=torch.float32)
        return (torch.stack(losses).float() @ weights / weights.sum()).item()

    @torch.no_grad()
    def predict(self, split: Split, batch_size: int) -> tuple[float, torch.Tensor]:
        """Mean loss and predicted labels over a split, never augmented."""
        self.model.eval()
        total, predicted = torch.zeros((), device=self.device), []
        for start in range(0, len(split), batch_size):
            x, y = split.x[start : start + batch_size], split.y[start : start + batch_size]
            with self.precision.autocast():
                logits = self.model(x).float()
            total += self.objective(logits, y) * len(y)
            predicted.append(self.objective.predict(logits))
        return (total / len(split)).item(), torch.cat(predicted)
