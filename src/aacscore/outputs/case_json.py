"""The case JSON document (``cases/<stem>.json``), built from a result's typed stage results.

Keys: the ``results.csv`` fields (``grades`` as a mapping, ``qc_flags`` as a list) with
``error_meaning`` (what ``error_code`` means) after ``error`` and ``flags`` (each flag with its
meaning, from :mod:`aacscore.codes`) after ``qc_flags``, then for a film that was read
``aacscore_version``, ``groups``, ``reader``, ``qc``, ``header`` (the DICOM header's evidence),
``view`` (the view classifier), ``spine``, ``field`` (the field check), ``band`` and
``band_coverage`` (when those stages ran), ``timings``, ``prediction`` and ``quality`` (the
familiarity score and its components), then the result's ``details`` (output paths, errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aacscore._files import json_safe, write_json
from aacscore.codes import ERROR_CODES, FLAGS

if TYPE_CHECKING:
    from aacscore.aorta.roi import Band
    from aacscore.gate.header import HeaderEvidence
    from aacscore.io.types import RadiographInfo
    from aacscore.qc import QCReport
    from aacscore.results import Result, StageResults

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
        "aac8": result.aac8,
        "group": result.group,
        "low_confidence": result.low_confidence,
        "quality": result.quality,
        "orientation": result.orientation,
        "spacing_mm": result.spacing_mm,
        "qc_flags": list(result.qc_flags),
        "flags": [{"flag": f, "meaning": FLAGS.get(f, "")} for f in result.qc_flags],
    }
    if result.stages is not None:
        doc.update(stage_details(result.stages))
    doc.update(result.details)
    safe: dict[str, Any] = json_safe(doc)
    return safe


def write_case_json(path: str | Path, result: Result) -> Path:
    """Write :func:`case_document` atomically."""
    return write_json(path, case_document(result))


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
