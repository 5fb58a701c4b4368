"""Train-time augmentations on whole batches of normalised tensors, drawn per image.

They run on the batch where it lives (GPU or CPU), so the stored data set is never re-decoded.
Zero padding in normalised space is the data set's mean colour.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sweeper.trainers.classify.config import AugConfig


class Augment:
    """The configured augmentations in order: [B, C, H, W] normalised float32 in, the same
    shape out, each image drawn apart (torch's global RNG, which checkpoints restore)."""

    def __init__(self, cfg: AugConfig, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.cfg, self.mean, self.std = cfg, mean, std
        self.steps = {
            "hflip": self.hflip,
            "vflip": self.vflip,
            "rotate": self.rotate,
            "translate": self.translate,
            "crop": self.crop,
            "jitter": self.jitter,
            "contrast": self.contrast,
            "noise": self.noise,
            "erase": self.erase,
        }

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.cfg.names:
            x = self.steps[name](x)
        return x

    def _chance(self, x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
        return (torch.rand(len(x), device=x.device) < p).view(-1, 1, 1, 1)

    def _uniform(self, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(len(x), device=x.device)

    def hflip(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror left-right with probability 0.5."""
        return torch.where(self._chance(x), x.flip(-1), x)

    def vflip(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror top-bottom with probability 0.5."""
        return torch.where(self._chance(x), x.flip(-2), x)

    def _affine(self, x: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Rotate by `angle` (radians) and shift by `shift` (pixels, (B, 2) as x, y)."""
        cos, sin = torch.cos(angle), torch.sin(angle)
        height, width = x.shape[-2:]
        theta = torch.stack(
            [
                torch.stack([cos, -sin, -2 * shift[:, 0] / width], 1),
                torch.stack([sin, cos, -2 * shift[:, 1] / height], 1),
            ],
            1,
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate by a uniform angle within +-cfg.degrees (bilinear)."""
        limit = math.radians(self.cfg.degrees)
        return self._affine(
            x, self._uniform(x, -limit, limit), torch.zeros(len(x), 2, device=x.device)
        )

    def translate(self, x: torch.Tensor) -> torch.Tensor:
        """Shift by whole pixels, up to +-cfg.translate in x and in y."""
        t = self.cfg.translate
        shift = torch.randint(-t, t + 1, (len(x), 2), device=x.device).float()
        return self._affine(x, torch.zeros(len(x), device=x.device), shift)

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """Random crop of the original size from the zero-padded image."""
        p = self.cfg.crop_padding
        batch, _, height, width = x.shape
        padded = F.pad(x, (p, p, p, p))
        top = torch.randint(0, 2 * p + 1, (batch, 1), device=x.device)
        left = torch.randint(0, 2 * p + 1, (batch, 1), device=x.device)
        rows = (top + torch.arange(height, device=x.device)).view(batch, 1, height, 1)
        cols = (left + torch.arange(width, device=x.device)).view(batch, 1, 1, width)
        index = torch.arange(batch, device=x.device).view(batch, 1, 1, 1)
        channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
        return padded[index, channel, rows, cols]

    def jitter(self, x: torch.Tensor) -> torch.Tensor:
        """Brightness, contrast and (colour images) saturation, each by a factor in 1 +- s."""
        s = self.cfg.jitter
        pixels = x * self.std + self.mean
        factors = [self._uniform(x, 1 - s, 1 + s).view(-1, 1, 1, 1) for _ in range(3)]
        pixels = _around_mean(pixels * factors[0], factors[1])
        if x.shape[1] == 3:
            gray = pixels.mean(dim=1, keepdim=True)
            pixels = (pixels - gray) * factors[2] + gray
        return (pixels.clamp(0, 1) - self.mean) / self.std

    def contrast(self, x: torch.Tensor) -> torch.Tensor:
        """Stretch or flatten each image around its own mean pixel by a factor in 1 +- s."""
        s = self.cfg.contrast
        factor = self._uniform(x, 1 - s, 1 + s).view(-1, 1, 1, 1)
        pixels = _around_mean(x * self.std + self.mean, factor)
        return (pixels.clamp(0, 1) - self.mean) / self.std

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """Add Gaussian noise of standard deviation cfg.noise_std in [0, 1] pixel units."""
        return x + torch.randn_like(x) * self.cfg.noise_std / self.std

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        """Blank one random rectangle (2-33% of the area, aspect 0.3-3.3) per chosen image."""
        batch, _, height, width = x.shape
        area = self._uniform(x, 0.02, 0.33) * height * width
        aspect = torch.exp(self._uniform(x, math.log(0.3), math.log(3.3)))
        h = (area * aspect).sqrt().clamp(1, height).floor()
        w = (area / aspect).sqrt().clamp(1, width).floor()
        top = (torch.rand(batch, device=x.device) * (height - h + 1)).floor()
        left = (torch.rand(batch, device=x.device) * (width - w + 1)).floor()
        rows = torch.arange(height, device=x.device).view(1, height, 1)
        cols = torch.arange(width, device=x.device).view(1, 1, width)
        inside = (
            (rows >= top.view(-1, 1, 1))
            & (rows < (top + h).view(-1, 1, 1))
            & (cols >= left.view(-1, 1, 1))
            & (cols < (left + w).view(-1, 1, 1))
        )
        mask = inside.unsqueeze(1) & self._chance(x, self.cfg.erase_prob)
        return x.masked_fill(mask, 0.0)


def _around_mean(pixels: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Contrast change: each image's deviations from its mean (over all channels) scaled."""
    mean = pixels.mean(dim=(1, 2, 3), keepdim=True)
    return (pixels - mean) * factor + mean
