"""DICOM output of a scored film: a Comprehensive SR and a Secondary Capture of the overlay.

Both objects are written with highdicom into the patient and study of the source DICOM, each in
a new series, so that they appear beside the film in PACS:

- ``<stem>_sr.dcm``: Comprehensive SR holding a TID 1500 Measurement Report with one TID 1501
  measurement group (tracking identifier "AAC-24 Kauppila", finding site abdominal aorta, the
  source film as its source image). Measurements: AAC-24 total and its standard deviation, the
  8 segment grades and AAC-8 (unit ``{score}`` or ``{grade}``, UCUM annotations). Qualitative
  evaluations: severity group, low-confidence flag and the side the patient's anterior faces
  on the film. The algorithm identification (TID 4019) carries the aacscore version, the
  severity-group definition and the model weight SHA-256 hashes when known. The source film is
  referenced as evidence. The document is marked complete and unverified.
- ``<stem>_sc.dcm``: Secondary Capture of the RGB overlay picture (ImageType
  ``DERIVED\\SECONDARY\\OTHER``), referencing the source film.

Both series are described as ``aacscore AAC-24 (research use, not a medical device)``.

The Kauppila items have no standard codes, so they are private codes of the coding scheme
designator :data:`SCHEME` (``99AACSCORE``), listed once in :data:`CODES`:

==============  ===============================================================
code value      meaning
==============  ===============================================================
AAC24           Kauppila AAC-24 total (0-24)
AAC24-SD        Standard deviation of the AAC-24 total
AAC8            Schousboe AAC-8 total (0-8)
L1-ANT...L4-POS Kauppila segment grade, e.g. "Kauppila grade L1 anterior wall"
AAC-GROUP       AAC-24 severity group; values ``G:<label>`` (e.g. ``G:moderate``)
LOW-CONF        Low-confidence prediction (value SCT Yes/No)
ANT-SIDE        Side of the image the patient's anterior faces (values IMG-LEFT, IMG-RIGHT)
AACSCORE        Automated Kauppila AAC-24 scoring (procedure and method)
==============  ===============================================================

Only DICOM inputs get DICOM outputs. They are built from the source header the reader kept
(:attr:`aacscore.io.RadiographInfo.header`, in ``result.stages.radiograph``); the source file is
not read again.

Both objects pass dicom3tools' ``dciodvfy`` without errors. What is copied from the source is
made valid first:

- a UID that is not a valid DICOM UID (e.g. ``1.2.03.4`` or letters) is replaced by a
  ``2.25.`` UID derived from it (the same replacement in every output of every run), noted in
  :attr:`DicomOutputs.warnings`; the outputs then sit in a study of that replaced UID;
- a source marked ``PatientIdentityRemoved`` YES keeps that mark, with its
  DeidentificationMethod (Code Sequence), or a DeidentificationMethod saying the method is not
  stated; a value other than YES/NO is left out;
- Type 2 patient and study attributes the source lacks are written empty;
- the SC carries the source's ImageLaterality (``U``, unpaired, when it has none) and its
  BurnedInAnnotation YES (the overlay shows the film's pixels).

The SR declares its private coding scheme in the Coding Scheme Identification Sequence.
Warnings that pydicom or highdicom raise while the outputs are built and written are captured,
not printed: they are logged once each with the source file name and returned in
:attr:`DicomOutputs.warnings` (``dicom_warnings`` in the case JSON).
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import RE_VALID_UID, UID, ExplicitVRLittleEndian, generate_uid

from aacscore._files import atomic_write_bytes
from aacscore._version import __version__
from aacscore.io._common import distinct_messages, library_messages
from aacscore.kauppila import LEVELS, SEGMENTS, WALLS
from aacscore.results import Result
from aacscore.vertebrae import Side

log = logging.getLogger(__name__)

SCHEME = "99AACSCORE"
"""Private coding scheme designator of the codes below."""

SERIES_DESCRIPTION = "aacscore AAC-24 (research use, not a medical device)"
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
MANUFACTURER = "aacscore"
DEIDENTIFICATION_UNSTATED = "Not stated in the source film (PatientIdentityRemoved YES)"
"""DeidentificationMethod of outputs of a de-identified source that names no method."""

_DEIDENTIFICATION = ("DeidentificationMethod", "DeidentificationMethodCodeSequence")
_TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
"""Type 2 attributes of the Patient and General Study modules (present, possibly empty)."""
_LATERALITIES = frozenset({"R", "L", "U", "B"})

_WALL_ABBREV = {"anterior": "ANT", "posterior": "POS"}


def _code(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator=SCHEME, meaning=meaning)


CODES: dict[str, hd.sr.CodedConcept] = {
    "aac24": _code("AAC24", "Kauppila AAC-24 total"),
    "aac24_sd": _code("AAC24-SD", "Standard deviation of the AAC-24 total"),
    "aac8": _code("AAC8", "Schousboe AAC-8 total"),
    **{
        f"{lv}_{w}": _code(f"{lv}-{_WALL_ABBREV[w]}", f"Kauppila grade {lv} {w} wall")
        for lv in LEVELS
        for w in WALLS
    },
    "group": _code("AAC-GROUP", "AAC-24 severity group"),
    "low_confidence": _code("LOW-CONF", "Low-confidence prediction"),
    "orientation": _code("ANT-SIDE", "Image side the patient's anterior faces"),
    "orientation_left": _code("IMG-LEFT", "Image left"),
    "orientation_right": _code("IMG-RIGHT", "Image right"),
    "procedure": _code("AACSCORE", "Automated Kauppila AAC-24 scoring"),
}
"""The private codes, keyed by the :class:`~aacscore.results.Result` field they encode."""

UNIT_SCORE = hd.sr.CodedConcept(value="{score}", scheme_designator="UCUM", meaning="score")
UNIT_GRADE = hd.sr.CodedConcept(value="{grade}", scheme_designator="UCUM", meaning="grade")


class DicomOutputError(RuntimeError):
    """A DICOM output that could not be built or written; the message names file and problem."""


@dataclass(frozen=True)
class DicomOutputs:
    """What :func:`write_dicom_outputs` did: the files written, or why nothing was written.

    ``warnings`` holds the distinct messages of the libraries while the outputs were built and
    the source values that had to be replaced (invalid UIDs).
    """

    sr: Path | None = None
    sc: Path | None = None
    skipped: str | None = None
    warnings: tuple[str, ...] = ()

    def details(self) -> dict[str, Any]:
        """Entries for the case JSON: ``dicom_sr``/``dicom_sc`` paths or ``dicom_skipped``,
        and ``dicom_warnings`` (a list) when there are any."""
        out: dict[str, Any] = {}
        if self.sr is not None:
            out["dicom_sr"] = str(self.sr)
        if self.sc is not None:
            out["dicom_sc"] = str(self.sc)
        if self.skipped is not None:
            out["dicom_skipped"] = self.skipped
        if self.warnings:
            out["dicom_warnings"] = list(self.warnings)
        return out


def write_dicom_outputs(
    result: Result,
    overlay_rgb: npt.NDArray[np.uint8] | None,
    out_dir: Path,
    stem: str,
    *,
    models: Mapping[str, Any] | None = None,
) -> DicomOutputs:
    """Write ``OUT_DIR/<stem>_sr.dcm`` (and ``<stem>_sc.dcm`` when ``overlay_rgb`` is given).

    The source is the DICOM header in ``result.stages.radiograph``. ``models`` is
    :meth:`aacscore.pipeline.Scorer.models_info` output. Failed results, non-DICOM inputs and
    results without a usable header write nothing and return the reason in ``skipped``.
    Replaced source values and the libraries' warnings are logged once each with the file
    name and returned in ``warnings``.

    Raises:
        DicomOutputError: the SR or SC could not be built or written.
    """
    name = result.file
    if not result.ok:
        return DicomOutputs(skipped="scoring failed; no DICOM output for a failed result")
    source, reason = _source_header(result)
    if source is None:
        return DicomOutputs(skipped=reason)
    out_dir = Path(out_dir)
    try:
        with library_messages(name) as caught:
            source, replaced = _prepared_source(source)
            sr_path, sc_path = _write(source, result, overlay_rgb, out_dir, stem, models)
    finally:  # also when writing failed: the messages may say why
        messages = distinct_messages(name, caught, log)
    notes = distinct_messages(name, replaced, log, known=messages)
    log.debug("%s: DICOM output written to %s", name, out_dir)
    return DicomOutputs(sr=sr_path, sc=sc_path, warnings=(*notes, *messages))


def _write(
    source: Dataset,
    result: Result,
    overlay_rgb: npt.NDArray[np.uint8] | None,
    out_dir: Path,
    stem: str,
    models: Mapping[str, Any] | None,
) -> tuple[Path, Path | None]:
    name = result.file
    try:
        sr = build_sr(source, result, models)
    except Exception as e:
        raise DicomOutputError(
            f"{name}: cannot build the DICOM SR ({type(e).__name__}: {e})"
        ) from e
    sr_path = _save(sr, out_dir / f"{stem}_sr.dcm", name)
    sc_path = None
    if overlay_rgb is not None:
        try:
            sc = build_sc(source, overlay_rgb, result.orientation)
        except Exception as e:
            raise DicomOutputError(
                f"{name}: cannot build the DICOM secondary capture ({type(e).__name__}: {e})"
            ) from e
        sc_path = _save(sc, out_dir / f"{stem}_sc.dcm", name)
    return sr_path, sc_path


def _prepared_source(source: Dataset) -> tuple[Dataset, list[str]]:
    """A copy of ``source`` to build the outputs on, and a note per replaced value.

    Every invalid UID value, nested ones included, is replaced by :func:`replacement_uid`;
    the Type 2 patient and study attributes it lacks are added empty (highdicom needs them,
    and the outputs must have them).
    """
    notes: list[str] = []
    with config.disable_value_validation():  # the copy would repeat pydicom's complaints
        prepared = copy.deepcopy(source)
    _replace_invalid_uids(prepared, "", notes)
    for keyword in _TYPE2_PATIENT_STUDY:
        if keyword not in prepared:
            setattr(prepared, keyword, None)
    return prepared, notes


def is_valid_uid(value: str) -> bool:
    """Whether ``value`` is a valid DICOM UID (digits in dot-separated components without
    leading zeros, at most 64 characters), checked without pydicom's warning."""
    return len(value) <= 64 and re.match(RE_VALID_UID, value) is not None


def replacement_uid(value: str) -> UID:
    """The valid UID that stands for the invalid UID ``value`` in the outputs: ``2.25.`` and
    the name-based UUID (RFC 4122 version 5, OID namespace) of ``value``, so that every output
    of a study, in any run, lands in the same study."""
    return UID(f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, value).int}")


def _replace_invalid_uids(ds: Dataset, path: str, notes: list[str]) -> None:
    for tag in list(ds.keys()):
        try:
            elem = ds[tag]
        except Exception as e:  # an unconvertible value is left to the writer
            log.debug("element %s not checked (%s)", tag, e)
            continue
        label = f"{path}{elem.keyword or elem.tag}"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                _replace_invalid_uids(item, f"{label}[{i}].", notes)
            continue
        if elem.VR != "UI" or elem.value is None or elem.value == "":
            continue
        multi = elem.VM > 1
        values = [str(v) for v in (elem.value if multi else [elem.value])]
        valid = [v if is_valid_uid(v) else replacement_uid(v) for v in values]
        for old, new in zip(values, valid, strict=True):
            if old != new:
                notes.append(
                    f"{label} {old!r} of the source is not a valid UID; the DICOM outputs use "
                    f"{new} instead"
                )
        if valid != values:
            elem.value = valid if multi else valid[0]


def _source_header(result: Result) -> tuple[Dataset | None, str]:
    """The source film's header, or None and the reason there is none to build on."""
    if result.stages is None:
        return None, "no reader output for this result; the source header is unknown"
    info = result.stages.radiograph
    if info.source != "dicom":
        return None, f"input is {info.source}, not DICOM"
    if info.header is None:
        return None, "the reader kept no DICOM header"
    missing = [
        k
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
        if not info.header.get(k)
    ]
    if missing:
        return None, f"source DICOM header lacks {', '.join(missing)}"
    sop_class = str(info.header.SOPClassUID)
    if not is_valid_uid(sop_class):
        return None, f"source SOPClassUID {sop_class!r} is not a valid UID"
    return info.header, ""


def build_sr(
    source: Dataset, result: Result, models: Mapping[str, Any] | None = None
) -> hd.sr.ComprehensiveSR:
    """The Comprehensive SR (TID 1500) of ``result`` for the source film ``source``."""
    version = _version(result)
    algorithm = hd.sr.AlgorithmIdentification(
        name="aacscore",
        version=version,
        parameters=_algorithm_parameters(result, models) or None,
    )
    measurements: list[hd.sr.Measurement] = []

    def add(key: str, value: float | None, unit: hd.sr.CodedConcept) -> None:
        if value is not None and np.isfinite(value):
            measurements.append(hd.sr.Measurement(name=CODES[key], value=float(value), unit=unit))

    add("aac24", result.aac24, UNIT_SCORE)
    add("aac24_sd", result.aac24_sd, UNIT_SCORE)
    if result.grades is not None:
        for seg in SEGMENTS:
            add(seg, result.grades.get(seg), UNIT_GRADE)
    add("aac8", result.aac8, UNIT_SCORE)

    evaluations: list[hd.sr.QualitativeEvaluation] = []
    if result.group:
        evaluations.append(hd.sr.QualitativeEvaluation(CODES["group"], _group_code(result)))
    if result.low_confidence is not None:
        yes_no = codes.SCT.Yes if result.low_confidence else codes.SCT.No
        evaluations.append(hd.sr.QualitativeEvaluation(CODES["low_confidence"], yes_no))
    if result.orientation in (Side.LEFT, Side.RIGHT):
        side = CODES[f"orientation_{Side(result.orientation).value}"]
        evaluations.append(hd.sr.QualitativeEvaluation(CODES["orientation"], side))

    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="AAC-24 Kauppila"),
        method=CODES["procedure"],
        algorithm_id=algorithm,
        finding_sites=[hd.sr.FindingSite(codes.SCT.AbdominalAorta)],
        measurements=measurements or None,
        qualitative_evaluations=evaluations or None,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["aacscore device observer", version]),
            name="aacscore",
            manufacturer_name=MANUFACTURER,
            model_name="aacscore",
        ),
    )
    context = hd.sr.ObservationContext(observer_device_context=observer)
    try:
        report = hd.sr.MeasurementReport(
            context, CODES["procedure"], [group], referenced_images=[source]
        )
    except (AttributeError, TypeError, ValueError) as e:
        # the image library needs e.g. ImagerPixelSpacing and PatientOrientation for a
        # radiograph; without them the film is still referenced by the measurement group
        log.debug("SR image library left out: %s", e)
        report = hd.sr.MeasurementReport(context, CODES["procedure"], [group])
    sr = hd.sr.ComprehensiveSR(
        evidence=[source],
        content=report[0],
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
    )
    _deidentification(source, sr)
    sr.CodingSchemeIdentificationSequence = [_coding_scheme()]
    _mark_derived(sr, result)
    return sr


def build_sc(
    source: Dataset, overlay_rgb: npt.NDArray[np.uint8], orientation: str | None = None
) -> hd.sc.SCImage:
    """Secondary Capture of the RGB overlay picture in the study of ``source``.

    PatientOrientation is copied from the source, or else taken from ``orientation`` (the side
    the anterior faces, ``left``/``right``) for an upright film.
    """
    rgb = np.asarray(overlay_rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"overlay must be an RGB uint8 array, got {rgb.dtype} {rgb.shape}")
    patient_orientation = _patient_orientation(source, orientation)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=np.ascontiguousarray(rgb),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=hd.UID(),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=patient_orientation,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    sc.SourceImageSequence = [ref]
    sc.DerivationDescription = "aacscore overlay: vertebrae, aortic band and segment grades"
    sc.BurnedInAnnotation = "YES" if _text(source, "BurnedInAnnotation") == "YES" else "NO"
    # without it, General Series Laterality would be required (the spine is unpaired: "U")
    laterality = _text(source, "ImageLaterality")
    sc.ImageLaterality = laterality if laterality in _LATERALITIES else "U"
    _deidentification(source, sc)
    _mark_derived(sc, None)
    return sc


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None or not isinstance(value, str) else value.strip().upper()


def _deidentification(source: Dataset, out: Dataset) -> None:
    """PatientIdentityRemoved of ``source`` (YES/NO) in ``out``; with YES, the source's
    de-identification method, or one saying it is not stated (it is required then)."""
    removed = _text(source, "PatientIdentityRemoved")
    if removed not in ("YES", "NO"):
        for keyword in ("PatientIdentityRemoved", *_DEIDENTIFICATION):
            if keyword in out:
                del out[keyword]
        if removed:
            log.debug("PatientIdentityRemoved %r is neither YES nor NO: left out", removed)
        return
    out.PatientIdentityRemoved = removed
    for keyword in _DEIDENTIFICATION:
        if source.get(keyword):
            setattr(out, keyword, copy.deepcopy(source[keyword].value))
        elif keyword in out:
            del out[keyword]
    if removed == "YES" and not any(out.get(k) for k in _DEIDENTIFICATION):
        out.DeidentificationMethod = DEIDENTIFICATION_UNSTATED


def _coding_scheme() -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator = SCHEME
    item.CodingSchemeName = "aacscore private codes"
    item.CodingSchemeResponsibleOrganization = MANUFACTURER
    return item


_BIPED = frozenset("APLRHF")


def _patient_orientation(source: Dataset, orientation: str | None) -> tuple[str, str]:
    orient = source.get("PatientOrientation")
    if orient is not None and not isinstance(orient, str) and len(orient) == 2:
        row, col = (str(v).strip().upper() for v in orient)
        if row in _BIPED and col in _BIPED:
            return (row, col)
    return ("P" if orientation == Side.LEFT else "A", "F")


def _mark_derived(ds: Dataset, result: Result | None) -> None:
    ds.SeriesDescription = SERIES_DESCRIPTION
    ds.ManufacturerModelName = "aacscore"
    ds.SoftwareVersions = __version__ if result is None else _version(result)


def _version(result: Result) -> str:
    return result.stages.aacscore_version if result.stages is not None else __version__


def _group_code(result: Result) -> hd.sr.CodedConcept:
    label = str(result.group)
    desc = result.stages.groups.describe() if result.stages is not None else None
    value = f"G:{label}"
    if len(value) > 16 or "\\" in value:
        value = "G:" + hashlib.sha1(label.encode()).hexdigest()[:14]
    meaning = f"{label} ({desc})" if desc else label
    return _code(value, meaning[:64])


def _algorithm_parameters(result: Result, models: Mapping[str, Any] | None) -> list[str]:
    params: list[str] = []
    if result.stages is not None:
        groups = result.stages.groups
        params.append(f"severity groups {groups.name}: {groups.describe()}")
    for key, entry in (models or {}).items():
        hashes = entry.get("sha256") if isinstance(entry, Mapping) else None
        if isinstance(hashes, Mapping):
            params.extend(f"{key} model {f} sha256={h}" for f, h in sorted(hashes.items()))
    return params


def _save(ds: Dataset, path: Path, name: str) -> Path:
    buf = io.BytesIO()
    try:
        ds.save_as(buf, enforce_file_format=True)
        return atomic_write_bytes(path, buf.getvalue())
    except Exception as e:
        raise DicomOutputError(f"{name}: cannot write {path} ({type(e).__name__}: {e})") from e
