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

import numpy as np
import numpy.typing as npt

from aacscore._files import sha256_file
from aacscore._timing import timed
from aacscore._version import __version__
from aacscore.aorta.roi import BAND_SOURCE_SPACING_MM
from aacscore.backend import Backend, parse_backend, require_torch
from aacscore.codes import ErrorCode, ScoringError
from aacscore.gate.header import check_header
from aacscore.gate.quality import assess_quality
from aacscore.io import InputItem, RadiographError, read_radiograph
from aacscore.io.dicom import SCORING_DECODE_SPACING_MM
from aacscore.io.types import Radiograph
from aacscore.kauppila import SEGMENTS, SeverityGroups, parse_groups
from aacscore.qc import MAX_COLOURFULNESS, MIN_GREY_LEVELS, check_radiograph
from aacscore.results import Result, StageResults, Status, failed

if TYPE_CHECKING:
    from aacscore.aorta.roi import Band, BandGeometry
    from aacscore.gate.quality import QualityReference
    from aacscore.gate.view import ViewClassifier
    from aacscore.score.predict import ScoreModel
    from aacscore.spine.predict import SpineModelProtocol, SpineResult

log = logging.getLogger(__name__)

VIEW_UNCERTAIN_BELOW = 0.5
"""``p_lateral`` of the view classifier below which an accepted film is flagged
``view_uncertain``."""

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
        view_model: a folder of view-classifier weights, a loaded ``ViewClassifier``, None for
            the shipped one, or False to skip the view check.
        ignore_view: score films the view classifier refuses (flagged ``view_uncertain``).
        quality_reference: a folder holding a familiarity reference (``reference.json``), a
            loaded ``QualityReference``, None for the shipped one (used only with the shipped
            score model it was measured with), or False for no familiarity score.
        backend: what runs the networks of the models loaded from folders: ``onnx`` (ONNX
            Runtime on the graphs exported beside the weights; no PyTorch needed), ``torch``
            (needs ``aacscore[train]``) or ``auto`` (None: onnx where a model's graphs fit its
            weights, else torch). Loaded models keep their own; nnU-Net is torch only.
        decode_spacing_mm: how coarse :meth:`score` may decode a JPEG 2000 film for the spine,
            view and quality stages (the coarsest resolution level of at most this spacing;
            the aortic band is decoded apart, see ``band_source_spacing_mm``); None decodes
            every film at full resolution. Results are in the film's own pixels and spacing
            either way (:func:`spine_in_film_pixels`).
        band_source_spacing_mm: how coarse a resolution level of a JPEG 2000 film the aortic
            band may be sampled from, however the film was read (the coarsest level of at most
            this or the band's column spacing, whichever is larger; default
            :data:`~aacscore.aorta.roi.BAND_SOURCE_SPACING_MM`, 0.3 mm); None: of at most the
            band's column spacing (0.25 mm).
    """

    def __init__(
        self,
        spine_model: str | Path | SpineModelProtocol | None = None,
        score_model: str | Path | ScoreModel | None = None,
        groups: str | SeverityGroups = "lewis",
        tta: bool = True,
        spacing_mm: float | None = None,
        ignore_header: bool = False,
        view_model: str | Path | ViewClassifier | bool | None = None,
        ignore_view: bool = False,
        quality_reference: str | Path | QualityReference | bool | None = None,
        backend: str | Backend | None = None,
        decode_spacing_mm: float | None = SCORING_DECODE_SPACING_MM,
        band_source_spacing_mm: float | None = BAND_SOURCE_SPACING_MM,
    ) -> None:
        self.backend = parse_backend(backend)
        if self.backend == Backend.TORCH:
            require_torch()
        self._spine_spec = spine_model
        self._score_spec = score_model
        self.groups = parse_groups(groups)
        self.tta = tta
        self.spacing_mm = spacing_mm
        self.decode_spacing_mm = decode_spacing_mm
        self.band_source_spacing_mm = band_source_spacing_mm
        self.ignore_header = ignore_header
        self.ignore_view = ignore_view
        self.view_check = view_model is not False
        self._view_spec = None if view_model is True else view_model
        self._quality_spec = None if quality_reference is True else quality_reference

    @cached_property
    def spine_model(self) -> SpineModelProtocol:
        """The spine model (loaded on first use)."""
        from aacscore.spine.predict import load_spine_model

        spec = self._spine_spec
        if spec is None or isinstance(spec, (str, Path)):
            return load_spine_model(spec, backend=self.backend)
        return spec

    @cached_property
    def score_model(self) -> ScoreModel:
        """The score model (loaded on first use)."""
        from aacscore.score.predict import ScoreModel

        spec = self._score_spec
        if spec is None or isinstance(spec, (str, Path)):
            return ScoreModel.load(spec, backend=self.backend)
        return spec

    @cached_property
    def view_model(self) -> ViewClassifier:
        """The view classifier (loaded on first use)."""
        from aacscore.gate.view import ViewClassifier

        spec = self._view_spec
        if spec is None or isinstance(spec, (str, Path)):
            return ViewClassifier.load(spec, backend=self.backend)
        assert not isinstance(spec, bool)
        return spec

    @cached_property
    def quality_reference(self) -> QualityReference | None:
        """The familiarity reference, or None (turned off, or the shipped reference does not
        belong to the score model in use: its band statistics would be meaningless)."""
        from aacscore.gate.quality import QualityReference

        spec = self._quality_spec
        if spec is False:
            return None
        if spec is not None and not isinstance(spec, (str, Path, bool)):
            return spec
        ref = QualityReference.load(spec if isinstance(spec, (str, Path)) else None)
        wanted = ref.info.get("score_model_sha256")
        have = model_weights_info(self.score_model).get("sha256", {})
        if spec is None and wanted and wanted not in have.values():
            log.warning(
                "the shipped familiarity reference was measured with another score model: no "
                "quality score (build one with python -m aacscore.training.quality)"
            )
            return None
        return ref

    def models_info(self) -> dict[str, Any]:
        """Where the weights came from and their SHA-256 (for run records, DICOM reports).

        Hashed once per scorer (the weights do not change while it lives); a fresh copy each
        call."""
        return copy.deepcopy(self._models_info)

    @cached_property
    def _models_info(self) -> dict[str, Any]:
        info = {
            "spine": model_weights_info(self.spine_model),
            "score": model_weights_info(self.score_model),
        }
        if self.view_check:
            info["view"] = model_weights_info(self.view_model)
        ref = self.quality_reference
        if ref is not None:
            info["quality"] = model_weights_info(ref)
        return info

    def score(self, path: str | Path | InputItem, *, raise_errors: bool = False) -> Result:
        """Score one film given by path (or an :class:`~aacscore.io.InputItem`)."""
        name = path.name if isinstance(path, InputItem) else str(path)
        timings: dict[str, float] = {}
        try:
            with timed(timings, "read_s"):
                rad = self.read(path)
        except (RadiographError, OSError) as e:
            if raise_errors:
                raise
            return failed(name, str(e), ErrorCode.UNREADABLE)
        return self.score_radiograph(rad, name, raise_errors=raise_errors, read_s=timings["read_s"])

    def read(self, path: str | Path | InputItem) -> Radiograph:
        """Read a film as :meth:`score` does: at this scorer's spacing override and
        ``decode_spacing_mm``."""
        if isinstance(path, InputItem):
            return path.read(spacing_mm=self.spacing_mm, decode_spacing_mm=self.decode_spacing_mm)
        return read_radiograph(
            path, spacing_mm=self.spacing_mm, decode_spacing_mm=self.decode_spacing_mm
        )

    def score_radiograph(
        self, rad: Radiograph, name: str, *, raise_errors: bool = False, read_s: float = 0.0
    ) -> Result:
        """Score an already decoded radiograph; ``name`` is what the result calls the file.

        The gate runs first (header, view classifier), then spine -> field check -> band ->
        band coverage -> score -> familiarity; a refusal at any step is a ``failed`` result
        with its :class:`~aacscore.codes.ErrorCode` (raised as a ``ScoringError`` with
        ``raise_errors``). A header stating an X-ray acquisition modality rules out
        ``not_radiograph`` for the classifier (unless ``ignore_header``). On a film the view
        classifier accepted, a spine- or field-stage refusal is reported with the code of a
        class that explains it better, and a reading flagged unsure of a film whose most
        probable class is another one is refused with that class's code
        (:meth:`~aacscore.gate.view.ViewPrediction.explained_refusal`,
        :meth:`~aacscore.gate.view.ViewPrediction.corroborated_refusal`; not with
        ``ignore_view``)."""
        from aacscore.gate.field import check_band_coverage, check_field
        from aacscore.gate.header import disagrees
        from aacscore.gate.view import IGNORE_VIEW_HINT, ViewClass

        timings: dict[str, float] = {"read_s": read_s}
        with timed(timings, "qc_s"):
            qc = check_radiograph(rad)
        header = check_header(rad.info)
        stages = StageResults(__version__, self.groups, rad.info, qc, header, timings=timings)
        flags = list(qc.flags)
        stage = ErrorCode.NOT_RADIOGRAPH  # the code of a plain ValueError in the current stage
        view = None
        try:
            if header.code is not None:
                if not self.ignore_header:
                    problem = f"{header.reason}; use --ignore-header to score it anyway"
                    raise ScoringError(header.code, problem)
                flags.append("header_ignored")
            if qc.colourfulness is not None and qc.colourfulness >= MAX_COLOURFULNESS:
                raise ScoringError(
                    ErrorCode.NOT_RADIOGRAPH,
                    f"a colour image (colourfulness {qc.colourfulness:.0f}, at least "
                    f"{MAX_COLOURFULNESS:.0f}: colour that its brightness does not explain): a "
                    "photograph, not a radiograph",
                )
            if qc.grey_levels is not None and qc.grey_levels < MIN_GREY_LEVELS:
                raise ScoringError(
                    ErrorCode.NOT_RADIOGRAPH,
                    f"99 % of the image's pixels take only {qc.grey_levels} grey levels: a label "
                    "map, mask or drawing, not a radiograph",
                )
            if self.view_check:
                with timed(timings, "view_s"):
                    view = self.view_model.predict(rad.pixels)
                if header.acquired_radiograph and not self.ignore_header:
                    view = view.ruling_out([ViewClass.NOT_RADIOGRAPH])
                stages = replace(stages, view=view)
                if view.refuse_code is not None and not self.ignore_view:
                    raise ScoringError(view.refuse_code, f"{view.reason}; {IGNORE_VIEW_HINT}")
                # the image's class: lateral lumbar unless the classifier doubts it
                image_class = ViewClass.LATERAL_LUMBAR
                if view.p_lateral < VIEW_UNCERTAIN_BELOW:
                    flags.append("view_uncertain")
                    image_class = view.label
                if disagrees(header, image_class.value):
                    flags.append("header_image_disagree")
            stage = ErrorCode.SPINE_NOT_FOUND
            with timed(timings, "spine_s"):
                spine, rad, spacing_note = self._read_spine(rad, name)
            if spacing_note is not None:
                flags.append("spacing_inconsistent")
            stages = replace(stages, spine=spine)
            field = check_field(spine)
            stages = replace(stages, field_check=field)
            field.raise_if_refused(None)
            stage = ErrorCode.BAND_FAILED
            with timed(timings, "band_s"):
                band = self._band(rad, spine)
            stages = replace(stages, band=band)
            coverage = check_band_coverage(band)
            stages = replace(stages, coverage=coverage)
            coverage.raise_if_refused(None)
            stage = ErrorCode.SCORE_FAILED
            with timed(timings, "score_s"):
                pred = self.score_model.predict(band, groups=self.groups, tta=self.tta)
        except ValueError as e:  # ScoringError (SpineError, BandError, gate) or a plain one
            code = e.code if isinstance(e, ScoringError) else stage
            problem = e.problem if isinstance(e, ScoringError) else str(e)
            explained = None
            if view is not None and not self.ignore_view:
                explained = view.explained_refusal(code, problem)
            if explained is not None:  # the view classifier's verdict explains the refusal
                code, problem = explained
                if raise_errors:
                    raise ScoringError(code, problem, name) from e
                return failed(name, f"{name}: {problem}", code, stages=stages)
            if raise_errors:
                if isinstance(e, ScoringError) and e.source is None:
                    raise ScoringError(e.code, e.problem, name) from e
                raise
            return failed(name, f"{name}: {problem}", code, stages=stages)
        flags += [str(f) for f in (*spine.flags, *field.flags, *coverage.flags)]
        quality = None
        with timed(timings, "quality_s"):
            reference = self.quality_reference
            if reference is not None:
                p_lat = None if view is None else view.p_lateral
                quality = assess_quality(spine, band, pred, reference, p_lateral=p_lat)
        if quality is not None and quality.low:
            flags.append("low_quality")
        doubted = None
        if view is not None and not self.ignore_view:
            doubted = view.corroborated_refusal(flags)
        if doubted is not None:  # the view classifier's doubt, corroborated by the reading's
            code, problem = doubted
            if raise_errors:
                raise ScoringError(code, problem, name)
            stages = replace(stages, prediction=pred, quality=quality)
            return failed(name, f"{name}: {problem}", code, stages=stages)
        timings["total_s"] = sum(timings.values())
        grades = None if pred.grades is None else dict(zip(SEGMENTS, pred.grades, strict=True))
        spacing = band.spacing_mm if band.scale_estimated else rad.film_spacing_mm
        return Result(
            file=name,
            status=Status.WARNING if flags else Status.OK,
            aac24=pred.aac24,
            aac24_sd=pred.aac24_sd,
            grades=grades,
            aac8=pred.aac8,
            group=pred.group,
            low_confidence=pred.low_confidence,
            quality=None if quality is None else quality.value,
            orientation=spine.anterior_side,
            spacing_mm=None if spacing is None else float(sum(spacing) / 2.0),
            qc_flags=tuple(dict.fromkeys(flags)),
            stages=replace(stages, prediction=pred, quality=quality),
        )

    def _read_spine(self, rad: Radiograph, name: str) -> tuple[SpineResult, Radiograph, str | None]:
        """The spine result of ``rad`` in film pixels, the radiograph the later stages use and
        why its header spacing was dropped (None: it was not). A reading refused as
        ``implausible_spine`` at the header's spacing is retried without it; when that reading
        passes and the spacing makes every body too small or too large
        (:func:`~aacscore.spine.geometry.spacing_contradiction`), the film goes on without its
        spacing, as a film without one would; otherwise the first refusal stands."""
        from aacscore.spine.geometry import spacing_contradiction

        try:
            return spine_in_film_pixels(self.spine_model.predict(rad), rad), rad, None
        except ScoringError as first:
            spacing = rad.film_spacing_mm
            if first.code is not ErrorCode.IMPLAUSIBLE_SPINE or spacing is None:
                raise
            bare = replace(rad, spacing_mm=None, spacing_source=None)
            try:
                spine = spine_in_film_pixels(self.spine_model.predict(bare), bare)
            except ScoringError:
                raise first from None
            note = spacing_contradiction(spine.vertebrae, spacing)
            if note is None:
                raise first from None
            log.warning("%s: %s", name, note)
            return replace(spine, warnings=(*spine.warnings, note)), bare, note

    def _band(self, rad: Radiograph, spine: SpineResult) -> Band:
        """The aortic band cut along the spine result's Kauppila bounds."""
        return band_along_spine(
            rad, spine, self.score_model.band_geometry, self.band_source_spacing_mm
        )


def band_along_spine(
    rad: Radiograph,
    spine: SpineResult,
    geometry: BandGeometry,
    source_spacing_mm: float | None = BAND_SOURCE_SPACING_MM,
) -> Band:
    """The aortic band of a film cut along its spine result's Kauppila bounds, at a score
    model's ``band_geometry`` (exactly as a default :class:`Scorer` cuts it;
    ``source_spacing_mm`` as :func:`aacscore.aorta.roi.extract_band`'s). ``spine`` is in the
    film's own pixels (as :class:`Scorer` reports it, :func:`spine_in_film_pixels`), whatever
    resolution ``rad`` was decoded at; so is the band."""
    from aacscore.aorta.roi import extract_band

    return extract_band(
        rad,
        spine.vertebrae,
        spine.anterior_side,
        rad.film_spacing_mm,
        bounds=spine.bounds,
        geometry=geometry,
        source_spacing_mm=source_spacing_mm,
    )


def spine_in_film_pixels(spine: SpineResult, rad: Radiograph) -> SpineResult:
    """A spine result on ``rad.pixels`` in the film's own pixels: for a JPEG 2000 film decoded
    at resolution level k (:attr:`Radiograph.reduction`), corners, discs and bounds times 2^k
    (pixel ``i`` of level k is film pixel ``2^k * i``), areas and fit errors scaled alike, the
    label map repeated to the film's shape, and the film's shape and spacing; ``spine``
    itself otherwise."""
    if not rad.reduction:
        return spine
    f = float(2**rad.reduction)
    shape = rad.film_shape
    spacing = rad.film_spacing_mm

    def scale(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(points, dtype=np.float64) * f

    labels = np.asarray(spine.labels)
    if labels.shape == rad.shape:
        k = 2**rad.reduction
        labels = np.repeat(np.repeat(labels, k, axis=0), k, axis=1)[: shape[0], : shape[1]]
    return replace(
        spine,
        shape=shape,
        spacing_mm=spacing,
        vertebrae={
            n: v.transformed(scale, spacing, area_scale=f * f, length_scale=f)
            for n, v in spine.vertebrae.items()
        },
        discs={n: scale(p) for n, p in spine.discs.items()},
        bounds={n: b.transformed(scale) for n, b in spine.bounds.items()},
        labels=np.ascontiguousarray(labels),
    )


def model_weights_info(model: object) -> dict[str, Any]:
    """``{"path": folder, "sha256": {file: digest}}`` of a model's weights (and ``"backend"``,
    ``onnx`` or ``torch``, when the model says which runs it).

    The files are the model's ``weight_files()`` when it has that method, else the
    ``*.safetensors`` in its folder (``path``, ``model_dir`` or ``folder`` attribute). Files are
    keyed by their path relative to the folder (their name for a flat folder). No ``sha256``
    without weight files or folder.
    """
    folder = next((f for a in _FOLDER_ATTRIBUTES if (f := getattr(model, a, None))), None)
    root = Path(folder) if folder else None
    entry: dict[str, Any] = {"path": str(root) if root is not None else None}
    backend = getattr(model, "backend", None)
    if isinstance(backend, Backend):
        entry["backend"] = backend.value
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
