"""The SR and SC pass dicom3tools' ``dciodvfy`` without errors, for sources of several kinds:
de-identified or not, missing or empty Type 2 attributes, invalid UIDs, a real CR film, and
through a whole batch run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from aacscore.batch import case_stem, score_batch
from aacscore.io import find_inputs
from aacscore.outputs.dicom import DicomOutputs, write_dicom_outputs
from tests.outputs.dicom_sources import BAD_STUDY, EDITS, scored, variant
from tests.tools import require_tool

OVERLAY = np.zeros((96, 64, 3), dtype=np.uint8)
OVERLAY[10:30, 5:40] = (255, 40, 0)


@pytest.fixture(scope="module")
def dciodvfy() -> str:
    return require_tool("dciodvfy")


def report(tool: str, path: Path) -> list[str]:
    """dciodvfy's Error and Warning lines for ``path`` (it reports on stderr)."""
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    lines = run.stderr.splitlines()
    # it names the IOD it checked against: a file it could not read names none
    assert {"ComprehensiveSR", "SCImage"} & {ln.strip() for ln in lines}, run.stderr[:500]
    return [ln for ln in lines if ln.startswith(("Error", "Warning"))]


def errors(tool: str, path: Path) -> list[str]:
    return [ln for ln in report(tool, path) if ln.startswith("Error")]


def write_both(source: Path, out: Path, stem: str = "c") -> DicomOutputs:
    outs = write_dicom_outputs(scored(source), OVERLAY, out, stem)
    assert outs.sr is not None and outs.sc is not None
    return outs


def test_dciodvfy_reports_what_the_outputs_now_set(
    dciodvfy: str, simulated_film: dict[str, Path], tmp_path: Path
) -> None:
    # the errors dciodvfy gave before: without these attributes the same files fail
    outs = write_both(simulated_film["dicom"], tmp_path)
    assert outs.sr is not None and outs.sc is not None
    sr = pydicom.dcmread(outs.sr)
    del sr.DeidentificationMethod
    sr.save_as(tmp_path / "sr_without.dcm")
    assert {
        e.split("Element=")[1].split()[0] for e in errors(dciodvfy, tmp_path / "sr_without.dcm")
    } == {
        "<DeidentificationMethod>",
        "<DeidentificationMethodCodeSequence>",
    }
    sc = pydicom.dcmread(outs.sc)
    del sc.ImageLaterality
    sc.save_as(tmp_path / "sc_without.dcm")
    (error,) = errors(dciodvfy, tmp_path / "sc_without.dcm")
    assert "Type 2C" in error and "<Laterality>" in error


@pytest.mark.parametrize("kind", list(EDITS))
def test_outputs_of_source_variants_pass(
    dciodvfy: str, simulated_film: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    source = variant(simulated_film["dicom"], tmp_path / "src", kind)
    outs = write_both(source, tmp_path / "dicom", kind)
    assert outs.sr is not None and outs.sc is not None
    assert errors(dciodvfy, outs.sr) == []
    assert errors(dciodvfy, outs.sc) == []
    # what stays: dciodvfy does not know the private coding scheme designator
    sr_warnings = report(dciodvfy, outs.sr)
    others = [w for w in sr_warnings if "<99AACSCORE>" not in w]
    assert len(sr_warnings) > len(others)
    allowed = ("needed to build DICOMDIR", "Retired Person Name form")
    assert [w for w in others if not any(a in w for a in allowed)] == []


def test_outputs_of_a_real_cr_film_pass(dciodvfy: str, tmp_path: Path) -> None:
    path = get_testdata_file("RG1_UNCI.dcm", download=False)
    if not isinstance(path, str):
        pytest.skip("pydicom-data file RG1_UNCI.dcm is not installed")
    outs = write_both(Path(path), tmp_path)
    assert outs.sr is not None and outs.sc is not None
    assert errors(dciodvfy, outs.sr) == [] and errors(dciodvfy, outs.sc) == []
    # its Referring Physician's Name "ward" is copied as found: highdicom's complaint is kept
    assert any('"ward"' in w for w in outs.warnings)


def test_batch_outputs_pass(
    dciodvfy: str,
    simulated_film: dict[str, Path],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    films = tmp_path / "films"
    variant(simulated_film["dicom"], films, "bad_uids")
    variant(simulated_film["dicom"], films, "simulated")
    found = find_inputs([films])
    assert len(found.items) == 2
    out = tmp_path / "out"
    capfd.readouterr()
    summary = score_batch(found.items, out, {}, overlay=True, dicom_out=True)
    assert summary.counts["failed"] == 0
    written = sorted((out / "dicom").iterdir())
    assert [p.name for p in written] == sorted(
        f"{case_stem(it.name)}_{k}.dcm" for it in found.items for k in ("sr", "sc")
    )
    for path in written:
        assert errors(dciodvfy, path) == [], path.name
    bad = next(it for it in found.items if it.name.endswith("bad_uids.dcm"))
    case = json.loads((out / "cases" / f"{case_stem(bad.name)}.json").read_text())
    assert any(
        w.startswith(f"Invalid value for VR UI: '{BAD_STUDY}'")
        for w in case["reader"]["library_warnings"]
    )
    assert any(w.startswith(f"StudyInstanceUID '{BAD_STUDY}'") for w in case["dicom_warnings"])
    assert "reader_warning" not in case["qc_flags"]  # the reading itself is unaffected
    # nothing raw on the console: no library warning without the file name
    err = capfd.readouterr().err
    assert "UserWarning" not in err and "Invalid value for VR UI" not in err
