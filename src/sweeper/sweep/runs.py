"""A run as the engine and the summaries see it, whichever backend it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunView:
    """What the engine and the summaries need to know about one run."""

    name: str
    state: str
    params: dict[str, Any]
    """Flat W&B form: {dotted path: {"value": v}}."""
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
