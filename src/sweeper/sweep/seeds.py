"""A sweep's seed: drawn once when the sweep is made, and the seed of each suggestion from it.

Issue 23 §4 (wandb/wandb #5582): the same spec and seed suggest the same configurations. A
sweep keeps one seed (`SweepRecord.seed`); its k-th run (its `seq`, from 1) is suggested under
`seed_for(seed, k)`, a function of the two numbers alone, so whichever agent asks for run k
gets the same parameters. W&B's `sweeps` engine takes no seed: `sweeper.sweep.engine` hands
it generators seeded so for each call; a scheduler engine takes `seed_for(seed, 0)` or one
per suggestion.
"""

from __future__ import annotations

import secrets

import numpy as np

SEED_BOUND = 2**31
"""A seed drawn for a sweep (`draw_seed`) is below this: short to read and to type back."""


def draw_seed() -> int:
    """A new sweep's seed when its spec and `--seed` give none: drawn once and stored with the
    sweep, so that any sweep can be replayed (`launch --seed N`)."""
    return secrets.randbelow(SEED_BOUND)


def seed_for(seed: int, k: int) -> int:
    """The seed of a sweep's k-th suggestion: a function of (seed, k) alone, through numpy's
    `SeedSequence` (the same on every platform and numpy version since 1.17).

    Runs count from 1 (a run's `seq`); k = 0 is left for an engine seeded once as a whole (a
    scheduler engine's sampler).

    Args:
        seed: The sweep's seed, >= 0.
        k: Which suggestion, >= 0.

    Returns:
        A seed in [0, 2**32): what `random.seed`, `numpy.random.seed` and Optuna's samplers take.

    Raises:
        ValueError: `seed` or `k` is negative.
    """
    if seed < 0 or k < 0:
        raise ValueError(f"seed and k must be >= 0, not {seed} and {k}")
    return int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint32)[0])
