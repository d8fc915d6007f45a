"""Re-score a case from corrected vertebra corners: new Kauppila bounds, a new band cut along
them exactly as the pipeline cuts it (:func:`aacscore.pipeline.band_along_spine`), and the
score model's grades of that band."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from aacscore.kauppila import SEGMENTS, SeverityGroups, integer_grade
from aacscore.outputs.case_json import band_outline
from aacscore.pipeline import band_along_spine
from aacscore.spine.result import SpineResult
from aacscore.vertebrae import kauppila_bounds, vertebrae_from_corners

if TYPE_CHECKING:
    from aacscore.io import Radiograph
    from aacscore.score.predict import ScoreModel


class RescoreError(ValueError):
    """The corrected geometry cannot be scored; the message says why."""


def corrected_spine(doc: Mapping[str, Any], corners: Mapping[str, Any]) -> SpineResult:
    """The case's spine result with ``corners`` replacing those of their vertebrae, and the
    discs and Kauppila bounds recomputed from all corners.

    Raises:
        RescoreError: the case has no spine result, or the corners give no L1-L4 bounds."""
    if not doc.get("spine"):
        raise RescoreError(f"{doc.get('file', '?')}: no spine result to correct")
    spine = SpineResult.from_dict(doc["spine"])
    merged = {n: v.corners for n, v in spine.vertebrae.items()}
    merged.update({n: np.asarray(c, dtype=np.float64) for n, c in corners.items()})
    try:
        verts = vertebrae_from_corners(merged, spine.spacing_mm)
        bounds, discs, warnings = kauppila_bounds(verts)
    except ValueError as e:
        raise RescoreError(f"the corrected corners give no Kauppila bounds: {e}") from e
    missing = [b for b in ("T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5") if b not in bounds]
    if missing:
        raise RescoreError(f"the corrected corners give no bound {', '.join(missing)}")
    return replace(
        spine,
        vertebrae=verts,
        bounds=bounds,
        discs=discs,
        warnings=(*spine.warnings, *warnings),
    )


def rescore(
    rad: Radiograph,
    doc: Mapping[str, Any],
    corners: Mapping[str, Any],
    model: ScoreModel,
    groups: SeverityGroups,
) -> dict[str, Any]:
    """The reading of the band cut along the corrected geometry (no test-time augmentation).

    Returns the grades (continuous and integer), totals, group, the new bounds and the new
    band outline (film ``[x, y]`` points).

    Raises:
        RescoreError: the geometry gives no band (see :func:`corrected_spine`)."""
    spine = corrected_spine(doc, corners)
    try:
        band = band_along_spine(rad, spine, model.band_geometry)
    except ValueError as e:
        raise RescoreError(f"no aortic band along the corrected geometry: {e}") from e
    pred = model.predict(band, groups=groups, tta=False)
    grades = None if pred.grades is None else dict(zip(SEGMENTS, pred.grades, strict=True))
    grades_int = None if grades is None else {s: integer_grade(g) for s, g in grades.items()}
    return {
        "grades": grades,
        "grades_int": grades_int,
        "aac24": pred.aac24,
        "aac24_int": None if grades_int is None else sum(grades_int.values()),
        "group": pred.group,
        "bounds": {n: b.to_dict() for n, b in spine.bounds.items()},
        "band_outline_film_xy": band_outline(band),
    }
