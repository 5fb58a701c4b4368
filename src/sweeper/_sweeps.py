"""W&B's `sweeps` engine, imported once without its pydantic-v1 deprecation noise.

The grid search hashes every value of every run with a YAML dump on each call (0.1 ms each:
30 ms a claim at 200 runs, seconds at 10,000). The hash depends on the value alone, so it is
memoised here; the engine's logic is untouched.
"""

import json
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sweeps.grid_search
    import sweeps.params  # the engine's nesting delimiter

    import sweeps

_yaml_hash = sweeps.grid_search.yaml_hash
_hashes: dict[tuple[str, str], str] = {}


def _memo_yaml_hash(value: Any) -> str:
    # Keyed on type and exact JSON, which tell 0 from 0.0 and 1 from True, as YAML does.
    key = (type(value).__name__, json.dumps(value, sort_keys=True, default=repr))
    if key not in _hashes:
        _hashes[key] = _yaml_hash(value)
    return _hashes[key]


sweeps.grid_search.yaml_hash = _memo_yaml_hash

__all__ = ["sweeps"]
