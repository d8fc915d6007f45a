"""The case JSON document (``cases/<stem>.json``), built from a result's typed stage results,
and the result rebuilt from it.

Keys: the ``results.csv`` fields (``grades`` and the integer ``grades_int`` as mappings,
``qc_flags`` as a list) with
``error_meaning`` (what ``error_code`` means) after ``error`` and ``flags`` (each flag with its
meaning, from :mod:`aacscore.codes`) after ``qc_flags``, then the identifier columns
(``study_uid`` ... ``settings``, :class:`aacscore.results.CaseIds`), then for a film that was
read ``aacscore_version``, ``groups``, ``reader``, ``qc``, ``header`` (the DICOM header's
evidence), ``view`` (the view classifier), ``spine``, ``field`` (the field check), ``band`` and
``band_coverage`` (when those stages ran), ``timings``, ``prediction`` and ``quality`` (the
familiarity score and its components; a plain number, or null, when no stage measured it), then
the result's ``details`` (output paths, errors).

:func:`result_from_document` turns a document and the re-read film back into a
:class:`~aacscore.results.Result` with its stage results, so that outputs (overlay, DICOM SR/SC)
can be written later without running any model: the band is cut again along the spine's bounds
(at the geometry the document records), the DICOM header evidence is read again from the film.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aacscore._files import json_safe, write_json
from aacscore.codes import ERROR_CODES, FLAGS
from aacscore.kauppila import SEGMENTS, SeverityGroups, parse_groups
from aacscore.results import CaseIds, Result, StageResults, Status

if TYPE_CHECKING:
    from aacscore.aorta.roi import Band
    from aacscore.gate.header import HeaderEvidence
    from aacscore.io.types import Radiograph, RadiographInfo
    from aacscore.qc import QCReport
    from aacscore.score.predict import ScorePrediction

OUTLINE_POINTS = 64
"""About how many points of the band outline the document keeps."""


def case_document(result: Result) -> dict[str, Any]:
    """The JSON-ready document of one case."""
    doc: dict[str, Any] = {
        "file": result.file,
        "status": result.status.value,
        "error_code": None if result.error_code is None else result.error_code.value,
        "error": result.error,
        "error_meaning": None if result.error_code is None else ERROR_CODES[result.error_code],
        "aac24": result.aac24,
        "aac24_sd": result.aac24_sd,
        "grades": dict(result.grades) if result.grades is not None else None,
        "aac24_int": result.aac24_int,
        "grades_int": result.grades_int,
        "aac8": result.aac8,
        "group": result.group,
        "low_confidence": result.low_confidence,
        "quality": result.quality,
        "orientation": result.orientation,
        "spacing_mm": result.spacing_mm,
        "qc_flags": list(result.qc_flags),
        "flags": [{"flag": f, "meaning": FLAGS.get(f, "")} for f in result.qc_flags],
        **result.ids.as_dict(),
    }
    if result.stages is not None:
        doc.update(stage_details(result.stages))
    doc.update(result.details)
    safe: dict[str, Any] = json_safe(doc)
    return safe


def write_case_json(path: str | Path, result: Result) -> Path:
    """Write :func:`case_document` atomically."""
    return write_json(path, case_document(result))


class CaseDocumentError(ValueError):
    """A case JSON that cannot be read back; the message names the file and the problem."""


def read_case_json(path: str | Path) -> dict[str, Any]:
    """The document of a case JSON file.

    Raises:
        CaseDocumentError: the file is missing, not JSON, or not a case document."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CaseDocumentError(f"{p}: cannot read the case JSON ({e})") from e
    if not isinstance(doc, dict) or "file" not in doc or "status" not in doc:
        raise CaseDocumentError(f"{p}: not an aacscore case JSON (no file and status)")
    return doc


RESULT_KEYS: tuple[str, ...] = (
    "file",
    "status",
    "error_code",
    "error",
    "error_meaning",
    "aac24",
    "aac24_sd",
    "grades",
    "aac24_int",
    "grades_int",
    "aac8",
    "group",
    "low_confidence",
    "quality",
    "orientation",
    "spacing_mm",
    "qc_flags",
    "flags",
    *CaseIds().as_dict(),
)
"""The document's keys that come from the result's own fields."""
STAGE_KEYS: tuple[str, ...] = (
    "aacscore_version",
    "groups",
    "reader",
    "qc",
    "header",
    "view",
    "spine",
    "field",
    "band",
    "band_coverage",
    "timings",
    "prediction",
    "quality",
)
"""The document's keys that come from the stage results (``quality`` is both)."""


def result_from_document(doc: Mapping[str, Any], radiograph: Radiograph | None = None) -> Result:
    """The :class:`~aacscore.results.Result` a case document was written from.

    The reading, flags, identifiers and details come from the document. With the film the
    document was written from (``radiograph``, read with the same spacing), the stage results
    are rebuilt as well: the reader summary and header evidence from the film, QC, view, spine,
    field checks, prediction and familiarity from the document, and the band cut again along
    the spine's bounds; without it, or for a film that was never read, ``stages`` is None.
    ``case_document(result_from_document(doc, rad))`` gives ``doc`` back.

    Raises:
        CaseDocumentError: the document lacks a key or holds a value of the wrong kind."""
    try:
        return _result(doc, radiograph)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        name = doc.get("file", "?") if isinstance(doc, Mapping) else "?"
        raise CaseDocumentError(
            f"{name}: the case document cannot be read back ({type(e).__name__}: {e})"
        ) from e


def _result(doc: Mapping[str, Any], radiograph: Radiograph | None) -> Result:
    quality = doc.get("quality")
    grades = doc.get("grades")
    error_code = doc.get("error_code")
    low = doc.get("low_confidence")
    stages = None
    if radiograph is not None and "aacscore_version" in doc:
        stages = _stages(doc, radiograph)
    return Result(
        file=str(doc["file"]),
        status=Status(doc["status"]),
        error=str(doc.get("error") or ""),
        error_code=None if error_code is None else error_code,
        aac24=_opt_float(doc.get("aac24")),
        aac24_sd=_opt_float(doc.get("aac24_sd")),
        grades=None if grades is None else {s: float(grades[s]) for s in grades},
        aac8=_opt_float(doc.get("aac8")),
        group=None if doc.get("group") is None else str(doc["group"]),
        low_confidence=None if low is None else bool(low),
        quality=_opt_float(quality["value"] if isinstance(quality, Mapping) else quality),
        orientation=None if doc.get("orientation") is None else str(doc["orientation"]),
        spacing_mm=_opt_float(doc.get("spacing_mm")),
        qc_flags=tuple(str(f) for f in doc.get("qc_flags", ())),
        ids=CaseIds.from_mapping(doc),
        details={k: v for k, v in doc.items() if k not in RESULT_KEYS and k not in STAGE_KEYS},
        stages=stages,
    )


def _stages(doc: Mapping[str, Any], rad: Radiograph) -> StageResults:
    from aacscore.aorta.roi import BandGeometry
    from aacscore.gate.field import FieldCheck
    from aacscore.gate.header import check_header
    from aacscore.gate.quality import Quality
    from aacscore.gate.view import ViewPrediction
    from aacscore.pipeline import band_along_spine
    from aacscore.qc import QCReport
    from aacscore.spine.result import SpineResult

    info = rad.info
    qc = doc.get("qc")
    spine = None if doc.get("spine") is None else SpineResult.from_dict(doc["spine"])
    band = None
    if doc.get("band") is not None and spine is not None:
        geometry = BandGeometry.from_dict(doc["band"]["geometry"])
        band = band_along_spine(rad, spine, geometry)
    quality = doc.get("quality")
    return StageResults(
        aacscore_version=str(doc["aacscore_version"]),
        groups=document_groups(doc["groups"]),
        radiograph=info,
        qc=None
        if qc is None
        else QCReport(
            tuple(qc["flags"]),
            float(qc["contrast_range"]),
            float(qc["saturated_fraction"]),
            None if qc.get("grey_levels") is None else int(qc["grey_levels"]),
            None if qc.get("colourfulness") is None else float(qc["colourfulness"]),
        ),
        header=check_header(info) if "header" in doc else None,
        view=None if doc.get("view") is None else ViewPrediction.from_dict(doc["view"]),
        spine=spine,
        field_check=None if doc.get("field") is None else FieldCheck.from_dict(doc["field"]),
        band=band,
        coverage=None
        if doc.get("band_coverage") is None
        else FieldCheck.from_dict(doc["band_coverage"]),
        prediction=None if doc.get("prediction") is None else _prediction(doc),
        quality=Quality.from_dict(quality) if isinstance(quality, Mapping) else None,
        timings={k: float(v) for k, v in doc.get("timings", {}).items()},
    )


def document_groups(section: Mapping[str, Any]) -> SeverityGroups:
    """The severity groups of a document's ``groups`` section (a preset, or ``custom:0,4,15``)."""
    name = str(section["name"])
    return parse_groups(name.removeprefix("custom:"))


def _prediction(doc: Mapping[str, Any]) -> ScorePrediction:
    from aacscore.score.predict import ScorePrediction

    p = doc["prediction"]
    grades = None if p.get(SEGMENTS[0]) is None else tuple(float(p[s]) for s in SEGMENTS)
    return ScorePrediction(
        grades=grades,
        aac24=float(p["aac24"]),
        aac24_sd=float(p["aac24_sd"]),
        aac8=_opt_float(p.get("aac8")),
        group=str(p["group"]),
        low_confidence=bool(p["low_confidence"]),
        groups_name=str(doc["groups"]["name"]),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def stage_details(stages: StageResults) -> dict[str, Any]:
    """The stage sections of the document, in their documented order."""
    out: dict[str, Any] = {
        "aacscore_version": stages.aacscore_version,
        "groups": {"name": stages.groups.name, "description": stages.groups.describe()},
        "reader": reader_summary(stages.radiograph),
    }
    if stages.qc is not None:
        out["qc"] = qc_summary(stages.qc)
    if stages.header is not None:
        out["header"] = header_summary(stages.header)
    if stages.view is not None:
        out["view"] = stages.view.as_dict()
    if stages.spine is not None:
        out["spine"] = stages.spine.to_dict()
    if stages.field_check is not None:
        out["field"] = stages.field_check.to_dict()
    if stages.band is not None:
        out["band"] = band_summary(stages.band)
    if stages.coverage is not None:
        out["band_coverage"] = stages.coverage.to_dict()
    out["timings"] = dict(stages.timings)
    if stages.prediction is not None:
        out["prediction"] = stages.prediction.as_dict()
    if stages.quality is not None:
        out["quality"] = stages.quality.to_dict()
    return out


def reader_summary(info: RadiographInfo) -> dict[str, Any]:
    """What the reader found: format, photometric, bit depth, size, spacing, warnings."""
    return {
        "source": info.source,
        "photometric": info.photometric,
        "bits_stored": info.bits_stored,
        "shape": list(info.shape),
        "spacing_mm": None if info.spacing_mm is None else list(info.spacing_mm),
        "warnings": list(info.warnings),
        "library_warnings": list(info.library_warnings),
        "metadata": {k: str(v) for k, v in info.metadata.items()},
    }


def qc_summary(qc: QCReport) -> dict[str, Any]:
    """QC flags and the values measured for them."""
    return {
        "flags": list(qc.flags),
        "contrast_range": qc.contrast_range,
        "saturated_fraction": qc.saturated_fraction,
        "grey_levels": qc.grey_levels,
        "colourfulness": qc.colourfulness,
    }


def header_summary(evidence: HeaderEvidence) -> dict[str, Any]:
    """What the DICOM header says about view, region and modality, its clues, and the refusal
    it calls for (``code`` None: none)."""
    return evidence.as_dict()


def band_outline(band: Band, points: int = OUTLINE_POINTS) -> list[list[float]]:
    """About ``points`` film ``[x, y]`` points around the band's border, starting at its
    cranial posterior corner."""
    n_rows, n_cols = band.geometry.shape
    rows = np.concatenate(
        [np.zeros(n_cols), np.arange(n_rows), np.full(n_cols, n_rows - 1), np.arange(n_rows)[::-1]]
    )
    cols = np.concatenate(
        [np.arange(n_cols), np.full(n_rows, n_cols - 1), np.arange(n_cols)[::-1], np.zeros(n_rows)]
    )
    x, y = band.to_film(rows, cols)
    step = max(1, len(x) // points)
    return [[float(a), float(b)] for a, b in zip(x[::step], y[::step], strict=True)]


def band_summary(band: Band) -> dict[str, Any]:
    """Band geometry, scale and its outline on the film."""
    return {
        "geometry": band.geometry.as_dict(),
        "spacing_mm": list(band.spacing_mm),
        "scale_estimated": band.scale_estimated,
        "anterior_side": band.anterior_side,
        "level_length_mm": list(band.level_length_mm),
        "body_height_mm": list(band.body_height_mm),
        "extrapolated_bounds": list(band.extrapolated_bounds),
        "inside_fraction": band.inside_fraction,
        "outline_film_xy": band_outline(band),
    }
