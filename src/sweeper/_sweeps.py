"""W&B's `sweeps` engine, imported once without its pydantic-v1 deprecation noise."""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sweeps.params  # the engine's nesting delimiter

    import sweeps

__all__ = ["sweeps"]
