"""``aacscore review export OUT -o LABELS``: the reviews of a results folder as the files that
validate and train on them.

Only each case's latest review counts, and only when its decision is ``accept`` (a rejected
film is unusable; a pending review is not finished). Written to ``LABELS``:

* ``reference.csv``: ``file`` (as in ``results.csv``, so ``aacscore validate --pred
  OUT/results.csv --ref LABELS/reference.csv`` joins them by key), ``aac24`` and the eight
  integer grades: the reference reading of ``aacscore validate --ref``;
* ``grades.csv``: ``file`` (the film's absolute path) and the eight grades, what
  ``aacscore train score --data`` reads (films inside zip archives are left out: the trainer
  reads files);
* ``spine/``: for reviews that moved vertebra corners or relabelled levels, ``<id>.<ext>`` (a
  copy of the film), ``<id>_labels.png`` (the corrected quadrilaterals under their reviewed
  level names, rasterised with the label values of :data:`aacscore.vertebrae.LABEL_VALUES`) and
  ``<id>.json`` (corners, ``spacing_mm``, ``anterior_side``, ``shape``), the layout
  ``aacscore train spine --data`` reads;
* ``export.json``: what was written and what was left out, with the reason.

``<id>`` is the case's opaque id, never the film's name. The corners (and their label maps) are
the training truth: the Kauppila bounds are derived from corners by a fixed rule
(:func:`aacscore.vertebrae.kauppila_bounds`), so no trainer learns them. Bounds the reviewer
moved are review-only: they steer the re-scored reading of the case, and are kept in
``<id>.json`` as ``review_bounds`` (film ``[x, y]`` anchors) for the record.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from aacscore._files import atomic_write_text, write_json
from aacscore.kauppila import SEGMENTS
from aacscore.outputs.case_json import CaseDocumentError
from aacscore.serve.cases import Case, CaseIndex
from aacscore.serve.rescore import RescoreError, relabelled
from aacscore.serve.store import STORE_NAME, Decision, Review, ReviewStore
from aacscore.vertebrae import CORNER_NAMES, LABEL_VALUES

log = logging.getLogger(__name__)

REFERENCE_CSV = "reference.csv"
GRADES_CSV = "grades.csv"
SPINE_DIR = "spine"
_EXTENSIONS = {"dicom": ".dcm", "png": ".png", "jpeg": ".jpg", "tiff": ".tif"}


class ExportError(ValueError):
    """Nothing can be exported from the folder; the message names it and the problem."""


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_reviews` wrote (paths) and left out (case id -> reason)."""

    labels_dir: Path
    reference_csv: Path
    grades_csv: Path
    spine_dir: Path
    n_reference: int
    n_grades: int
    n_spine: int
    skipped: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference_csv": str(self.reference_csv),
            "grades_csv": str(self.grades_csv),
            "spine_dir": str(self.spine_dir),
            "n_reference": self.n_reference,
            "n_grades": self.n_grades,
            "n_spine": self.n_spine,
            "skipped": dict(self.skipped),
        }


def label_map(shape: tuple[int, int], corners: Mapping[str, Any]) -> npt.NDArray[np.uint8]:
    """A label map of ``shape`` with each vertebra's quadrilateral filled with its label value
    (cranial bodies drawn first; known levels only)."""
    from skimage.draw import polygon

    labels = np.zeros(shape, np.uint8)
    for name, pts in corners.items():
        if name not in LABEL_VALUES:
            continue
        c = np.asarray(pts, dtype=np.float64)
        rr, cc = polygon(c[:, 1], c[:, 0], shape=shape)
        labels[rr, cc] = LABEL_VALUES[name]
    return labels


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _corners(doc: Mapping[str, Any], review: Review) -> dict[str, list[list[float]]]:
    """All vertebrae of the case under their reviewed names: the model's corners, the reviewed
    ones replacing them, renamed by the review's relabelling.

    Raises:
        RescoreError: the relabelling gives one level to two bodies."""
    out: dict[str, list[list[float]]] = {}
    spine = doc.get("spine") or {}
    for name, v in (spine.get("vertebrae") or {}).items():
        out[name] = [list(map(float, v["corners"][c])) for c in CORNER_NAMES]
    out.update(review.vertebrae or {})
    names = relabelled(out, review.labels)
    return {names[n]: c for n, c in out.items() if n in names}


def _spine_case(index: CaseIndex, case: Case, review: Review, folder: Path) -> str | None:
    """Write the spine training files of a case; the reason when it cannot be."""
    doc = case.document()
    reader = doc.get("reader") or {}
    item = case.item()
    if item.member is not None:
        return "the film is inside a zip archive"
    if not item.path.is_file():
        return "the film is not where it was scored from"
    suffix = item.path.suffix.lower()
    if suffix not in (".dcm", ".dicom", ".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        suffix = _EXTENSIONS.get(str(reader.get("source")), "")
        if not suffix:
            return f"the film's format {reader.get('source')!r} is not one training reads"
    shape = tuple(int(v) for v in reader.get("shape") or ())
    if len(shape) != 2:
        return "the case JSON has no film shape"
    corners = _corners(doc, review)
    spine = doc.get("spine") or {}
    spacing = index.spacing_mm()
    if isinstance(spacing, (int, float)):
        spacing = [float(spacing), float(spacing)]
    spacing = spacing or reader.get("spacing_mm")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(item.path, folder / f"{case.id}{suffix}")
    labels = label_map((shape[0], shape[1]), corners)
    Image.fromarray(labels).save(folder / f"{case.id}_labels.png")
    annotations: dict[str, Any] = {
        "vertebrae": {n: {"corners": c} for n, c in corners.items()},
        "anterior_side": spine.get("anterior_side", doc.get("orientation")),
        "shape": list(shape),
        "source": case.id,
        "reviewer": review.reviewer,
        "review_version": review.version,
    }
    if review.labels:
        annotations["review_labels"] = dict(review.labels)
    if review.bounds:
        annotations["review_bounds"] = dict(review.bounds)
    if spacing:
        annotations["spacing_mm"] = [float(s) for s in spacing]
    write_json(folder / f"{case.id}.json", annotations)
    return None


def export_reviews(out_dir: str | Path, labels_dir: str | Path) -> ExportSummary:
    """Write the reference CSV, grades CSV and spine training files of the accepted reviews of
    ``out_dir`` into ``labels_dir`` (see the module docstring).

    Raises:
        ExportError: the folder has no reviews file.
        FolderError: ``out_dir`` is not a results folder."""
    out = Path(out_dir)
    index = CaseIndex(out)
    if not (out / STORE_NAME).is_file():
        raise ExportError(f"{out}: no reviews ({STORE_NAME}); review cases with aacscore serve")
    reviews = ReviewStore.for_folder(out).latest_all()
    labels = Path(labels_dir)
    labels.mkdir(parents=True, exist_ok=True)
    spine_dir = labels / SPINE_DIR
    skipped: dict[str, str] = {}
    reference: list[dict[str, Any]] = []
    grades: list[dict[str, Any]] = []
    n_spine = 0
    known = {c.id: c for c in index.cases()}
    for case_id, review in reviews.items():
        case = known.get(case_id)
        if case is None:
            skipped[case_id] = "no longer in results.csv"
            continue
        if review.decision is not Decision.ACCEPT:
            skipped[case_id] = f"latest review is {review.decision.value}, not accept"
            continue
        if review.grades is None:
            skipped[case_id] = "the review gives no grades"
        else:
            g = {s: int(review.grades[s]) for s in SEGMENTS}
            reference.append({"file": case.file, "aac24": sum(g.values()), **g})
            item = case.item()
            if item.member is None:
                grades.append({"file": str(item.path.resolve()), **g})
            else:
                skipped[case_id] = "grades: the film is inside a zip archive"
        if review.vertebrae or review.labels:
            try:
                problem = _spine_case(index, case, review, spine_dir)
            except RescoreError as e:
                problem = str(e)
            except (CaseDocumentError, OSError, KeyError, TypeError, ValueError) as e:
                problem = f"{type(e).__name__}: {e}"
            if problem is None:
                n_spine += 1
            else:
                skipped[case_id] = f"spine: {problem}"
    ref_path = labels / REFERENCE_CSV
    grades_path = labels / GRADES_CSV
    atomic_write_text(ref_path, _csv(["file", "aac24", *SEGMENTS], reference))
    atomic_write_text(grades_path, _csv(["file", *SEGMENTS], grades))
    summary = ExportSummary(
        labels_dir=labels,
        reference_csv=ref_path,
        grades_csv=grades_path,
        spine_dir=spine_dir,
        n_reference=len(reference),
        n_grades=len(grades),
        n_spine=n_spine,
        skipped=skipped,
    )
    write_json(labels / "export.json", summary.as_dict())
    log.info("exported %d reviewed cases to %s", len(reference), labels)
    return summary
