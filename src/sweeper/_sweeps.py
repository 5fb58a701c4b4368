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
_hashes: dict[tuple[type, str], str] = {}
_SCALARS = (str, int, float, bool, type(None))


def _memo_yaml_hash(value: Any) -> str:
    # Keyed on type and exact text, which tell 0 from 0.0, 1 from True and -0.0 from 0.0, as
    # YAML does; repr is exact for scalars and five times cheaper than JSON.
    text = (
        repr(value) if type(value) in _SCALARS else json.dumps(value, sort_keys=True, default=repr)
    )
    key = (type(value), text)
    if key not in _hashes:
        _hashes[key] = _yaml_hash(value)
    return _hashes[key]


sweeps.grid_search.yaml_hash = _memo_yaml_hash

__all__ = ["sweeps"]
