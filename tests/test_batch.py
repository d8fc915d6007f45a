"""Failure isolation of the batch runner (:mod:`aacscore.batch`): an unexpected exception in any
stage of one film fails that film only, in process (``jobs=1``) and in worker processes
(``jobs=2``).

The three films are copies of the simulated film, padded at the bottom by 0, 4 and 8 rows so that
a fake stage can tell them apart by their shape. The spine result, band and score prediction of
the real pipeline are computed once (oracle spine, untrained score network) and handed back by
fake stages, so the tests check the plumbing, not the models. The fakes that travel to worker
processes are module-level classes (picklable); monkeypatching does not cross processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.uid import generate_uid

from aacscore.aorta.roi import Band, BandGeometry
from aacscore.batch import BatchSummary, case_stem, score_batch
from aacscore.io import InputItem, Radiograph
from aacscore.outputs.results_csv import read_results
from aacscore.pipeline import Scorer
from aacscore.results import Result
from aacscore.score.network import NetworkConfig, ScoreNet
from aacscore.score.predict import ScoreModel, ScoreModelConfig, ScorePrediction
from aacscore.spine.orientation import OrientationResult
from aacscore.spine.predict import SpineResult, result_from_label_scores

PAD_ROWS = (0, 4, 8)
"""Rows added below each film: films a, b, c differ in height only."""
BAD = 1
"""Index of the film that fails (film b, in the middle of the batch)."""
BOOM = "simulated crash (device-side assert triggered)"


class FakeSpine:
    """Spine model handing back one precomputed result; raises RuntimeError on a film of
    ``fail_rows`` rows."""

    def __init__(self, spine: SpineResult, fail_rows: int | None = None) -> None:
        self.spine = spine
        self.fail_rows = fail_rows

    def predict(self, radiograph: Radiograph, anterior_side: str | None = None) -> SpineResult:
        if radiograph.shape[0] == self.fail_rows:
            raise RuntimeError(BOOM)
        return self.spine


class FakeScore:
    """Score model handing back one precomputed prediction (``band_geometry`` as the real one)."""

    def __init__(self, prediction: ScorePrediction, geometry: BandGeometry) -> None:
        self.prediction = prediction
        self.band_geometry = geometry

    def predict(self, band: Band, groups: Any = "lewis", tta: bool = True) -> ScorePrediction:
        return self.prediction


@dataclass(frozen=True)
class ExplodingItem(InputItem):
    """An input whose reader raises an unexpected error (in whichever process reads it)."""

    def read(self, *args: Any, **kwargs: Any) -> Radiograph:
        raise RuntimeError(BOOM)


@dataclass(frozen=True)
class Reference:
    """What the real pipeline made of the simulated film."""

    spine: SpineResult
    band: Band
    prediction: ScorePrediction
    geometry: BandGeometry


@pytest.fixture(scope="module")
def reference(simulated_film: dict[str, Path]) -> Reference:
    folder, stem = simulated_film["dicom"].parent, simulated_film["dicom"].stem
    labels = np.asarray(Image.open(folder / f"{stem}_labels.png"))
    side = json.loads((folder / f"{stem}.json").read_text())["anterior_side"]

    class Oracle:
        def predict(self, radiograph: Radiograph, anterior_side: str | None = None) -> SpineResult:
            scores = torch.from_numpy(np.eye(8, dtype=np.float32)[labels]).permute(2, 0, 1)
            orient = OrientationResult(side, 1.0 if side == "right" else 0.0, None, "oracle")
            return result_from_label_scores(radiograph, scores * 10.0, orient)

    torch.manual_seed(0)
    net = ScoreNet(NetworkConfig(head="segments", layers=(1, 1, 1, 1)))
    geometry = BandGeometry()
    model = ScoreModel(net.eval(), ScoreModelConfig(network=net.config, band=geometry))
    res = Scorer(spine_model=Oracle(), score_model=model, tta=False).score(simulated_film["dicom"])  # type: ignore[arg-type]
    st = res.stages
    assert res.ok and st is not None, res.error
    assert st.spine is not None and st.band is not None and st.prediction is not None
    assert st.prediction.aac24 is not None
    return Reference(st.spine, st.band, st.prediction, geometry)


@pytest.fixture(scope="module")
def films(simulated_film: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three DICOM films (film_a, film_b, film_c) of different heights."""
    out = tmp_path_factory.mktemp("batch_films")
    src = pydicom.dcmread(simulated_film["dicom"])
    pixels = src.pixel_array
    paths = []
    for name, pad in zip("abc", PAD_ROWS, strict=True):
        ds = src.copy()
        padded = np.ascontiguousarray(np.pad(pixels, ((0, pad), (0, 0))), dtype=pixels.dtype)
        ds.Rows = padded.shape[0]
        ds.PixelData = padded.tobytes()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = out / f"film_{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _rows_of(films: list[Path]) -> list[int]:
    return [int(pydicom.dcmread(p, stop_before_pixels=True).Rows) for p in films]


def _kwargs(reference: Reference, fail_rows: int | None = None) -> dict[str, Any]:
    return {
        "spine_model": FakeSpine(reference.spine, fail_rows),
        "score_model": FakeScore(reference.prediction, reference.geometry),
        "tta": False,
    }


def _case(out: Path, name: str) -> dict[str, Any]:
    path = out / "cases" / f"{case_stem(name)}.json"
    assert path.is_file(), f"no case JSON for {name}"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _check_batch(
    summary: BatchSummary,
    out: Path,
    items: list[InputItem],
    reference: Reference,
    *,
    bad_fails: bool,
    problem: str = BOOM,
    code: str = "internal_error",
) -> tuple[dict[str, str], dict[str, Any]]:
    """The common assertions; returns the bad film's CSV row and case JSON."""
    names = [it.name for it in items]
    bad = names[BAD]
    rows = read_results(out / "results.csv")
    assert sorted(r["file"] for r in rows) == sorted(names)  # 3 rows, nothing lost or doubled
    by_name = {r["file"]: r for r in rows}
    expected_aac24 = float(f"{reference.prediction.aac24:.3f}")
    for name in names:
        row = by_name[name]
        if name == bad and bad_fails:
            assert row["status"] == "failed" and row["error_code"] == code
            assert row["aac24"] == "" and row["group"] == ""
            assert Path(bad).name in row["error"] and problem in row["error"], row["error"]
        else:
            assert row["status"] in ("ok", "warning"), row["error"]
            assert row["error"] == "" and row["error_code"] == ""
            assert float(row["aac24"]) == pytest.approx(expected_aac24)
            assert row["group"] == reference.prediction.group
        doc = _case(out, name)
        assert doc["file"] == name and doc["status"] == row["status"]
        assert doc["error"] == row["error"]
        assert doc["error_code"] == (row["error_code"] or None)
    n_failed = 1 if bad_fails else 0
    assert summary.n_inputs == 3 and summary.n_skipped == 0
    assert summary.counts["failed"] == n_failed
    assert summary.counts["ok"] + summary.counts["warning"] == 3 - n_failed
    run = json.loads((out / "run.json").read_text())
    assert run["finished"] and run["counts"] == summary.counts
    return by_name[bad], _case(out, bad)


# --- in process (jobs=1): every stage ----------------------------------------------------------

STAGES = ("read", "qc", "spine", "band", "score", "overlay", "dicom")


def _install_failure(
    stage: str,
    monkeypatch: pytest.MonkeyPatch,
    reference: Reference,
    bad_path: Path,
    bad_rows: int,
) -> dict[str, Any]:
    """Make ``stage`` raise RuntimeError on the bad film; returns the scorer arguments.

    The band stage hands back the precomputed band for the other films (speed); the pipeline's
    stage order (band right before score) lets the score stage know which film its band is
    from."""
    import aacscore.aorta.roi as roi
    import aacscore.io.inputs as inputs
    import aacscore.outputs.dicom as dicom
    import aacscore.outputs.overlay as overlay
    import aacscore.pipeline as pipeline

    last_rows: list[int] = []

    def fake_band(image: npt.ArrayLike, *args: Any, **kwargs: Any) -> Band:
        last_rows.append(int(np.shape(image)[0]))
        if stage == "band" and last_rows[-1] == bad_rows:
            raise RuntimeError(BOOM)
        return reference.band

    monkeypatch.setattr(roi, "extract_band", fake_band)
    kwargs = _kwargs(reference, bad_rows if stage == "spine" else None)

    def failing(real: Callable[..., Any], is_bad: Callable[..., bool]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kw: Any) -> Any:
            if is_bad(*args):
                raise RuntimeError(BOOM)
            return real(*args, **kw)

        return wrapper

    if stage == "read":
        monkeypatch.setattr(
            inputs,
            "read_radiograph",
            failing(inputs.read_radiograph, lambda path, *a: Path(path) == bad_path),
        )
    elif stage == "qc":
        monkeypatch.setattr(
            pipeline,
            "check_radiograph",
            failing(pipeline.check_radiograph, lambda rad: rad.shape[0] == bad_rows),
        )
    elif stage == "score":
        score = kwargs["score_model"]
        monkeypatch.setattr(
            score,
            "predict",
            failing(score.predict, lambda band, *a: last_rows[-1] == bad_rows),
        )
    elif stage == "overlay":
        monkeypatch.setattr(
            overlay,
            "overlay_image",
            failing(overlay.overlay_image, lambda rad, res: res.file == str(bad_path)),
        )
    elif stage == "dicom":
        monkeypatch.setattr(
            dicom,
            "write_dicom_outputs",
            failing(dicom.write_dicom_outputs, lambda res, *a: res.file == str(bad_path)),
        )
    return kwargs


@pytest.mark.parametrize("stage", STAGES)
def test_unexpected_error_in_one_stage_fails_only_that_film(
    stage: str,
    films: list[Path],
    reference: Reference,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [InputItem(p) for p in films]
    kwargs = _install_failure(stage, monkeypatch, reference, films[BAD], _rows_of(films)[BAD])
    seen: list[Result] = []
    summary = score_batch(
        items,
        tmp_path,
        kwargs,
        overlay=stage == "overlay",
        dicom_out=stage == "dicom",
        on_result=seen.append,
    )
    writer_stage = stage in ("overlay", "dicom")
    row, doc = _check_batch(summary, tmp_path, items, reference, bad_fails=not writer_stage)
    assert [r.file for r in seen] == [it.name for it in items]  # in order, all reported
    if not writer_stage:
        assert f"unexpected RuntimeError: {BOOM}" in row["error"]
        assert "RuntimeError" in doc["traceback"]
        return
    # an output writer's error keeps the score and is recorded in the case JSON only
    key = "overlay" if stage == "overlay" else "dicom_sr"
    assert doc[f"{stage}_error"] == f"RuntimeError: {BOOM}"
    assert key not in doc
    for it in (items[0], items[2]):
        other = _case(tmp_path, it.name)
        assert f"{stage}_error" not in other and Path(other[key]).is_file()


# --- worker processes (jobs=2) -----------------------------------------------------------------


@pytest.mark.slow
def test_workers_isolate_a_spine_model_crash(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    # the failure travels with the (pickled) model; band extraction and QC run for real
    items = [InputItem(p) for p in films]
    kwargs = _kwargs(reference, fail_rows=_rows_of(films)[BAD])
    summary = score_batch(items, tmp_path, kwargs, jobs=2)
    row, doc = _check_batch(summary, tmp_path, items, reference, bad_fails=True)
    assert f"unexpected RuntimeError: {BOOM}" in row["error"]
    assert "RuntimeError" in doc["traceback"]


@pytest.mark.slow
def test_workers_isolate_an_unexpected_reader_error(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    # the failure travels with the (pickled) input item and is raised in the worker
    items = [InputItem(p) for p in films]
    items[BAD] = ExplodingItem(films[BAD])
    summary = score_batch(items, tmp_path, _kwargs(reference), jobs=2)
    row, doc = _check_batch(summary, tmp_path, items, reference, bad_fails=True)
    assert f"unexpected RuntimeError: {BOOM}" in row["error"]
    assert "RuntimeError" in doc["traceback"]


@pytest.mark.slow
def test_a_result_that_cannot_come_back_from_a_worker_is_worker_failed(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    items = [InputItem(p) for p in films]
    items[BAD] = UnsendableItem(films[BAD])
    summary = score_batch(items, tmp_path, _kwargs(reference), jobs=2)
    rows = {r["file"]: r for r in read_results(tmp_path / "results.csv")}
    bad = rows[items[BAD].name]
    assert bad["status"] == "failed" and bad["error_code"] == "worker_failed"
    assert "worker failed" in bad["error"] and Path(films[BAD]).name in bad["error"]
    assert summary.counts["failed"] == 1
    assert all(rows[it.name]["error_code"] == "" for i, it in enumerate(items) if i != BAD)


@dataclass(frozen=True)
class UnsendableItem(InputItem):
    """An input that cannot be sent to a worker process (its pickling fails)."""

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this input")


def test_an_unreadable_film_is_unreadable(
    films: list[Path], reference: Reference, tmp_path: Path
) -> None:
    bad = tmp_path / "junk.dcm"
    bad.write_bytes(b"DICM" * 40)
    items = [InputItem(films[0]), InputItem(bad)]
    score_batch(items, tmp_path / "out", _kwargs(reference))
    rows = read_results(tmp_path / "out" / "results.csv")
    assert [r["error_code"] for r in rows] == ["", "unreadable"]
    assert _case(tmp_path / "out", str(bad))["error_meaning"].startswith("the file could not")


def test_run_json_lists_the_skipped_inputs_and_reruns_never_read_the_output_folder(
    simulated_film: dict[str, Path], reference: Reference, tmp_path: Path
) -> None:
    # aacscore score IN --out IN/results, twice, with overlays and DICOM output
    import shutil

    from aacscore.io import find_inputs

    src = simulated_film["dicom"].parent
    root = tmp_path / "in"
    shutil.copytree(src, root)
    out = root / "results"
    stem = simulated_film["dicom"].stem
    for run in (1, 2):
        found = find_inputs([root], exclude=[out])
        assert [it.path.name for it in found.items] == [f"{stem}.dcm", f"{stem}.png"]
        summary = score_batch(
            list(found.items),
            out,
            _kwargs(reference),
            overlay=True,
            dicom_out=True,
            skipped_inputs=found.skipped,
        )
        assert summary.n_skipped == (0 if run == 1 else 2)
        record = json.loads((out / "run.json").read_text())
        skipped = {Path(s["file"]).name: s["reason"] for s in record["skipped_inputs"]}
        assert set(skipped) == (
            {f"{stem}.json", f"{stem}_labels.png", f"{stem}_calc.png"}
            | ({"results"} if run == 2 else set())
        )
        assert len(read_results(out / "results.csv")) == 2
    assert list((out / "dicom").glob("*_sr.dcm")) and list((out / "overlays").glob("*.png"))
    # even without --out's exclusion, none of our outputs is taken for a film
    again = find_inputs([root])
    assert [it.path.name for it in again.items] == [f"{stem}.dcm", f"{stem}.png"]
    reasons = " | ".join(s.reason for s in again.skipped)
    assert "aacscore overlay picture" in reasons and "structured report" in reasons
    assert "aacscore secondary capture" in reasons
