"""Mixed precision on CUDA, one training step at a time; a plain step everywhere else."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import torch

LossT = TypeVar("LossT", torch.Tensor, tuple[torch.Tensor, ...])


class Precision:
    """bfloat16 autocast where the GPU has it, else float16 with loss scaling against
    underflow; off on CPU, where the plain step skips autocast and scaler bookkeeping.

    `amp` is a trainer config's switch; off, or off CUDA, every step is plain float32.
    The recipe is PyTorch's (https://pytorch.org/docs/stable/amp.html).
    """

    def __init__(self, device: torch.device, amp: bool) -> None:
        self.device = device
        self.amp = amp and device.type == "cuda"
        self.dtype = (
            torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.dtype == torch.float16)

    def autocast(self) -> AbstractContextManager[None]:
        """Autocast to the chosen dtype for a forward pass; a no-op when mixed precision is
        off."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.amp)

    def step(
        self,
        model: torch.nn.Module,
        loss_fn: Callable[[Any, torch.Tensor], LossT],
        inputs: torch.Tensor,
        targets: torch.Tensor,
        optimizer: torch.optim.Optimizer,
    ) -> LossT:
        """Forward, backward and update on one batch.

        Args:
            model: called on `inputs` (e.g. [N, 3, H, W] float32 images) inside autocast.
            loss_fn: `(model(inputs), targets) -> loss`, a scalar tensor, or a tuple whose first
                item is the scalar loss minimised and the rest whatever the caller reports
                (loss terms, logits).
            optimizer: stepped once, through the gradient scaler when float16 needs one.

        Returns:
            What `loss_fn` returned, undetached.
        """
        optimizer.zero_grad(set_to_none=True)
        if not self.amp:
            out = loss_fn(model(inputs), targets)
            (out[0] if isinstance(out, tuple) else out).backward()
            optimizer.step()
            return out
        with self.autocast():
            out = loss_fn(model(inputs), targets)
        self.scaler.scale(out[0] if isinstance(out, tuple) else out).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        return out
