"""The end-to-end scorer: film -> spine geometry -> aortic band -> Kauppila reading.

``Scorer().score(path)`` reads a radiograph (DICOM, PNG, JPEG, TIFF, or a member of a zip),
runs the input quality checks, reads the DICOM header's evidence on view, region and modality
(:mod:`aacscore.gate.header`; a header that says the film is not a lateral lumbar radiograph
refuses it, unless ``ignore_header``), segments the vertebrae (:mod:`aacscore.spine`), cuts the
straightened aortic band in front of L1-L4 (:mod:`aacscore.aorta`) and grades it
(:mod:`aacscore.score`). It returns a frozen :class:`aacscore.results.Result`; expected
failures (unreadable file, implausible spine, ...) become a ``failed`` result with the reason
and its :class:`~aacscore.codes.ErrorCode`, unless ``raise_errors=True``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aacscore._files import sha256_file
from aacscore._timing import timed
from aacscore._version import __version__
from aacscore.codes import ErrorCode, ScoringError
from aacscore.gate.header import check_header
from aacscore.io import InputItem, RadiographError, read_radiograph
from aacscore.io.types import Radiograph
from aacscore.kauppila import SEGMENTS, SeverityGroups, parse_groups
from aacscore.qc import check_radiograph
from aacscore.results import Result, StageResults, Status, failed

if TYPE_CHECKING:
    from aacscore.aorta.roi import Band
    from aacscore.score.predict import ScoreModel
    from aacscore.spine.predict import SpineModelProtocol, SpineResult

log = logging.getLogger(__name__)

_FOLDER_ATTRIBUTES = ("path", "model_dir", "folder")
"""Where a model object may keep its weights folder, in the order looked at."""


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
        ignore_header: score films whose DICOM header says they are not lateral lumbar
            radiographs (flagged ``header_ignored``) instead of refusing them.
    """

    def __init__(
        self,
        spine_model: str | Path | SpineModelProtocol | None = None,
        score_model: str | Path | ScoreModel | None = None,
        groups: str | SeverityGroups = "lewis",
        tta: bool = True,
        spacing_mm: float | None = None,
        ignore_header: bool = False,
    ) -> None:
        self._spine_spec = spine_model
        self._score_spec = score_model
        self.groups = parse_groups(groups)
        self.tta = tta
        self.spacing_mm = spacing_mm
        self.ignore_header = ignore_header

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
        return {
            "spine": model_weights_info(self.spine_model),
            "score": model_weights_info(self.score_model),
        }

    def score(self, path: str | Path | InputItem, *, raise_errors: bool = False) -> Result:
        """Score one film given by path (or an :class:`~aacscore.io.InputItem`)."""
        name = path.name if isinstance(path, InputItem) else str(path)
        timings: dict[str, float] = {}
        try:
            with timed(timings, "read_s"):
                if isinstance(path, InputItem):
                    rad = path.read(spacing_mm=self.spacing_mm)
                else:
                    rad = read_radiograph(path, spacing_mm=self.spacing_mm)
        except (RadiographError, OSError) as e:
            if raise_errors:
                raise
            return failed(name, str(e), ErrorCode.UNREADABLE)
        return self.score_radiograph(rad, name, raise_errors=raise_errors, read_s=timings["read_s"])

    def score_radiograph(
        self, rad: Radiograph, name: str, *, raise_errors: bool = False, read_s: float = 0.0
    ) -> Result:
        """Score an already decoded radiograph; ``name`` is what the result calls the file."""
        timings: dict[str, float] = {"read_s": read_s}
        with timed(timings, "qc_s"):
            qc = check_radiograph(rad)
        header = check_header(rad.info)
        stages = StageResults(__version__, self.groups, rad.info, qc, header, timings=timings)
        flags = list(qc.flags)
        if header.code is not None:
            if not self.ignore_header:
                problem = f"{header.reason}; use --ignore-header to score it anyway"
                if raise_errors:
                    raise ScoringError(header.code, problem, name)
                return failed(name, f"{name}: {problem}", header.code, stages=stages)
            flags.append("header_ignored")
        stage = ErrorCode.SPINE_NOT_FOUND  # the code of a plain ValueError in the current stage
        try:
            with timed(timings, "spine_s"):
                spine = self.spine_model.predict(rad)
            stages = replace(stages, spine=spine)
            stage = ErrorCode.BAND_FAILED
            with timed(timings, "band_s"):
                band = self._band(rad, spine)
            stages = replace(stages, band=band)
            stage = ErrorCode.SCORE_FAILED
            with timed(timings, "score_s"):
                pred = self.score_model.predict(band, groups=self.groups, tta=self.tta)
        except ValueError as e:  # ScoringError (SpineError, BandError) or a plain one
            if raise_errors:
                raise
            code = e.code if isinstance(e, ScoringError) else stage
            return failed(name, f"{name}: {e}", code, stages=stages)
        timings["total_s"] = sum(timings.values())
        flags += [str(f) for f in getattr(spine, "flags", ())]
        grades = None if pred.grades is None else dict(zip(SEGMENTS, pred.grades, strict=True))
        spacing = band.spacing_mm if band.scale_estimated else rad.spacing_mm
        return Result(
            file=name,
            status=Status.WARNING if flags else Status.OK,
            aac24=pred.aac24,
            aac24_sd=pred.aac24_sd,
            grades=grades,
            aac8=pred.aac8,
            group=pred.group,
            low_confidence=pred.low_confidence,
            orientation=spine.anterior_side,
            spacing_mm=None if spacing is None else float(sum(spacing) / 2.0),
            qc_flags=tuple(dict.fromkeys(flags)),
            stages=replace(stages, prediction=pred),
        )

    def _band(self, rad: Radiograph, spine: SpineResult) -> Band:
        """The aortic band cut along the spine result's Kauppila bounds."""
        from aacscore.aorta.roi import extract_band

        return extract_band(
            rad.pixels,
            spine.vertebrae,
            spine.anterior_side,
            rad.spacing_mm,
            bounds=spine.bounds,
            geometry=self.score_model.band_geometry,
        )


def model_weights_info(model: object) -> dict[str, Any]:
    """``{"path": folder, "sha256": {file: digest}}`` of a model's weights.

    The files are the model's ``weight_files()`` when it has that method, else the
    ``*.safetensors`` in its folder (``path``, ``model_dir`` or ``folder`` attribute). Files are
    keyed by their path relative to the folder (their name for a flat folder). No ``sha256``
    without weight files or folder.
    """
    folder = next((f for a in _FOLDER_ATTRIBUTES if (f := getattr(model, a, None))), None)
    root = Path(folder) if folder else None
    entry: dict[str, Any] = {"path": str(root) if root is not None else None}
    files: Iterable[Path] | None = None
    weight_files = getattr(model, "weight_files", None)
    if callable(weight_files):
        files = [Path(p) for p in weight_files()]
    elif root is not None and root.is_dir():
        files = sorted(root.glob("*.safetensors"))
    if files is not None:
        entry["sha256"] = {_weight_key(p, root): sha256_file(p) for p in files}
    return entry


def _weight_key(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.name
