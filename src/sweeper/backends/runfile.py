"""Read a wandb offline run file (`run-<id>.wandb`), also while wandb is still writing it.

wandb 0.31 keeps an offline run's config, history and summary only in this log and ships no
reader for it. The format is LevelDB's log: a 7-byte header (`:W&B`, magic 0xBEE1, version),
then 32 KiB blocks of chunks, each `crc32 | length | type` and `length` bytes; a record is one
FULL chunk or FIRST, MIDDLE..., LAST. The crc is zlib's crc32 of the type byte and the data.
Each record is a `wandb.proto.wandb_internal_pb2.Record`.

A file being written may end in a partial chunk or an unfinished FIRST/MIDDLE run: reading
stops before it and resumes there on the next `poll`.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class RunFileError(ValueError):
    """Not a wandb run log, or a damaged one."""


def _scan(data: bytes, base: int) -> Iterator[tuple[bytes, int]]:
    """(record bytes, file offset just past it) for each complete record in `data`, the file's
    bytes from offset `base` (a record boundary) on."""
    pos, pending = base, b""
    while True:
        left = BLOCK - pos % BLOCK
        if left < CHUNK.size:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        if pos + CHUNK.size > base + len(data):
            return
        crc, length, kind = CHUNK.unpack_from(data, pos - base)
        if kind == 0:  # zero fill to the end of the block
            pos += left
            continue
        end = pos + CHUNK.size + length
        if end > base + len(data):
            return  # still being written
        chunk = data[pos - base + CHUNK.size : end - base]
        if zlib.crc32(bytes([kind]) + chunk) != crc or kind not in (FULL, FIRST, MIDDLE, LAST):
            raise RunFileError(f"damaged chunk at offset {pos}")
        pos = end
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            yield pending, pos


def _check_header(data: bytes, path: Path) -> None:
    ident, magic, _version = HEADER.unpack_from(data) if len(data) >= HEADER.size else (b"", 0, 0)
    if (ident, magic) != (b":W&B", 0xBEE1):
        raise RunFileError(f"{path}: not a wandb run file")


def _value(item: Any) -> tuple[list[str], Any]:
    """One config/summary/history item: its key path and its decoded value."""
    return list(item.nested_key) or [item.key], json.loads(item.value_json)


def _assign(target: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        node = target.get(key)
        if not isinstance(node, dict):
            node = target[key] = {}
        target = node
    target[path[-1]] = value


def _remove(target: dict[str, Any], path: list[str]) -> None:
    for key in path[:-1]:
        target = target.get(key, {})
        if not isinstance(target, dict):
            return
    target.pop(path[-1], None)


@dataclass
class RunLog:
    """What a run file has said so far."""

    run_id: str | None = None
    """Set once the run record is read: the program called wandb.init."""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    """One dict per logged step, keys joined with `.` when nested, `_step` included."""
    exit_code: int | None = None
    """Set when the program finished the run (wandb.finish, or at interpreter exit)."""


class RunFileReader:
    """Reads a run file incrementally: `poll()` applies the records written since last time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log = RunLog()
        self._offset = 0

    def poll(self) -> list[dict[str, Any]]:
        """Apply the new complete records; return the history rows among them."""
        from wandb.proto import wandb_internal_pb2

        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return []
        if self._offset == 0:
            if len(data) < HEADER.size:
                return []
            _check_header(data, self.path)
            self._offset, data = HEADER.size, data[HEADER.size :]
        rows = []
        for raw, end in _scan(data, self._offset):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(raw)
            row = self._apply(record)
            if row is not None:
                rows.append(row)
            self._offset = end
        return rows

    def _apply(self, record: Any) -> dict[str, Any] | None:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            self.log.run_id = record.run.run_id
            for item in record.run.config.update:
                _assign(self.log.config, *_value(item))
        elif kind == "config":
            for item in record.config.update:
                _assign(self.log.config, *_value(item))
            for item in record.config.remove:
                _remove(self.log.config, list(item.nested_key) or [item.key])
        elif kind == "summary":
            for item in record.summary.update:
                _assign(self.log.summary, *_value(item))
            for item in record.summary.remove:
                _remove(self.log.summary, list(item.nested_key) or [item.key])
        elif kind == "history":
            row = {}
            for item in record.history.item:
                path, value = _value(item)
                row[".".join(path)] = value
            self.log.history.append(row)
            return row
        elif kind == "exit":
            self.log.exit_code = record.exit.exit_code
        return None


def read_run(path: Path) -> RunLog:
    """A whole run file (a finished run, or what a running one has written so far)."""
    reader = RunFileReader(path)
    reader.poll()
    return reader.log


def records(path: Path) -> Iterator[Any]:
    """The protobuf `Record`s of a run file, in the order wandb wrote them."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    _check_header(data, path)
    for raw, _end in _scan(data[HEADER.size :], HEADER.size):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        yield record
