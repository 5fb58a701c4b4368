"""Device choice: CUDA when present (the agent narrows it with CUDA_VISIBLE_DEVICES), else CPU."""

from __future__ import annotations

import torch


def select_device(name: str = "auto") -> torch.device:
    """The config's device: "auto" is CUDA when present, else CPU.

    Raises:
        RuntimeError: CUDA asked for by name where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but CUDA is not available here")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A human-readable device name, recorded with each run for reproducibility."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"
