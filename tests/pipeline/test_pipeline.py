"""End-to-end pipeline, batch runner and CLI, with an oracle spine model (the simulator's
true label map through the real geometry code) and an untrained score network, so these tests
check plumbing, schema, failure isolation, resume and overlays independently of trained weights.
"""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aacscore.aorta.roi import BandGeometry
from aacscore.batch import case_stem, score_batch
from aacscore.codes import ErrorCode
from aacscore.io import collect_inputs
from aacscore.io.types import Radiograph
from aacscore.kauppila import SEGMENTS
from aacscore.outputs.case_json import RESULT_KEYS, case_document
from aacscore.outputs.results_csv import read_results
from aacscore.pipeline import Scorer
from aacscore.results import RESULT_COLUMNS, Status
from aacscore.score.network import NetworkConfig, ScoreNet
from aacscore.score.predict import ScoreModel, ScoreModelConfig
from aacscore.simulate import simulate_case, simulate_dataset
from aacscore.spine.orientation import OrientationResult
from aacscore.spine.predict import SpineResult, result_from_label_scores


class OracleSpine:
    """Spine model that reads the simulator's label map for the film (by pixel shape)."""

    def __init__(self, cases: dict[tuple[int, int], tuple[np.ndarray, str]]) -> None:
        self.cases = cases

    def predict(self, radiograph: Radiograph, anterior_side: str | None = None) -> SpineResult:
        labels, side = self.cases[radiograph.shape]
        scores = torch.from_numpy(np.eye(8, dtype=np.float32)[labels]).permute(2, 0, 1)
        orient = OrientationResult(side, 1.0 if side == "right" else 0.0, None, "oracle")
        return result_from_label_scores(radiograph, scores * 10.0, orient)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate_dataset(out, 3, seed=7, fmt="both", progress=False, spacing_mm=0.35)
    return out


@pytest.fixture(scope="module")
def scorer(sim: Path) -> Scorer:
    cases = {}
    for i in range(3):
        c = simulate_case(7, i, spacing_mm=0.35)
        cases[c.labels.shape] = (c.labels, c.anterior_side)
    torch.manual_seed(0)
    net = ScoreNet(NetworkConfig(head="segments", layers=(1, 1, 1, 1)))
    model = ScoreModel(net.eval(), ScoreModelConfig(network=net.config, band=BandGeometry()))
    return Scorer(view_model=False, spine_model=OracleSpine(cases), score_model=model, groups="ckd")


def test_score_returns_complete_result(sim: Path, scorer: Scorer) -> None:
    res = scorer.score(sim / "case_000000.dcm")
    assert res.status in ("ok", "warning"), res.error
    assert res.file == str(sim / "case_000000.dcm")
    assert res.grades is not None and set(res.grades) == set(SEGMENTS)
    assert all(0.0 <= g <= 3.0 for g in res.grades.values())
    assert res.aac24 is not None and 0.0 <= res.aac24 <= 24.0
    assert res.aac24 == pytest.approx(sum(res.grades.values()), abs=1e-3)
    assert res.aac24_sd is not None and res.aac24_sd > 0
    assert res.group in ("none/mild", "moderate", "severe")
    truth = json.loads((sim / "case_000000.json").read_text())
    assert res.orientation == truth["anterior_side"]
    assert res.spacing_mm == pytest.approx(0.35, rel=1e-3)
    d = case_document(res)
    assert {"spine", "band", "timings", "qc", "reader"} <= set(d)
    assert set(d["spine"]["vertebrae"]) >= {"L1", "L2", "L3", "L4"}
    # PNG input has no spacing: scale estimated from vertebral size and flagged
    res_png = scorer.score(sim / "case_000000.png")
    assert res_png.status == "warning"
    assert "spacing_unknown" in res_png.qc_flags
    assert case_document(res_png)["band"]["scale_estimated"] is True


def test_band_is_extracted_at_the_score_models_resolution(sim: Path, scorer: Scorer) -> None:
    # A model trained on another band resolution gets bands of its own shape (regression: the
    # pipeline used to extract the default 128 x 128 band whatever the model).
    geo = BandGeometry(rows_per_level=16, mm_per_col=1.0)
    net = ScoreNet(NetworkConfig(head="segments", layers=(1, 1, 1, 1)))
    model = ScoreModel(net.eval(), ScoreModelConfig(network=net.config, band=geo))
    other = Scorer(view_model=False, spine_model=scorer.spine_model, score_model=model)
    res = other.score(sim / "case_000000.dcm")
    assert res.status in ("ok", "warning"), res.error
    assert case_document(res)["band"]["geometry"]["rows_per_level"] == 16
    assert case_document(res)["band"]["geometry"]["shape"] == [64, 64]


def test_bad_file_fails_cleanly(tmp_path: Path, scorer: Scorer) -> None:
    bad = tmp_path / "junk.dcm"
    bad.write_bytes(b"not a dicom at all" * 10)
    res = scorer.score(bad)
    assert res.status == "failed" and res.error_code == "unreadable"
    assert "junk.dcm" in res.error
    with pytest.raises(ValueError):
        scorer.score(bad, raise_errors=True)


def test_batch_isolates_failures_resumes_and_writes_outputs(
    sim: Path, scorer: Scorer, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"DICM" * 40)
    files = [str(sim / f"case_00000{i}.dcm") for i in range(3)] + [str(bad)]
    items = collect_inputs(files)
    out = tmp_path / "out"
    kw = {
        "spine_model": scorer.spine_model,
        "score_model": scorer.score_model,
        "groups": "ckd",
        "view_model": False,
    }
    s1 = score_batch(items[:2], out, kw, overlay=True)
    assert s1.counts["failed"] == 0 and s1.n_skipped == 0
    s2 = score_batch(items, out, kw, overlay=True)  # resume: 2 skipped, 2 new
    assert s2.n_skipped == 2
    rows = read_results(out / "results.csv")
    with (out / "results.csv").open() as f:
        assert tuple(next(csv.reader(f))) == RESULT_COLUMNS
    assert [r["file"] for r in rows] == [it.name for it in items]  # nothing duplicated
    assert [r["status"] for r in rows][-1] == "failed"
    assert [r["error_code"] for r in rows] == ["", "", "", "unreadable"]
    assert "broken.dcm" in rows[-1]["error"]
    assert s2.counts["failed"] == 1
    for it in items:
        assert (out / "cases" / f"{case_stem(it.name)}.json").is_file()
    overlay = out / "overlays" / f"{case_stem(items[0].name)}.png"
    assert Image.open(overlay).size[0] > 100
    run = json.loads((out / "run.json").read_text())["runs"][-1]
    assert sum(run["counts"].values()) == 4 and run["counts"]["failed"] == 1
    assert run["finished"] and run["n_skipped_already_done"] == 2


def test_models_info_hashes_the_weights_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import aacscore.pipeline as pipeline

    calls: list[str] = []
    real = pipeline.sha256_file

    def counting(path: Path) -> str:
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(pipeline, "sha256_file", counting)
    scorer = pipeline.Scorer()
    first = scorer.models_info()
    n = len(calls)
    assert n >= 4 and set(first) == {"spine", "score", "view", "quality"}
    first["score"]["sha256"].clear()  # callers get a copy
    second = scorer.models_info()
    assert len(calls) == n and second["score"]["sha256"]


class _FakeModel:
    """A model that names its weight files (nested, as nnU-Net's folds are)."""

    def __init__(self, folder: Path, files: list[Path]) -> None:
        self.folder = folder
        self.files = files

    def weight_files(self) -> list[Path]:
        return self.files


def test_models_info_hashes_the_models_weight_files(tmp_path: Path) -> None:
    import hashlib

    from aacscore.pipeline import model_weights_info

    (tmp_path / "fold_0").mkdir()
    a, b = tmp_path / "fold_0" / "checkpoint_final.pth", tmp_path / "plans.json"
    a.write_bytes(b"weights")
    b.write_text("{}")
    (tmp_path / "ignored.safetensors").write_bytes(b"not listed")
    fake = _FakeModel(tmp_path, [a, b])
    scorer = Scorer(view_model=False, spine_model=fake, score_model=fake)  # type: ignore[arg-type]
    info = scorer.models_info()
    expected = {
        "path": str(tmp_path),
        "sha256": {
            "fold_0/checkpoint_final.pth": hashlib.sha256(b"weights").hexdigest(),
            "plans.json": hashlib.sha256(b"{}").hexdigest(),
        },
    }
    assert info == {"spine": expected, "score": expected}
    # without weight_files(): the *.safetensors of the folder attribute
    legacy = type("Legacy", (), {"model_dir": tmp_path})()
    assert list(model_weights_info(legacy)["sha256"]) == ["ignored.safetensors"]
    assert model_weights_info(object()) == {"path": None}


def test_result_carries_typed_stages_and_case_json_is_built_from_them(
    sim: Path, scorer: Scorer
) -> None:
    from aacscore.aorta.roi import Band
    from aacscore.io import RadiographInfo
    from aacscore.qc import QCReport
    from aacscore.score.predict import ScorePrediction

    res = scorer.score(sim / "case_000000.dcm")
    st = res.stages
    assert st is not None and isinstance(res.status, Status)
    assert isinstance(st.radiograph, RadiographInfo) and st.radiograph.header is not None
    assert isinstance(st.qc, QCReport) and isinstance(st.spine, SpineResult)
    assert isinstance(st.band, Band) and isinstance(st.prediction, ScorePrediction)
    assert list(st.timings) == [
        "read_s",
        "qc_s",
        "spine_s",
        "band_s",
        "score_s",
        "quality_s",
        "total_s",
    ]
    doc = case_document(res)
    assert list(doc)[len(RESULT_KEYS) :] == [
        "aacscore_version", "groups", "reader", "qc", "header", "spine", "field", "band",
        "band_coverage", "timings", "prediction",
    ]  # fmt: skip
    assert doc["field"]["code"] is None and doc["band_coverage"]["code"] is None
    assert doc["header"]["view"] == "lateral" and doc["header"]["code"] is None
    assert doc["spine"]["bounds"] == json.loads(json.dumps(st.spine.to_dict()["bounds"]))
    assert doc["reader"]["source"] == "dicom" and doc["qc"]["flags"] == list(st.qc.flags)
    assert doc["prediction"]["aac24"] == pytest.approx(res.aac24)
    assert len(doc["band"]["outline_film_xy"]) >= 64
    json.dumps(doc, allow_nan=False)
    # everything pickles (worker processes); the light copy carries no stages
    back = pickle.loads(pickle.dumps(res))
    assert back == res and back.stages is not None
    assert res.without_stages().stages is None and res.without_stages() == res


def test_failed_stage_keeps_the_stages_that_ran(sim: Path, scorer: Scorer) -> None:
    class NoSpine:
        def predict(self, radiograph: Radiograph) -> SpineResult:
            from aacscore.vertebrae import SpineError

            raise SpineError("no vertebrae", "film")

    other = Scorer(view_model=False, spine_model=NoSpine(), score_model=scorer.score_model)  # type: ignore[arg-type]
    res = other.score(sim / "case_000000.dcm")
    assert res.status is Status.FAILED and "no vertebrae" in res.error
    assert res.error == f"{res.file}: no vertebrae"  # the film named once, by the pipeline
    assert res.error_code is ErrorCode.IMPLAUSIBLE_SPINE  # SpineError's default code
    doc = case_document(res)
    stage_keys = ["aacscore_version", "groups", "reader", "qc", "header", "timings"]
    assert list(doc)[len(RESULT_KEYS) :] == stage_keys
    assert list(doc["timings"]) == ["read_s", "qc_s"]


def test_case_stem_reads_like_the_case_key() -> None:
    assert case_stem("/data/p1/P001.dcm").startswith("P001_")
    assert case_stem("/data/P001.DCM.gz").startswith("P001_")
    assert case_stem("batch.zip:sub/IM 0001.dcm").startswith("IM_0001_")
    assert case_stem("1.2.840.113619.2.55").startswith("1.2.840.113619.2.55_")
    assert case_stem("/a/x.dcm") != case_stem("/b/x.dcm")  # the hash keeps stems unique
    assert case_stem("").startswith("case_")


def test_timed_records_only_what_finished() -> None:
    from aacscore._timing import timed

    timings: dict[str, float] = {}
    with timed(timings, "a_s"):
        pass
    with pytest.raises(KeyError), timed(timings, "b_s"):
        raise KeyError("x")
    assert list(timings) == ["a_s"] and timings["a_s"] >= 0.0


# --- error codes of each stage and the DICOM header gate -------------------------------------


class _Raises:
    """A spine or score model that raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def predict(self, *args: object, **kwargs: object) -> SpineResult:
        raise self.error


@pytest.mark.parametrize(
    ("stage", "error", "code"),
    [
        ("spine", ValueError("no label"), ErrorCode.SPINE_NOT_FOUND),
        ("spine", "spine_not_found", ErrorCode.SPINE_NOT_FOUND),
        ("band", "band_outside_film", ErrorCode.BAND_OUTSIDE_FILM),
        ("band", ValueError("bad"), ErrorCode.BAND_FAILED),
        ("score", ValueError("NaN grades"), ErrorCode.SCORE_FAILED),
    ],
)
def test_each_stage_fails_with_its_code(
    sim: Path,
    scorer: Scorer,
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
    error: Exception | str,
    code: ErrorCode,
) -> None:
    from aacscore.aorta.roi import BandError
    from aacscore.vertebrae import SpineError

    spine, score = scorer.spine_model, scorer.score_model
    if stage == "spine":
        exc = error if isinstance(error, Exception) else SpineError("nothing", code=error)
        spine = _Raises(exc)  # type: ignore[assignment]
    elif stage == "score":
        assert isinstance(error, Exception)
        monkeypatch.setattr(score, "predict", _Raises(error).predict)
    else:
        exc = error if isinstance(error, Exception) else BandError("off the film", code=error)
        monkeypatch.setattr(Scorer, "_band", _Raises(exc).predict)
    res = Scorer(view_model=False, spine_model=spine, score_model=score).score(
        sim / "case_000000.dcm"
    )
    assert res.status is Status.FAILED and res.error_code is code, res.error
    assert res.error.startswith(str(sim / "case_000000.dcm"))
    assert read_row(res)["error_code"] == code.value


def read_row(res: object) -> dict[str, str]:
    from aacscore.results import Result

    assert isinstance(res, Result)
    return res.csv_row()


def _retagged(sim: Path, tmp_path: Path, **attrs: str) -> Path:
    import pydicom

    ds = pydicom.dcmread(sim / "case_000000.dcm")
    for key, value in attrs.items():
        setattr(ds, key, value)
    out = tmp_path / f"{'_'.join(attrs.values()).lower()}.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.mark.parametrize(
    ("attrs", "code", "says"),
    [
        ({"ViewPosition": "AP"}, ErrorCode.WRONG_VIEW, "ViewPosition=AP (not a lateral film)"),
        ({"BodyPartExamined": "CHEST"}, ErrorCode.WRONG_REGION, "BodyPartExamined=CHEST"),
        ({"Modality": "MR"}, ErrorCode.NOT_RADIOGRAPH, "Modality=MR"),
    ],
)
def test_a_header_that_says_not_lateral_lumbar_refuses_unless_ignored(
    sim: Path,
    scorer: Scorer,
    tmp_path: Path,
    attrs: dict[str, str],
    code: ErrorCode,
    says: str,
) -> None:
    film = _retagged(sim, tmp_path, **attrs)
    res = scorer.score(film)
    assert res.status is Status.FAILED and res.error_code is code
    assert res.error.startswith(f"{film}: the DICOM header says {says}")
    assert res.error.endswith("; use --ignore-header to score it anyway")
    assert res.stages is not None and res.stages.spine is None  # refused before the models
    assert res.stages.header is not None and res.stages.header.code is code
    assert case_document(res)["header"]["code"] == code.value
    with pytest.raises(ValueError, match="ignore-header"):
        scorer.score(film, raise_errors=True)
    ignoring = Scorer(
        view_model=False,
        spine_model=scorer.spine_model,
        score_model=scorer.score_model,
        ignore_header=True,
    )
    scored = ignoring.score(film)
    assert scored.status is Status.WARNING and scored.error_code is None, scored.error
    assert "header_ignored" in scored.qc_flags and scored.aac24 is not None
    assert scored.stages is not None and scored.stages.header is not None
    assert scored.stages.header.code is code  # the evidence is kept
    # the simulator's own header (lateral, LSPINE, DX/CR) is not refused nor flagged
    plain = ignoring.score(sim / "case_000000.dcm")
    assert plain.ok and "header_ignored" not in plain.qc_flags


def test_spine_flags_are_added_to_the_result(
    sim: Path, scorer: Scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Flagged:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def predict(self, radiograph: Radiograph) -> object:
            spine = self.inner.predict(radiograph)  # type: ignore[attr-defined]

            class WithFlags:
                flags = ("level_uncertain",)

                def __getattr__(self, name: str) -> object:
                    return getattr(spine, name)

            return WithFlags()

    other = Scorer(
        view_model=False, spine_model=Flagged(scorer.spine_model), score_model=scorer.score_model
    )  # type: ignore[arg-type]
    res = other.score(sim / "case_000000.dcm")
    assert res.status is Status.WARNING and "level_uncertain" in res.qc_flags, res.error
    assert "spine_warning" not in res.qc_flags
