import json
import math
from enum import Enum
from pathlib import Path

import numpy as np

from aacscore._files import atomic_write_text, json_safe, sha256_file, write_json


class _Colour(str, Enum):
    RED = "red"


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "a.bin"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_atomic_write_leaves_no_temporary(tmp_path: Path) -> None:
    p = atomic_write_text(tmp_path / "sub" / "x.txt", "hello")
    assert p.read_text() == "hello"
    atomic_write_text(p, "again")
    assert p.read_text() == "again"
    assert sorted(f.name for f in p.parent.iterdir()) == ["x.txt"]


def test_json_safe_converts_numpy_enums_and_nonfinite(tmp_path: Path) -> None:
    obj = {
        "a": np.float32(1.5),
        "b": np.arange(3),
        "c": (np.int64(2), math.nan, math.inf),
        "d": _Colour.RED,
        "e": Path("/x/y"),
        "f": np.bool_(True),
        1: 0.123456,
    }
    out = json_safe(obj, ndigits=3)
    assert out == {
        "a": 1.5,
        "b": [0, 1, 2],
        "c": [2, None, None],
        "d": "red",
        "e": "/x/y",
        "f": True,
        "1": 0.123,
    }
    assert type(out["d"]) is str
    p = write_json(tmp_path / "o.json", obj)
    assert json.loads(p.read_text())["c"] == [2, None, None]


def test_atomic_savez_round_trips_and_leaves_no_temporary(tmp_path: Path) -> None:
    from aacscore._files import atomic_savez

    p = atomic_savez(tmp_path / "c" / "cache.npz", a=np.arange(4), b=np.asarray("x"))
    with np.load(p) as z:
        assert z["a"].tolist() == [0, 1, 2, 3] and str(z["b"]) == "x"
    assert [f.name for f in p.parent.iterdir()] == ["cache.npz"]
