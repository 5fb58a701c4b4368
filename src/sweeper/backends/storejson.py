"""JSON as the store writes it: every float survives, NaN and infinities included.

Python's json writes NaN and inf as the bare words `NaN` and `Infinity`, which are not JSON:
SQLite's JSON functions refuse them ("malformed JSON", https://sqlite.org/json1.html: JSON5
input only from 3.42, and even there NaN reads back as null). So a non-finite float is written
as the object {"$float": "nan" | "inf" | "-inf"}, which every JSON reader accepts, and read
back as the float. Values a program logs are numbers, strings and bools, never such an object.
"""

from __future__ import annotations

import json
import math
from typing import Any

MARK = "$float"


def _encodable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {MARK: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {k: _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


def _decoded(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and isinstance(obj.get(MARK), str):
        return float(obj[MARK])
    return obj


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` that SQLite's JSON functions accept for any float."""
    return json.dumps(_encodable(value), allow_nan=False, **kwargs)


_DECODER = json.JSONDecoder(object_hook=_decoded)
"""Made once: `json.loads(..., object_hook=...)` builds a decoder on every call (a claim reads
two documents for each of a sweep's runs)."""


def loads(text: str | bytes) -> Any:
    """`json.loads` that gives back the floats `dumps` encoded."""
    if isinstance(text, bytes):
        text = text.decode()
    if MARK not in text:  # the common case: nothing to turn back, so no hook per object
        return json.loads(text)
    return _DECODER.decode(text)


def picked(value: Any) -> Any:
    """One value SQLite's json_extract picked: an encoded float comes back as its JSON text."""
    if isinstance(value, str) and value.startswith('{"' + MARK):
        return loads(value)
    return value
