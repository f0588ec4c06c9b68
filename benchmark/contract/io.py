"""Atomic file output: every result is written to a temporary file in the same folder, then renamed.

`os.replace` within one folder is atomic, so a reader (or an interrupted run) sees either the old
file or the new one, never a half-written one. Per-sample flags travel in JSON as packed bits
(numpy's `packbits`, big-endian within a byte, then base64).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.contract.errors import DataError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, creating missing parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    """Strict JSON (NaN and infinity are errors), indent 2, sorted keys, trailing newline."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path} is not valid JSON ({error}); delete it and re-run the stage that writes it"
        ) from error


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` with the same all-or-nothing guarantee."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def pack_bits(flags: np.ndarray) -> str:
    """Boolean flags as base64 text of their packed bits (8 per byte)."""
    return base64.b64encode(np.packbits(np.asarray(flags, dtype=bool).ravel()).tobytes()).decode("ascii")


def unpack_bits(text: str, count: int) -> np.ndarray:
    """The first `count` flags of `pack_bits` text, as a bool array."""
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8), count=count).astype(bool)
