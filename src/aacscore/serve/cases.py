"""The cases of a results folder, known by id: ``results.csv`` rows and ``cases/<stem>.json``.

A case id is opaque and stable: ``c`` and 16 hex digits of the SHA-256 of the film's name as
``results.csv`` gives it (:func:`case_id`), so that URLs, logs and exported file names never
carry the film's base name (patient names are often in file names); the name is shown only in
the API fields and pages, behind the token. The batch's stem (:func:`aacscore.batch.case_stem`)
names the case's files: ``cases/<stem>.json``, ``overlays/<stem>.png``, ``dicom/<stem>_sr.dcm``.
Clients name cases by id only; an id is looked up in the set read from ``results.csv``, never
joined to a path.

The film itself is read again from where ``results.csv`` says it was scored from (a path or a
zip member), with the pixel spacing the batch imposed (the last run's settings in ``run.json``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from aacscore.batch import case_stem, row_location
from aacscore.io import InputItem, Radiograph
from aacscore.outputs.case_json import read_case_json, result_from_document
from aacscore.outputs.results_csv import read_results
from aacscore.results import Result

_T = TypeVar("_T")

log = logging.getLogger(__name__)

CASE_ID = re.compile(r"^c[0-9a-f]{16}$")
"""What a case id looks like (:func:`case_id`); anything else is refused before lookup."""
FILM_MAX_PX = 2048
"""Longest side of the film picture sent to the viewer."""
_CACHE_SIZE = 8


def case_id(name: str) -> str:
    """The opaque id of the case of a ``results.csv`` ``file`` value."""
    return "c" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


class CaseNotFound(KeyError):
    """No case of that id in the folder."""


class FolderError(ValueError):
    """A results folder that cannot be served; the message names the folder and the problem."""


@dataclass(frozen=True)
class Case:
    """One case: its opaque id, the batch's stem of its files, its ``results.csv`` row and the
    folder."""

    id: str
    stem: str
    row: Mapping[str, str]
    out_dir: Path

    @property
    def file(self) -> str:
        return self.row["file"]

    @property
    def json_path(self) -> Path:
        return self.out_dir / "cases" / f"{self.stem}.json"

    @property
    def overlay_path(self) -> Path:
        return self.out_dir / "overlays" / f"{self.stem}.png"

    @property
    def sr_path(self) -> Path:
        return self.out_dir / "dicom" / f"{self.stem}_sr.dcm"

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
        self._pictures: OrderedDict[str, FilmValues] = OrderedDict()
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
                cid = case_id(r["file"])
                self._cases[cid] = Case(cid, case_stem(r["file"]), r, self.out_dir)
            self._films.clear()
            self._pictures.clear()
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
        return self._cached(
            self._films, case.id, lambda: case.item().read(spacing_mm=self.spacing_mm())
        )

    def stems(self) -> dict[str, str]:
        """The batch's stem -> the case id, for every case."""
        return {c.stem: c.id for c in self.cases()}

    def film_values(self, case: Case) -> FilmValues:
        """The case's film at full bit depth and display size (a few kept in memory).

        Raises:
            RadiographError: the film is gone or unreadable."""
        return self._cached(
            self._pictures, case.id, lambda: film_values(self.film(case), case.item())
        )

    def _cached(self, cache: OrderedDict[str, _T], key: str, make: Callable[[], _T]) -> _T:
        """``cache[key]``, made by ``make()`` outside the lock when missing; the least recently
        used entries beyond :data:`_CACHE_SIZE` are dropped."""
        with self._lock:
            value = cache.get(key)
            if value is not None:
                cache.move_to_end(key)
                return value
        value = make()
        with self._lock:
            cache[key] = value
            while len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
        return value

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


@dataclass(frozen=True)
class FilmValues:
    """The film's pixel values at full bit depth, at display size, for window/level in the
    browser.

    ``codes`` (rows x columns, uint16) code the values: value = ``offset`` + code x ``step``
    (the modality values of a DICOM film, the stored values of a PNG/JPEG/TIFF); ``scale``:
    display pixels per film pixel; ``window``: the default (centre, width) in values, from
    the DICOM's WindowCenter/WindowWidth when present (``window_source`` ``dicom``), else the
    full range (``range``); ``invert``: show low values bright (MONOCHROME1)."""

    codes: npt.NDArray[np.uint16]
    offset: float
    step: float
    scale: float
    window: tuple[float, float]
    window_source: str
    invert: bool

    @property
    def value_range(self) -> tuple[float, float]:
        """The lowest and highest value."""
        return self.offset, self.offset + float(self.codes.max(initial=0)) * self.step

    def gzip_bytes(self) -> bytes:
        """The codes as little-endian uint16, row by row, gzip-compressed."""
        return gzip.compress(self.codes.astype("<u2").tobytes(), compresslevel=4)


_IMAGE_FULL_SCALE = {1: 255.0, 8: 255.0, 16: 65535.0}


def _dicom_values(
    item: InputItem,
) -> tuple[npt.NDArray[np.float64], tuple[float, float] | None, bool] | None:
    """A DICOM film's modality values, its first window and whether it shows inverted; None
    when pydicom cannot decode it here (the reader's own values are used then)."""
    import pydicom
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(item.read_bytes()))
        values = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)
    except Exception as e:  # any decoder failure: fall back to the reader's values
        log.debug("full-depth values unavailable: %s", type(e).__name__)
        return None
    if values.ndim != 2:
        return None
    window: tuple[float, float] | None = None
    try:
        wc, ww = ds.get("WindowCenter"), ds.get("WindowWidth")
        if wc is not None and ww is not None:
            c = float(wc[0] if isinstance(wc, pydicom.multival.MultiValue) else wc)
            w = float(ww[0] if isinstance(ww, pydicom.multival.MultiValue) else ww)
            if np.isfinite(c) and np.isfinite(w) and w > 0:
                window = (c, w)
    except (TypeError, ValueError, IndexError):
        window = None
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    invert = photometric == "MONOCHROME1" or (photometric == "MONOCHROME2" and shape == "INVERSE")
    return values, window, invert


def film_values(rad: Radiograph, item: InputItem | None, max_px: int = FILM_MAX_PX) -> FilmValues:
    """The film's full-bit-depth values at most ``max_px`` on its longest side.

    A DICOM film is decoded again from ``item`` for its modality values (the reader's pixels
    have its VOI window applied, clipping what lies outside it); other formats give their
    stored values back from the reader's unit-range pixels."""
    window: tuple[float, float] | None = None
    invert = False
    decoded = _dicom_values(item) if item is not None and rad.source == "dicom" else None
    if decoded is not None:
        values, window, invert = decoded
    else:
        full = _IMAGE_FULL_SCALE.get(rad.bits_stored, 1.0) if rad.source != "dicom" else 1.0
        values = np.asarray(rad.pixels, dtype=np.float64) * full
    rows, cols = rad.shape
    scale = min(1.0, max_px / max(rows, cols))
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    scale = size[0] / cols
    if (values.shape[1], values.shape[0]) != size:
        img = Image.fromarray(values.astype(np.float32), mode="F")
        values = np.asarray(img.resize(size, Image.Resampling.BOX), dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    step = (hi - lo) / 65535.0 if hi > lo else 1.0
    codes = np.rint((values - lo) / step).clip(0, 65535).astype(np.uint16)
    source = "dicom" if window is not None else "range"
    if window is None:
        window = ((lo + hi) / 2.0, max(hi - lo, step))
    return FilmValues(codes, lo, step, scale, window, source, invert)


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
