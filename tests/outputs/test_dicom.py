"""DICOM SR and secondary capture of a result, written into the study of a simulated film from
the header the reader kept."""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ComprehensiveSRStorage

import aacscore.io.reader
from aacscore.io import InputItem
from aacscore.kauppila import SEGMENTS, parse_groups
from aacscore.outputs.dicom import (
    CODES,
    DEIDENTIFICATION_UNSTATED,
    SCHEME,
    SERIES_DESCRIPTION,
    DicomOutputError,
    replacement_uid,
    write_dicom_outputs,
)
from aacscore.results import Result, StageResults, failed
from tests.outputs.dicom_sources import (
    BAD_FRAME,
    BAD_SERIES,
    BAD_SOP,
    BAD_STUDY,
    METHOD,
    TYPE2,
    variant,
)

GRADES = dict(zip(SEGMENTS, (0.0, 0.4, 1.25, 2.0, 3.0, 0.75, 1.5, 2.5), strict=True))
MODELS = {
    "spine": {"path": "/m/spine", "sha256": {"unet.safetensors": "ab" * 32}},
    "score": {"path": "/m/score", "sha256": {"model.safetensors": "cd" * 32}},
}


def _result(source: Path | InputItem, group: str = "moderate", **over: Any) -> Result:
    """A scored result of ``source`` whose stages hold what the reader found."""
    item = source if isinstance(source, InputItem) else InputItem(source)
    stages = StageResults("9.8.7", parse_groups("lewis"), item.read().info)
    values: dict[str, Any] = {
        "file": item.name,
        "status": "ok",
        "aac24": sum(GRADES.values()),
        "aac24_sd": 1.234,
        "grades": GRADES,
        "aac8": 3.5,
        "group": group,
        "low_confidence": True,
        "orientation": "right",
        "stages": stages,
    }
    values.update(over)
    return Result(**values)


def _items(ds: Dataset) -> Iterator[Dataset]:
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _items(item)


def _numbers(ds: Dataset) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in _items(ds):
        if item.ValueType == "NUM" and item.ConceptNameCodeSequence[0].CodingSchemeDesignator == (
            SCHEME
        ):
            code = item.ConceptNameCodeSequence[0].CodeValue
            assert code not in out, f"{code} reported twice"
            mv = item.MeasuredValueSequence[0]
            # FloatingPointValue only accompanies values a decimal string cannot hold exactly
            out[code] = float(mv.get("FloatingPointValue", mv.NumericValue))
    return out


def _codes(ds: Dataset) -> dict[str, tuple[str, str, str]]:
    out: dict[str, tuple[str, str, str]] = {}
    for item in _items(ds):
        if item.ValueType == "CODE":
            name = item.ConceptNameCodeSequence[0].CodeValue
            v = item.ConceptCodeSequence[0]
            out[name] = (v.CodeValue, v.CodingSchemeDesignator, v.CodeMeaning)
    return out


def _texts(ds: Dataset) -> list[str]:
    return [str(i.TextValue) for i in _items(ds) if i.ValueType == "TEXT"]


def test_sr_holds_the_result_in_the_source_study(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    res = _result(simulated_film["dicom"])
    outs = write_dicom_outputs(res, None, tmp_path / "dicom", "c1", models=MODELS)
    assert outs.skipped is None and outs.sc is None
    assert outs.sr == tmp_path / "dicom" / "c1_sr.dcm"
    assert outs.details() == {"dicom_sr": str(outs.sr)}
    src = pydicom.dcmread(simulated_film["dicom"], stop_before_pixels=True)
    sr = pydicom.dcmread(outs.sr)
    assert sr.SOPClassUID == ComprehensiveSRStorage
    assert sr.Modality == "SR"
    assert sr.StudyInstanceUID == src.StudyInstanceUID
    assert sr.PatientID == src.PatientID and sr.PatientName == src.PatientName
    assert sr.SeriesInstanceUID != src.SeriesInstanceUID
    assert sr.SOPInstanceUID != src.SOPInstanceUID
    assert sr.SeriesDescription == SERIES_DESCRIPTION
    assert sr.VerificationFlag == "UNVERIFIED"
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"

    numbers = _numbers(sr)
    expected = {CODES["aac24"].value: res.aac24, CODES["aac24_sd"].value: res.aac24_sd}
    expected[CODES["aac8"].value] = res.aac8
    expected.update({CODES[s].value: GRADES[s] for s in SEGMENTS})
    assert set(numbers) == set(expected)
    for code, value in expected.items():
        assert numbers[code] == pytest.approx(value, abs=1e-9), code
    assert numbers["L3-ANT"] == 3.0 and numbers["AAC24"] == pytest.approx(11.4)

    coded = _codes(sr)
    assert coded["AAC-GROUP"][:2] == ("G:moderate", SCHEME)
    assert "moderate 2-5" in coded["AAC-GROUP"][2]
    assert coded["LOW-CONF"][:2] == ("373066001", "SCT")  # Yes
    assert coded["ANT-SIDE"][0] == "IMG-RIGHT"

    texts = _texts(sr)
    assert "9.8.7" in texts  # algorithm version from the result
    assert any("ab" * 32 in t and "unet.safetensors" in t for t in texts)
    assert any("cd" * 32 in t for t in texts)

    refs = [
        r.ReferencedSOPInstanceUID
        for i in _items(sr)
        if i.ValueType == "IMAGE"
        for r in i.ReferencedSOPSequence
    ]
    assert refs and set(refs) == {src.SOPInstanceUID}
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == src.StudyInstanceUID
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == src.SeriesInstanceUID
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    # highdicom reads it back as a valid Comprehensive SR
    back = hd.sr.ComprehensiveSR.from_dataset(sr)
    groups = back.content.get_image_measurement_groups(
        referenced_sop_instance_uid=src.SOPInstanceUID
    )
    assert len(groups) == 1
    (total,) = groups[0].get_measurements(name=CODES["aac24"])
    assert total.value == pytest.approx(res.aac24)
    assert total.unit.value == "{score}"


def test_sc_of_the_overlay_is_rgb_in_the_same_study(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    rgb = np.zeros((120, 90, 3), dtype=np.uint8)
    rgb[10:20, 5:15] = (255, 0, 0)
    rgb[:, -1] = (0, 0, 200)
    res = _result(simulated_film["dicom"])
    outs = write_dicom_outputs(res, rgb, tmp_path, "c2")
    assert outs.sc == tmp_path / "c2_sc.dcm" and outs.sr is not None
    src = pydicom.dcmread(simulated_film["dicom"], stop_before_pixels=True)
    sc = pydicom.dcmread(outs.sc)
    sr = pydicom.dcmread(outs.sr)
    assert (sc.Rows, sc.Columns, sc.SamplesPerPixel) == (120, 90, 3)
    assert sc.PhotometricInterpretation == "RGB" and sc.BitsAllocated == 8
    np.testing.assert_array_equal(sc.pixel_array, rgb)
    assert sc.StudyInstanceUID == src.StudyInstanceUID and sc.PatientID == src.PatientID
    assert sc.SeriesInstanceUID not in (src.SeriesInstanceUID, sr.SeriesInstanceUID)
    assert list(sc.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert sc.SeriesDescription == SERIES_DESCRIPTION
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert list(sc.PatientOrientation) == list(src.PatientOrientation)


def test_zip_member_source_is_not_read_again(
    simulated_film: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "films.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(simulated_film["dicom"], "sub/film.dcm")
    item = InputItem(archive, "sub/film.dcm")
    res = _result(item)
    archive.unlink()  # the SR is built from the header the reader kept

    def no_reading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the source was read again")

    monkeypatch.setattr(InputItem, "read_bytes", no_reading)
    monkeypatch.setattr(aacscore.io.reader, "read_dicom", no_reading)
    monkeypatch.setattr(pydicom, "dcmread", no_reading)
    outs = write_dicom_outputs(res, np.zeros((30, 20, 3), np.uint8), tmp_path / "o", "z")
    monkeypatch.undo()
    assert outs.sr is not None and outs.sc is not None
    src = pydicom.dcmread(simulated_film["dicom"], stop_before_pixels=True)
    sr = pydicom.dcmread(outs.sr)
    assert sr.StudyInstanceUID == src.StudyInstanceUID
    ref = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert ref.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID


def test_non_dicom_input_is_skipped(simulated_film: dict[str, Path], tmp_path: Path) -> None:
    rgb = np.zeros((20, 20, 3), dtype=np.uint8)
    outs = write_dicom_outputs(_result(simulated_film["png"]), rgb, tmp_path / "o", "p")
    assert outs.sr is None and outs.sc is None
    assert outs.skipped and "png" in outs.skipped and "not DICOM" in outs.skipped
    assert outs.details() == {"dicom_skipped": outs.skipped}
    # a result without stage results has no header to build on
    bare = _result(simulated_film["dicom"], stages=None)
    outs = write_dicom_outputs(bare, rgb, tmp_path / "o", "p")
    assert outs.skipped and "header is unknown" in outs.skipped
    assert not (tmp_path / "o").exists()


def test_failed_result_writes_nothing(simulated_film: dict[str, Path], tmp_path: Path) -> None:
    stages = _result(simulated_film["dicom"]).stages
    res = failed(str(simulated_film["dicom"]), "no spine found", "spine_not_found", stages=stages)
    outs = write_dicom_outputs(res, None, tmp_path / "o", "f")
    assert outs.sr is None and outs.sc is None
    assert outs.skipped and "failed" in outs.skipped
    assert not (tmp_path / "o").exists()


def test_group_labels_that_are_no_valid_code_values(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    res = _result(simulated_film["dicom"], group="a-very-long-group-label")
    outs = write_dicom_outputs(res, None, tmp_path, "g")
    assert outs.sr is not None
    value, scheme, meaning = _codes(pydicom.dcmread(outs.sr))["AAC-GROUP"]
    assert len(value) <= 16 and value.startswith("G:") and scheme == SCHEME
    assert meaning.startswith("a-very-long-group-label")


def test_bad_overlay_raises_naming_the_file(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    grey = np.zeros((20, 20), dtype=np.uint8)
    msg = re.escape(str(simulated_film["dicom"])) + r".*secondary capture.*RGB"
    with pytest.raises(DicomOutputError, match=msg):
        write_dicom_outputs(_result(simulated_film["dicom"]), grey, tmp_path, "b")


def test_exact_zero_grades_are_written_as_numeric_values(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    # a calibrated model reports uncalcified segments as exactly 0.0
    result = _result(
        simulated_film["dicom"], grades=dict.fromkeys(SEGMENTS, 0.0), aac24=0.0, aac8=0.0
    )
    outs = write_dicom_outputs(result, None, tmp_path / "dicom", "zero")
    assert outs.sr is not None
    values = _numbers(pydicom.dcmread(outs.sr))
    assert len(values) == 11 and set(values.values()) == {0.0, 1.234}


# --- values copied from the source, made valid ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "removed", "method", "coded"),
    [
        ("simulated", "YES", DEIDENTIFICATION_UNSTATED, False),
        ("method", "YES", METHOD, False),
        ("method_code", "YES", None, True),
        ("identity_kept", None, None, False),
        ("identity_odd", None, None, False),  # "Y" is no valid value: left out
    ],
)
def test_de_identification_mark_and_method(
    simulated_film: dict[str, Path],
    tmp_path: Path,
    kind: str,
    removed: str | None,
    method: str | None,
    coded: bool,
) -> None:
    source = variant(simulated_film["dicom"], tmp_path / "src", kind)
    outs = write_dicom_outputs(_result(source), np.zeros((30, 20, 3), np.uint8), tmp_path, kind)
    assert outs.sr is not None and outs.sc is not None and outs.warnings == ()
    for path in (outs.sr, outs.sc):
        ds = pydicom.dcmread(path)
        assert ds.get("PatientIdentityRemoved") == removed, path.name
        assert ds.get("DeidentificationMethod") == method, path.name
        codes_ = ds.get("DeidentificationMethodCodeSequence")
        assert (codes_[0].CodeValue if codes_ else None) == ("113100" if coded else None)


def test_sc_laterality_and_burned_in_annotation(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    rgb = np.zeros((30, 20, 3), np.uint8)
    source = variant(simulated_film["dicom"], tmp_path / "src", "type2_missing")
    plain = write_dicom_outputs(_result(source), rgb, tmp_path, "p")
    assert plain.sc is not None
    sc = pydicom.dcmread(plain.sc)
    assert (sc.ImageLaterality, sc.BurnedInAnnotation) == ("U", "NO")  # unpaired; none burned in
    assert "Laterality" not in sc
    source = variant(simulated_film["dicom"], tmp_path / "src", "lateral_burned")
    marked = write_dicom_outputs(_result(source), rgb, tmp_path, "m")
    assert marked.sc is not None
    sc = pydicom.dcmread(marked.sc)
    assert (sc.ImageLaterality, sc.BurnedInAnnotation) == ("L", "YES")


def test_sr_declares_its_private_coding_scheme(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    outs = write_dicom_outputs(_result(simulated_film["dicom"]), None, tmp_path, "s")
    assert outs.sr is not None
    (scheme,) = pydicom.dcmread(outs.sr).CodingSchemeIdentificationSequence
    assert scheme.CodingSchemeDesignator == SCHEME
    assert scheme.CodingSchemeName and scheme.CodingSchemeResponsibleOrganization


def test_invalid_source_uids_are_replaced_the_same_way_everywhere(
    simulated_film: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = variant(simulated_film["dicom"], tmp_path / "src", "bad_uids")
    res = _result(source)
    assert len(res.stages.radiograph.library_warnings) == 4  # type: ignore[union-attr]
    caplog.clear()
    capfd.readouterr()
    rgb = np.zeros((30, 20, 3), np.uint8)
    outs = write_dicom_outputs(res, rgb, tmp_path / "a", "u")
    again = write_dicom_outputs(res, rgb, tmp_path / "b", "u")
    assert outs.sr is not None and outs.sc is not None and again.sr is not None
    study = replacement_uid(BAD_STUDY)
    assert study.is_valid and study.startswith("2.25.") and study == replacement_uid(BAD_STUDY)
    sr, sc = pydicom.dcmread(outs.sr), pydicom.dcmread(outs.sc)
    assert sr.StudyInstanceUID == sc.StudyInstanceUID == study
    assert pydicom.dcmread(again.sr).StudyInstanceUID == study  # and in every later run
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == study
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == replacement_uid(BAD_SERIES)
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == replacement_uid(BAD_SOP)
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == replacement_uid(BAD_SOP)
    assert outs.warnings == (
        f"SOPInstanceUID '{BAD_SOP}' of the source is not a valid UID; the DICOM outputs use "
        f"{replacement_uid(BAD_SOP)} instead",
        f"StudyInstanceUID '{BAD_STUDY}' of the source is not a valid UID; the DICOM outputs "
        f"use {study} instead",
        f"SeriesInstanceUID '{BAD_SERIES}' of the source is not a valid UID; the DICOM outputs "
        f"use {replacement_uid(BAD_SERIES)} instead",
        f"FrameOfReferenceUID '{BAD_FRAME}' of the source is not a valid UID; the DICOM outputs "
        f"use {replacement_uid(BAD_FRAME)} instead",
    )
    assert outs.details()["dicom_warnings"] == list(outs.warnings)
    # logged once per write with the file name; pydicom does not repeat its complaints
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == [f"{res.file}: {w}" for w in outs.warnings + again.warnings]
    assert capfd.readouterr() == ("", "")
    # the header the reader kept is unchanged
    assert res.stages.radiograph.header.StudyInstanceUID == BAD_STUDY  # type: ignore[union-attr]


def test_missing_type2_attributes_are_written_empty(
    simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    source = variant(simulated_film["dicom"], tmp_path / "src", "type2_missing")
    outs = write_dicom_outputs(_result(source), np.zeros((30, 20, 3), np.uint8), tmp_path, "t")
    assert outs.sr is not None and outs.sc is not None
    for path in (outs.sr, outs.sc):
        ds = pydicom.dcmread(path)
        for keyword in TYPE2:
            assert keyword in ds and not ds[keyword].value, (path.name, keyword)


def test_library_warnings_while_writing_are_kept_and_logged_once(
    simulated_film: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = variant(simulated_film["dicom"], tmp_path / "src", "lateral_burned")
    res = _result(source)
    caplog.clear()
    outs = write_dicom_outputs(res, np.zeros((30, 20, 3), np.uint8), tmp_path, "w")
    # highdicom doubts the one-component Referring Physician's Name "ward" (SR and SC)
    (message,) = outs.warnings
    assert message.startswith('The string "ward" is unlikely to represent the intended person')
    assert outs.details()["dicom_warnings"] == [message]
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.getMessage()) for r in logged] == [
        ("aacscore.outputs.dicom", f"{res.file}: {message}")
    ]
    assert capfd.readouterr() == ("", "")


def test_invalid_sop_class_is_skipped(simulated_film: dict[str, Path], tmp_path: Path) -> None:
    res = _result(simulated_film["dicom"])
    header = res.stages.radiograph.header  # type: ignore[union-attr]
    del header.SOPClassUID  # a new element: an existing one validates with its own mode
    with pydicom.config.disable_value_validation():
        header.SOPClassUID = "1.2.840.10008.5.1.4.1.1.01"
    outs = write_dicom_outputs(res, None, tmp_path / "o", "k")
    assert outs.sr is None
    assert outs.skipped == "source SOPClassUID '1.2.840.10008.5.1.4.1.1.01' is not a valid UID"
    assert not (tmp_path / "o").exists()
