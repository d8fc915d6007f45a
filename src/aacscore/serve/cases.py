"""The cases of a results folder, known by id: ``results.csv`` rows and ``cases/<id>.json``.

A case id is the stem the batch gives a film's outputs (:func:`aacscore.batch.case_stem`: the
film's key made file-system safe and 8 hex digits of its name), so ``cases/<id>.json``,
``overlays/<id>.png`` and ``dicom/<id>_sr.dcm`` belong to it. Clients name cases by id only; an
id is looked up in the set read from ``results.csv``, never joined to a path as given.

The film itself is read again from where ``results.csv`` says it was scored from (a path or a
zip member), with the pixel spacing the batch imposed (the last run's settings in ``run.json``).
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aacscore.batch import case_stem, row_location
from aacscore.io import InputItem, Radiograph
from aacscore.outputs.case_json import read_case_json, result_from_document
from aacscore.outputs.results_csv import read_results
from aacscore.results import Result

log = logging.getLogger(__name__)

CASE_ID = re.compile(r"^[A-Za-z0-9._-]{1,60}_[0-9a-f]{8}$")
"""What a case id looks like (the batch's stems); anything else is refused before lookup."""
FILM_MAX_PX = 2048
"""Longest side of the film picture sent to the viewer."""
_CACHE_SIZE = 8


class CaseNotFound(KeyError):
    """No case of that id in the folder."""


class FolderError(ValueError):
    """A results folder that cannot be served; the message names the folder and the problem."""


@dataclass(frozen=True)
class Case:
    """One case: its id, its ``results.csv`` row and where its files lie."""

    id: str
    row: Mapping[str, str]
    out_dir: Path

    @property
    def file(self) -> str:
        return self.row["file"]

    @property
    def json_path(self) -> Path:
        return self.out_dir / "cases" / f"{self.id}.json"

    @property
    def overlay_path(self) -> Path:
        return self.out_dir / "overlays" / f"{self.id}.png"

    @property
    def sr_path(self) -> Path:
        return self.out_dir / "dicom" / f"{self.id}_sr.dcm"

    def document(self) -> dict[str, Any]:
        """The case JSON (:class:`aacscore.outputs.case_json.CaseDocumentError` if unusable)."""
        return read_case_json(self.json_path)

    def item(self) -> InputItem:
        """The film as an input to read again."""
        path, member = row_location(self.file)
        return InputItem(Path(path), member)


@dataclass(frozen=True)
class FilmPicture:
    """The film as an 8-bit PNG for the viewer; ``scale`` = picture pixels per film pixel."""

    png: bytes
    scale: float
    shape: tuple[int, int]


class CaseIndex:
    """The cases of ``out_dir`` (re-read when ``results.csv`` changes)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.results_csv = self.out_dir / "results.csv"
        if not self.out_dir.is_dir():
            raise FolderError(f"{self.out_dir}: no such results folder")
        if not self.results_csv.is_file():
            raise FolderError(
                f"{self.out_dir}: not an aacscore results folder (no results.csv); "
                "score films into it first with aacscore score FILMS -o OUT"
            )
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._cases: dict[str, Case] = {}
        self._films: OrderedDict[str, Radiograph] = OrderedDict()
        self._refresh()

    def _refresh(self) -> None:
        st = self.results_csv.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                rows = read_results(self.results_csv)
            except (OSError, UnicodeDecodeError) as e:
                raise FolderError(f"{self.results_csv}: cannot be read ({e})") from e
            if rows and "file" not in rows[0]:
                raise FolderError(f"{self.results_csv}: no file column")
            self._cases = {}
            for r in rows:
                cid = case_stem(r["file"])
                self._cases[cid] = Case(cid, r, self.out_dir)
            self._films.clear()
            self._stamp = stamp

    def cases(self) -> list[Case]:
        """Every case, in ``results.csv`` order."""
        self._refresh()
        return list(self._cases.values())

    def get(self, case_id: str) -> Case:
        """The case of an id.

        Raises:
            CaseNotFound: not an id, or no such case."""
        if not CASE_ID.match(case_id):
            raise CaseNotFound(case_id)
        self._refresh()
        case = self._cases.get(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        return case

    def spacing_mm(self) -> Any:
        """The pixel spacing the last batch imposed (None: the films' own)."""
        try:
            runs = json.loads((self.out_dir / "run.json").read_text(encoding="utf-8"))["runs"]
            return runs[-1]["settings"].get("spacing_mm")
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None

    def film(self, case: Case) -> Radiograph:
        """The case's film, read again (a few kept in memory).

        Raises:
            RadiographError: the film is gone or unreadable."""
        with self._lock:
            rad = self._films.get(case.id)
            if rad is not None:
                self._films.move_to_end(case.id)
                return rad
        rad = case.item().read(spacing_mm=self.spacing_mm())
        with self._lock:
            self._films[case.id] = rad
            while len(self._films) > _CACHE_SIZE:
                self._films.popitem(last=False)
        return rad

    def result(self, case: Case, rad: Radiograph | None = None) -> Result:
        """The case's result rebuilt from its JSON and the re-read film (stage results too)."""
        doc = case.document()
        if rad is None and "reader" in doc:
            rad = self.film(case)
        return result_from_document(doc, rad)


def film_picture(rad: Radiograph, max_px: int = FILM_MAX_PX) -> FilmPicture:
    """The film as an 8-bit greyscale PNG at most ``max_px`` on its longest side, the full
    range of its pixels mapped to 0-255 (window/level is done in the browser)."""
    pixels = np.asarray(rad.pixels, dtype=np.float32)
    lo, hi = float(np.min(pixels)), float(np.max(pixels))
    grey = np.zeros(pixels.shape, np.uint8)
    if hi > lo:
        grey = np.round((pixels - lo) / (hi - lo) * 255.0).astype(np.uint8)
    img = Image.fromarray(grey)
    rows, cols = pixels.shape
    scale = min(1.0, max_px / max(rows, cols))
    if scale < 1.0:
        size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
        scale = size[0] / cols
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return FilmPicture(buf.getvalue(), scale, (rows, cols))


def png_bytes(rgb: np.ndarray[Any, Any]) -> bytes:
    """An RGB array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


WORKLIST_COLUMNS: tuple[str, ...] = (
    "status",
    "error_code",
    "group",
    "aac24",
    "aac24_int",
    "low_confidence",
    "quality",
    "qc_flags",
)
"""The ``results.csv`` columns the worklist shows (those present)."""


def case_summary(case: Case, review: Mapping[str, Any] | None) -> dict[str, Any]:
    """One worklist row: the case id, the film's base name, its columns and its review."""
    row = case.row
    return {
        "id": case.id,
        "name": Path(case.file.rsplit(":", 1)[-1]).name,
        **{c: row.get(c, "") for c in WORKLIST_COLUMNS if c in row},
        "reviewed": review is not None,
        "decision": None if review is None else review["decision"],
        "review_aac24": None if review is None else review["aac24"],
        "reviewer": None if review is None else review["reviewer"],
    }
