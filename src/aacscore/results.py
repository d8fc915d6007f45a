"""The per-case :class:`Result`, its :class:`Status` and the typed stage results behind it.

``Result`` is what :class:`aacscore.pipeline.Scorer` returns: the reading (the row of
``results.csv``, columns in :data:`RESULT_COLUMNS` order) plus, in ``stages``, the typed output
of every stage that ran. The case JSON is built from both by :mod:`aacscore.outputs.case_json`.
``ids`` (:class:`CaseIds`) holds the columns that join a row with other tables (the film's DICOM
identifiers) and those that let a batch recognise it on resume (the input's SHA-256 and the
settings hash); the batch runner (:mod:`aacscore.batch`) fills them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from aacscore.codes import ErrorCode
from aacscore.kauppila import MAX_GRADE, SEGMENTS, integer_grade, round_half_up

if TYPE_CHECKING:
    from aacscore.aorta.roi import Band
    from aacscore.gate.field import FieldCheck
    from aacscore.gate.header import HeaderEvidence
    from aacscore.gate.quality import Quality
    from aacscore.gate.view import ViewPrediction
    from aacscore.io.types import RadiographInfo
    from aacscore.kauppila import SeverityGroups
    from aacscore.qc import QCReport
    from aacscore.score.predict import ScorePrediction
    from aacscore.spine.predict import SpineResult

INT_SEGMENT_COLUMNS: tuple[str, ...] = tuple(f"{s}_int" for s in SEGMENTS)
"""The integer segment grades' columns (:func:`aacscore.kauppila.integer_grade` of the continuous
grade as written, so a row's integer and continuous columns always agree)."""
INT_COLUMNS: tuple[str, ...] = ("aac24_int", *INT_SEGMENT_COLUMNS)
"""The integer columns: the integer AAC-24 (sum of the integer grades) and the 8 grades."""

RESULT_COLUMNS: tuple[str, ...] = (
    "file",
    "status",
    "error_code",
    "error",
    "aac24",
    "aac24_sd",
    "aac24_int",
    *SEGMENTS,
    *INT_SEGMENT_COLUMNS,
    "aac8",
    "group",
    "low_confidence",
    "quality",
    "orientation",
    "spacing_mm",
    "qc_flags",
    "study_uid",
    "series_uid",
    "sop_uid",
    "accession",
    "patient_id",
    "sha256",
    "settings",
)
"""The columns of ``results.csv``, in order."""

ID_COLUMNS: tuple[str, ...] = (
    "study_uid",
    "series_uid",
    "sop_uid",
    "accession",
    "patient_id",
    "sha256",
    "settings",
)
"""The :class:`CaseIds` columns (the last of :data:`RESULT_COLUMNS`)."""


class Status(str, Enum):
    """Outcome of one case; the value is what ``results.csv`` and the case JSON hold."""

    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)


@dataclass(frozen=True)
class CaseIds:
    """What identifies a case outside its reading.

    ``study_uid``, ``series_uid``, ``sop_uid`` and ``accession`` are the film's
    StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID and AccessionNumber ("" for inputs that
    are not DICOM or lack them); ``patient_id`` its PatientID, only when asked for (identifying).
    ``sha256`` is the hex digest of the input's bytes ("" when they could not be read) and
    ``settings`` the short hash of the options that change results (see :mod:`aacscore.batch`).
    """

    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    accession: str = ""
    patient_id: str = ""
    sha256: str = ""
    settings: str = ""

    def as_dict(self) -> dict[str, str]:
        """The columns, in :data:`ID_COLUMNS` order."""
        return {c: str(getattr(self, c)) for c in ID_COLUMNS}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CaseIds:
        """From a ``results.csv`` row or case document (missing or null values: "")."""
        return cls(**{c: str(values.get(c) or "") for c in ID_COLUMNS})


@dataclass(frozen=True)
class StageResults:
    """Typed output of each pipeline stage that ran on one film (None: not reached).

    ``radiograph`` is the reader's summary (no pixels; the DICOM header for DICOM inputs),
    ``qc`` the input checks, ``header`` the DICOM header's evidence on view, region and
    modality (empty for other formats), ``view`` the view classifier's reading, ``spine`` the
    spine geometry, ``field_check`` the field check on it, ``band`` the aortic band cut along
    ``spine.bounds``, ``coverage`` how much of the band is on the film, ``prediction`` the
    score model's reading, ``quality`` the familiarity score, ``timings`` seconds per stage.
    """

    aacscore_version: str
    groups: SeverityGroups
    radiograph: RadiographInfo
    qc: QCReport | None = None
    header: HeaderEvidence | None = None
    view: ViewPrediction | None = None
    spine: SpineResult | None = None
    field_check: FieldCheck | None = None
    band: Band | None = None
    coverage: FieldCheck | None = None
    prediction: ScorePrediction | None = None
    quality: Quality | None = None
    timings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """Everything aacscore measured on one film.

    ``grades`` are the predicted continuous segment grades in [0, 3] (None for a total-only
    model); ``aac24`` the continuous total in [0, 24] and ``aac24_sd`` its standard deviation
    from test-time augmentation; :attr:`grades_int` and :attr:`aac24_int` the integer grades
    and their sum, what readers compare. ``orientation`` is the side the patient's anterior
    faces on the film (``left``/``right``). ``error_code`` says why a failed case was refused
    (always set for a failed case, never for another); ``quality`` is the familiarity score of
    the film to the models (None when not measured). ``ids`` are the identifier columns
    (:class:`CaseIds`).
    ``stages`` holds the typed stage results (landmarks, bounds, band, versions, timings);
    ``details`` extra entries for the case JSON (output paths, errors).
    """

    file: str
    status: Status
    error: str = ""
    error_code: ErrorCode | None = None
    aac24: float | None = None
    aac24_sd: float | None = None
    grades: Mapping[str, float] | None = None
    aac8: float | None = None
    group: str | None = None
    low_confidence: bool | None = None
    quality: float | None = None
    orientation: str | None = None
    spacing_mm: float | None = None
    qc_flags: tuple[str, ...] = ()
    ids: CaseIds = field(default_factory=CaseIds)
    details: Mapping[str, Any] = field(default_factory=dict)
    stages: StageResults | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            status = Status(self.status)
        except ValueError:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}") from None
        object.__setattr__(self, "status", status)
        if self.error_code is not None:
            object.__setattr__(self, "error_code", ErrorCode(self.error_code))
        if status is Status.FAILED and self.error_code is None:
            raise ValueError(f"{self.file}: a failed result needs an error code")
        if status is not Status.FAILED and self.error_code is not None:
            raise ValueError(
                f"{self.file}: a {status.value} result has no error code, got {self.error_code}"
            )

    @property
    def ok(self) -> bool:
        """True unless the case failed."""
        return self.status is not Status.FAILED

    def with_details(self, extra: Mapping[str, Any]) -> Result:
        """A copy with ``extra`` added to ``details``."""
        return replace(self, details={**self.details, **extra})

    def with_ids(self, **values: str) -> Result:
        """A copy with the given :class:`CaseIds` fields replaced."""
        return replace(self, ids=replace(self.ids, **values))

    def without_stages(self) -> Result:
        """A copy without the stage results (light to send between processes)."""
        return replace(self, stages=None)

    @property
    def grades_int(self) -> dict[str, int] | None:
        """Integer segment grades (:func:`aacscore.kauppila.integer_grade` of the continuous
        grades rounded as in ``results.csv``); None without segment grades."""
        if self.grades is None or any(self.grades.get(s) is None for s in SEGMENTS):
            return None
        return {
            s: integer_grade(min(max(round(float(self.grades[s]), 3), 0.0), float(MAX_GRADE)))
            for s in SEGMENTS
        }

    @property
    def aac24_int(self) -> int | None:
        """Integer AAC-24: the sum of :attr:`grades_int`; for a total-only model the continuous
        total rounded half up; None when nothing was scored."""
        g = self.grades_int
        if g is not None:
            return sum(g.values())
        if self.aac24 is None or not math.isfinite(self.aac24):
            return None
        return round_half_up(round(float(self.aac24), 3))

    def csv_row(self) -> dict[str, str]:
        """The row of ``results.csv`` (strings; empty where not available)."""
        row = {c: "" for c in RESULT_COLUMNS}
        row["file"] = self.file
        row["status"] = self.status.value
        row["error_code"] = "" if self.error_code is None else self.error_code.value
        row["error"] = self.error
        row["aac24"] = _fmt(self.aac24)
        row["aac24_sd"] = _fmt(self.aac24_sd)
        if self.grades is not None:
            for s in SEGMENTS:
                row[s] = _fmt(self.grades.get(s))
        ints = self.grades_int
        if ints is not None:
            for s in SEGMENTS:
                row[f"{s}_int"] = str(ints[s])
        total = self.aac24_int
        row["aac24_int"] = "" if total is None else str(total)
        row["aac8"] = _fmt(self.aac8)
        row["group"] = self.group or ""
        row["low_confidence"] = "" if self.low_confidence is None else str(self.low_confidence)
        row["quality"] = _fmt(self.quality)
        row["orientation"] = self.orientation or ""
        row["spacing_mm"] = _fmt(self.spacing_mm, 4)
        row["qc_flags"] = ";".join(self.qc_flags)
        row.update(self.ids.as_dict())
        return row


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return f"{float(x):.{digits}f}"


def failed(
    file: str,
    error: str,
    code: ErrorCode | str,
    details: Mapping[str, Any] | None = None,
    stages: StageResults | None = None,
) -> Result:
    """A failed result carrying its reason and :class:`~aacscore.codes.ErrorCode` (and the
    stages that ran before the failure)."""
    return Result(
        file=file,
        status=Status.FAILED,
        error=error,
        error_code=ErrorCode(code),
        details=dict(details or {}),
        stages=stages,
    )


def counts(statuses: Iterable[str]) -> dict[str, int]:
    """Number of cases per status."""
    out = dict.fromkeys(STATUSES, 0)
    for s in statuses:
        out[str(s)] = out.get(str(s), 0) + 1
    return out
