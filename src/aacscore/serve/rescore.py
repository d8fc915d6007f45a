"""Re-score a case from corrected geometry: corners, level labels and Kauppila bounds.

The corrected corners replace the model's (both keyed by the model's level names), the
relabelling renames the bodies, the bounds are recomputed from all corners by the pipeline's
rule, and the bounds the reviewer moved replace theirs; the band is cut along them exactly as
the pipeline cuts it (:func:`aacscore.pipeline.band_along_spine`) and the score model grades it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from aacscore.kauppila import SEGMENTS, SeverityGroups, integer_grade
from aacscore.outputs.case_json import band_outline
from aacscore.pipeline import band_along_spine
from aacscore.spine.result import SpineResult
from aacscore.vertebrae import DISC_NAMES, Bound, kauppila_bounds, vertebrae_from_corners

if TYPE_CHECKING:
    from aacscore.io import Radiograph
    from aacscore.score.predict import ScoreModel


class RescoreError(ValueError):
    """The corrected geometry cannot be scored; the message says why."""


def relabelled(names: Iterable[str], labels: Mapping[str, str | None] | None) -> dict[str, str]:
    """The model's level name -> the reviewed one of each body that keeps a level.

    Raises:
        RescoreError: two bodies would get one level."""
    out = {n: new for n in names if (new := (labels or {}).get(n, n)) is not None}
    given = list(out.values())
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise RescoreError(f"the relabelled levels give {', '.join(twice)} to two bodies")
    return out


def corrected_spine(
    doc: Mapping[str, Any],
    corners: Mapping[str, Any],
    labels: Mapping[str, str | None] | None = None,
    bounds: Mapping[str, Mapping[str, Any]] | None = None,
) -> SpineResult:
    """The case's spine result with ``corners`` replacing those of their vertebrae, the bodies
    renamed by ``labels``, the discs and Kauppila bounds recomputed from all corners, and the
    moved ``bounds`` (``{disc: {"anterior": [x, y], "posterior": [x, y]}}``, in the new
    labelling) replacing theirs.

    Raises:
        RescoreError: no spine result; corners, labels or bounds that give no L1-L4 bounds."""
    if not doc.get("spine"):
        raise RescoreError(f"{doc.get('file', '?')}: no spine result to correct")
    spine = SpineResult.from_dict(doc["spine"])
    merged = {n: v.corners for n, v in spine.vertebrae.items()}
    merged.update({n: np.asarray(c, dtype=np.float64) for n, c in corners.items()})
    names = relabelled(merged, labels)
    renamed = {names[n]: c for n, c in merged.items() if n in names}
    try:
        verts = vertebrae_from_corners(renamed, spine.spacing_mm)
        found, discs, warnings = kauppila_bounds(verts)
    except ValueError as e:
        raise RescoreError(f"the corrected corners give no Kauppila bounds: {e}") from e
    if names != {n: n for n in merged}:
        warnings.append("levels relabelled by the reviewer")
    found.update(_moved_bounds(bounds or {}, found))
    missing = [b for b in DISC_NAMES if b not in found]
    if missing:
        raise RescoreError(f"the corrected corners give no bound {', '.join(missing)}")
    return replace(
        spine,
        vertebrae=verts,
        bounds=found,
        discs=discs,
        warnings=(*spine.warnings, *warnings),
    )


def _moved_bounds(
    moved: Mapping[str, Mapping[str, Any]], found: Mapping[str, Bound]
) -> dict[str, Bound]:
    out: dict[str, Bound] = {}
    for name, b in moved.items():
        if name not in DISC_NAMES:
            raise RescoreError(f"unknown bound {name!r} (bounds are {', '.join(DISC_NAMES)})")
        try:
            bound = Bound(name, np.asarray(b["anterior"], float), np.asarray(b["posterior"], float))
        except (KeyError, TypeError, ValueError) as e:
            raise RescoreError(f"bound {name}: not two distinct [x, y] anchors ({e})") from e
        ref = found.get(name)
        if ref is not None and float(bound.direction @ ref.direction) <= 0.0:
            raise RescoreError(
                f"bound {name}: its anterior anchor lies behind its posterior one (swapped?)"
            )
        out[name] = bound
    return out


def rescore(
    rad: Radiograph,
    doc: Mapping[str, Any],
    corners: Mapping[str, Any],
    model: ScoreModel,
    groups: SeverityGroups,
    labels: Mapping[str, str | None] | None = None,
    bounds: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The reading of the band cut along the corrected geometry (no test-time augmentation).

    Returns the grades (continuous and integer), totals, group, the bounds (``moved_bounds``:
    those the reviewer's replaced), the relabelling applied (``levels``) and the new band
    outline (film ``[x, y]`` points).

    Raises:
        RescoreError: the geometry gives no band (see :func:`corrected_spine`)."""
    spine = corrected_spine(doc, corners, labels, bounds)
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
        "moved_bounds": sorted(bounds or {}),
        "levels": dict(labels or {}),
        "band_outline_film_xy": band_outline(band),
    }
