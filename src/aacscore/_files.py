"""Small file helpers shared by every part of aacscore: hashing, atomic writes, JSON values."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees a half-written file. Parent folders are created."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_savez(path: str | Path, **arrays: Any) -> Path:
    """``numpy.savez`` (uncompressed) to ``path`` through a temporary file and a rename, streamed
    to disk (large training caches are never held twice in memory)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def json_safe(obj: Any, *, ndigits: int | None = None) -> Any:
    """A JSON-ready copy of ``obj``: numpy scalars and arrays to Python values, tuples to lists,
    paths to strings, enum members to their values, non-finite floats to None; floats rounded
    to ``ndigits`` when given."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v, ndigits=ndigits) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist(), ndigits=ndigits)
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, ndigits=ndigits) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, Enum):
        return json_safe(obj.value, ndigits=ndigits)
    if isinstance(obj, str):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if not math.isfinite(f):
            return None
        return round(f, ndigits) if ndigits is not None else f
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``json_safe(obj)`` atomically."""
    return atomic_write_text(path, json.dumps(json_safe(obj), indent=indent) + "\n")
