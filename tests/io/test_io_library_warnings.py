"""What pydicom and Pillow report while a file is read becomes the file's library warnings: kept
with their text, logged once per file and message with the file name, never printed raw."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

import aacscore.io.image
from aacscore.io import RadiographError, read_radiograph, read_radiograph_bytes
from aacscore.io._common import LIBRARY_LOGGERS, distinct_messages, library_messages
from aacscore.qc import check_radiograph

BAD_STUDY = "1.2.03.4"  # a component with a leading zero
BAD_SERIES = "1.2.3.abc"  # letters
INVALID_UI = "Invalid value for VR UI: '{}'"


def bad_uid_film(factory: Any, name: str = "baduid.dcm") -> Path:
    """A small film whose StudyInstanceUID and SeriesInstanceUID are not valid UIDs."""
    with pydicom.config.disable_value_validation():
        ds = factory.dataset(StudyInstanceUID=BAD_STUDY, SeriesInstanceUID=BAD_SERIES)
    return factory.write(name, ds)


def warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_invalid_uids_are_library_warnings_logged_once_with_the_file_name(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    path = bad_uid_film(dicom_factory)
    with caplog.at_level(logging.DEBUG):
        rad = read_radiograph(path)
    study, series = rad.info.library_warnings
    assert rad.warnings == ()  # the reader itself corrected nothing
    assert study.startswith(INVALID_UI.format(BAD_STUDY))
    assert series.startswith(INVALID_UI.format(BAD_SERIES))
    assert "allowed values for each VR" in study  # pydicom's text is kept
    # pydicom reports each value twice (a warning and a log record): one line each here
    assert warned(caplog) == [f"{path}: {study}", f"{path}: {series}"]
    assert {r.name for r in caplog.records if r.levelno >= logging.WARNING} == {
        "aacscore.io.reader"
    }
    assert capfd.readouterr() == ("", "")
    # the header keeps the values as found; using them later repeats nothing
    assert rad.header is not None and rad.header.StudyInstanceUID == BAD_STUDY
    assert rad.metadata["SeriesInstanceUID"] == BAD_SERIES
    caplog.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert str(rad.info.header.SeriesInstanceUID) == BAD_SERIES  # type: ignore[union-attr]
    # a library warning raises no flag: the pixels and spacing handed on are as read
    assert "reader_warning" not in check_radiograph(rad).flags


def test_nested_invalid_uid_is_reported_while_reading(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with pydicom.config.disable_value_validation():
        ref = Dataset()
        ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        ref.ReferencedSOPInstanceUID = "1.2.0099.7"
        ds = dicom_factory.dataset(ReferencedImageSequence=[ref])
    path = dicom_factory.write("nested.dcm", ds)
    rad = read_radiograph(path)
    (warning,) = rad.library_warnings
    assert warning.startswith(INVALID_UI.format("1.2.0099.7"))
    assert warned(caplog) == [f"{path}: {warning}"]


def test_zip_member_names_the_member(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    data = bad_uid_film(dicom_factory).read_bytes()
    rad = read_radiograph_bytes(data, "films.zip:sub/baduid.dcm")
    assert len(rad.library_warnings) == 2
    assert all(m.startswith("films.zip:sub/baduid.dcm: Invalid value") for m in warned(caplog))
    assert len(warned(caplog)) == 2
    assert capfd.readouterr() == ("", "")


def test_each_read_reports_again(dicom_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    # "once" is per file read: a second file with the same problem is reported too
    first = bad_uid_film(dicom_factory, "a.dcm")
    second = bad_uid_film(dicom_factory, "b.dcm")
    assert read_radiograph(first).library_warnings == read_radiograph(second).library_warnings
    names = [m.split(": ", 1)[0] for m in warned(caplog)]
    assert names == [str(first), str(first), str(second), str(second)]


def test_messages_of_a_refused_file_go_to_the_debug_log(
    dicom_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = dicom_factory.write("broken.dcm")

    def broken(self: Dataset) -> Any:
        warnings.warn("odd data", UserWarning, stacklevel=1)
        raise ValueError("cannot")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(broken))
    with caplog.at_level(logging.DEBUG), pytest.raises(RadiographError, match="cannot decode"):
        read_radiograph(path)
    assert warned(caplog) == []
    assert f"{path}: odd data" in [r.getMessage() for r in caplog.records]


def test_pillow_warnings_are_library_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from PIL import Image

    path = tmp_path / "film.png"
    Image.new("L", (300, 300), 128).save(path)
    convert = aacscore.io.image._convert

    def noisy(*args: Any, **kwargs: Any) -> Any:
        warnings.warn("Corrupt EXIF data", UserWarning, stacklevel=1)
        logging.getLogger("PIL.PngImagePlugin").warning("odd chunk")
        return convert(*args, **kwargs)

    monkeypatch.setattr(aacscore.io.image, "_convert", noisy)
    rad = read_radiograph(path)
    assert rad.library_warnings == ("odd chunk", "Corrupt EXIF data")
    assert warned(caplog) == [f"{path}: odd chunk", f"{path}: Corrupt EXIF data"]


def test_valid_file_has_no_library_warnings(
    dicom_factory: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    rad = read_radiograph(dicom_factory.write("ok.dcm"))
    assert rad.warnings == rad.library_warnings == () and warned(caplog) == []
    assert capfd.readouterr() == ("", "")


def test_capture_restores_the_loggers_and_passes_code_warnings_on() -> None:
    before = {
        n: (logging.getLogger(n).propagate, logging.getLogger(n).handlers[:])
        for n in LIBRARY_LOGGERS
    }
    with pytest.warns(DeprecationWarning, match="old"), library_messages("f") as caught:
        logging.getLogger("highdicom.sr").warning("hd says %s", "x")
        logging.getLogger("highdicom.sr").info("only debug")
        warnings.warn("old", DeprecationWarning, stacklevel=1)
        warnings.warn("data", UserWarning, stacklevel=1)
    assert caught == ["hd says x", "data"]
    after = {
        n: (logging.getLogger(n).propagate, logging.getLogger(n).handlers[:])
        for n in LIBRARY_LOGGERS
    }
    assert after == before


def test_distinct_messages_skips_known_repeats_and_blanks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("aacscore.tests")
    out = distinct_messages("f.dcm", ["a", " b ", "a", "", "c"], log, known=["c"])
    assert out == ("a", "b")
    assert warned(caplog) == ["f.dcm: a", "f.dcm: b"]
