"""``find_inputs(..., missing_ok=True)``: a missing path is kept as an item (its reading fails),
so that a batch can record it as a failed row and go on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aacscore.io import InputItem, RadiographError, find_inputs


def test_missing_paths_given_or_listed_become_items_in_order(tmp_path: Path) -> None:
    film = tmp_path / "a.png"
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(film)
    listing = tmp_path / "films.txt"
    listing.write_text("gone/listed.dcm\na.png\n")
    inputs = [str(tmp_path / "missing.dcm"), str(film), str(listing)]
    with pytest.raises(RadiographError, match=r"missing\.dcm: file not found"):
        find_inputs(inputs)
    found = find_inputs(inputs, missing_ok=True)
    assert [it.path for it in found.items] == [
        tmp_path / "missing.dcm",
        film,
        tmp_path / "gone" / "listed.dcm",  # a.png again: not doubled
    ]
    missing = found.items[0]
    assert missing == InputItem(tmp_path / "missing.dcm")
    with pytest.raises(RadiographError, match="file not found"):
        missing.read()
