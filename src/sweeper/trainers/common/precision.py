"""Mixed precision on CUDA, one training step at a time; a plain step everywhere else."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch


class Precision:
    """bfloat16 autocast where the GPU has it, else float16 with loss scaling against
    underflow; off on CPU, where the plain step skips autocast and scaler bookkeeping."""

    def __init__(self, device: torch.device, amp: bool) -> None:
        self.device = device
        self.amp = amp and device.type == "cuda"
        self.dtype = (
            torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.dtype == torch.float16)

    def autocast(self) -> AbstractContextManager[None]:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.amp)

    def step(
        self,
        model: torch.nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        inputs: torch.Tensor,
        targets: torch.Tensor,
        optimizer: torch.optim.Optimizer,
    ) -> torch.Tensor:
        """Forward, backward and update on one batch; returns the (undetached) loss."""
        optimizer.zero_grad(set_to_none=True)
        if not self.amp:
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            return loss
        with self.autocast():
            loss = loss_fn(model(inputs), targets)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        return loss
