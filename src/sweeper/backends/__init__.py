"""Where sweeps live: the embedded SQLite store (default) or W&B."""

from sweeper.backends.local import Claim, LocalBackend, SweepRecord

__all__ = ["Claim", "LocalBackend", "SweepRecord"]
