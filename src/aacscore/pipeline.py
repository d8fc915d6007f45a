"""The end-to-end scorer: film -> spine geometry -> aortic band -> Kauppila reading.

``Scorer().score(path)`` reads a radiograph (DICOM, PNG, JPEG, TIFF, or a member of a zip),
runs the input quality checks, segments the vertebrae (:mod:`aacscore.spine`), cuts the
straightened aortic band in front of L1-L4 (:mod:`aacscore.aorta`) and grades it
(:mod:`aacscore.score`). It returns a frozen :class:`aacscore.results.Result`; expected
failures (unreadable file, implausible spine, ...) become a ``failed`` result with the reason,
unless ``raise_errors=True``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aacscore import __version__
from aacscore.io import InputItem, RadiographError, read_radiograph
from aacscore.io.types import Radiograph
from aacscore.kauppila import SEGMENTS, SeverityGroups, parse_groups
from aacscore.qc import check_radiograph
from aacscore.results import Result, failed

if TYPE_CHECKING:
    from aacscore.aorta.roi import Band
    from aacscore.score.predict import ScoreModel
    from aacscore.spine.predict import SpineModelProtocol

log = logging.getLogger(__name__)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (weights are identified by it in run records)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Scorer:
    """Kauppila AAC-24 scorer for lateral lumbar radiographs.

    Args:
        spine_model: a folder of aacscore spine weights, ``"nnunet:RESULTS_FOLDER"``, a loaded
            model, or None for the shipped model.
        score_model: a folder of score-model weights, a loaded ``ScoreModel``, or None for the
            shipped model.
        groups: severity groups (``lewis``, ``ckd`` or cut-offs such as ``"0,4,15"``).
        tta: test-time augmentation for the uncertainty (``aac24_sd``, ``low_confidence``).
        spacing_mm: pixel spacing to assume for every input (overrides the header).
    """

    def __init__(
        self,
        spine_model: str | Path | SpineModelProtocol | None = None,
        score_model: str | Path | ScoreModel | None = None,
        groups: str | SeverityGroups = "lewis",
        tta: bool = True,
        spacing_mm: float | None = None,
    ) -> None:
        self._spine_spec = spine_model
        self._score_spec = score_model
        self.groups = parse_groups(groups)
        self.tta = tta
        self.spacing_mm = spacing_mm

    @cached_property
    def spine_model(self) -> SpineModelProtocol:
        """The spine model (loaded on first use)."""
        from aacscore.spine.predict import load_spine_model

        spec = self._spine_spec
        if spec is None or isinstance(spec, (str, Path)):
            return load_spine_model(spec)
        return spec

    @cached_property
    def score_model(self) -> ScoreModel:
        """The score model (loaded on first use)."""
        from aacscore.score.predict import ScoreModel

        spec = self._score_spec
        if spec is None or isinstance(spec, (str, Path)):
            return ScoreModel.load(spec)
        return spec

    def models_info(self) -> dict[str, Any]:
        """Where the weights came from and their SHA-256 (for run records, DICOM reports).

        Hashed once per scorer (the weights do not change while it lives); a fresh copy each
        call."""
        return copy.deepcopy(self._models_info)

    @cached_property
    def _models_info(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, model in (("spine", self.spine_model), ("score", self.score_model)):
            folder = getattr(model, "path", None) or getattr(model, "model_dir", None)
            entry: dict[str, Any] = {"path": str(folder) if folder else None}
            if folder and Path(folder).is_dir():
                entry["sha256"] = {
                    p.name: file_sha256(p) for p in sorted(Path(folder).glob("*.safetensors"))
                }
            out[key] = entry
        return out

    def score(self, path: str | Path | InputItem, *, raise_errors: bool = False) -> Result:
        """Score one film given by path (or an :class:`~aacscore.io.InputItem`)."""
        name = path.name if isinstance(path, InputItem) else str(path)
        t0 = time.perf_counter()
        try:
            if isinstance(path, InputItem):
                rad = path.read(spacing_mm=self.spacing_mm)
            else:
                rad = read_radiograph(path, spacing_mm=self.spacing_mm)
        except (RadiographError, OSError) as e:
            if raise_errors:
                raise
            return failed(name, str(e))
        read_s = time.perf_counter() - t0
        return self.score_radiograph(rad, name, raise_errors=raise_errors, read_s=read_s)

    def score_radiograph(
        self, rad: Radiograph, name: str, *, raise_errors: bool = False, read_s: float = 0.0
    ) -> Result:
        """Score an already decoded radiograph; ``name`` is what the result calls the file."""
        from aacscore.aorta.roi import BandError, extract_band
        from aacscore.vertebrae import SpineError

        timings: dict[str, float] = {"read_s": read_s}
        details: dict[str, Any] = {
            "aacscore_version": __version__,
            "groups": {"name": self.groups.name, "description": self.groups.describe()},
            "reader": {
                "source": rad.source,
                "photometric": rad.photometric,
                "bits_stored": rad.bits_stored,
                "shape": list(rad.shape),
                "spacing_mm": None if rad.spacing_mm is None else list(rad.spacing_mm),
                "warnings": list(rad.warnings),
                "metadata": {k: str(v) for k, v in rad.metadata.items()},
            },
        }
        t = time.perf_counter()
        qc = check_radiograph(rad)
        flags = list(qc.flags)
        details["qc"] = {
            "flags": list(qc.flags),
            "contrast_range": qc.contrast_range,
            "saturated_fraction": qc.saturated_fraction,
        }
        timings["qc_s"] = time.perf_counter() - t
        try:
            t = time.perf_counter()
            spine = self.spine_model.predict(rad)
            timings["spine_s"] = time.perf_counter() - t
            details["spine"] = spine.to_dict()
            if spine.warnings:
                flags.append("spine_warning")
            t = time.perf_counter()
            band = extract_band(
                rad.pixels,
                spine.vertebrae,
                spine.anterior_side,
                rad.spacing_mm,
                bounds=spine.bounds,
                geometry=self.score_model.band_geometry,
            )
            timings["band_s"] = time.perf_counter() - t
            details["band"] = band_summary(band)
            t = time.perf_counter()
            pred = self.score_model.predict(band, groups=self.groups, tta=self.tta)
            timings["score_s"] = time.perf_counter() - t
        except (SpineError, BandError, ValueError) as e:
            if raise_errors:
                raise
            details["timings"] = timings
            return failed(name, f"{name}: {e}", details)
        timings["total_s"] = sum(timings.values())
        details["timings"] = timings
        details["prediction"] = pred.as_dict()
        grades = None if pred.grades is None else dict(zip(SEGMENTS, pred.grades, strict=True))
        spacing = band.spacing_mm if band.scale_estimated else rad.spacing_mm
        return Result(
            file=name,
            status="warning" if flags else "ok",
            aac24=pred.aac24,
            aac24_sd=pred.aac24_sd,
            grades=grades,
            aac8=pred.aac8,
            group=pred.group,
            low_confidence=pred.low_confidence,
            orientation=spine.anterior_side,
            spacing_mm=None if spacing is None else float(sum(spacing) / 2.0),
            qc_flags=tuple(dict.fromkeys(flags)),
            details=details,
        )


def band_summary(band: Band) -> dict[str, Any]:
    """JSON-ready description of a band: geometry, scale, and its outline on the film."""
    import numpy as np

    n_rows, n_cols = band.geometry.shape
    rows = np.concatenate(
        [np.zeros(n_cols), np.arange(n_rows), np.full(n_cols, n_rows - 1), np.arange(n_rows)[::-1]]
    )
    cols = np.concatenate(
        [np.arange(n_cols), np.full(n_rows, n_cols - 1), np.arange(n_cols)[::-1], np.zeros(n_rows)]
    )
    x, y = band.to_film(rows, cols)
    step = max(1, len(x) // 64)
    return {
        "geometry": band.geometry.as_dict(),
        "spacing_mm": list(band.spacing_mm),
        "scale_estimated": band.scale_estimated,
        "anterior_side": band.anterior_side,
        "level_length_mm": list(band.level_length_mm),
        "body_height_mm": list(band.body_height_mm),
        "extrapolated_bounds": list(band.extrapolated_bounds),
        "inside_fraction": band.inside_fraction,
        "outline_film_xy": [
            [float(a), float(b)] for a, b in zip(x[::step], y[::step], strict=True)
        ],
    }
