"""nnU-Net v2 export layout (checked against dataset_format.md) and the optional predictor."""

from __future__ import annotations

import builtins
import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

import aacscore.spine.nnunet as nnunet_module
from aacscore import __version__
from aacscore.aorta.roi import BandGeometry
from aacscore.cli import app
from aacscore.io import Radiograph, read_radiograph
from aacscore.kauppila import SEGMENTS
from aacscore.outputs.case_json import case_document
from aacscore.pipeline import Scorer
from aacscore.score.network import NetworkConfig, ScoreNet
from aacscore.score.predict import ScoreModel, ScoreModelConfig
from aacscore.simulate import simulate_case, write_case
from aacscore.simulate.anatomy import LABELS as SIMULATOR_LABELS
from aacscore.spine.nnunet import (
    NnUNetSpineModel,
    NnUNetUnavailableError,
    downsize_box,
    recorded_max_side,
)
from aacscore.spine.predict import SpineResult, load_spine_model
from aacscore.training.nnunet_export import dataset_folder_name, dataset_json, export_nnunet
from aacscore.vertebrae import DISC_NAMES, LABEL_VALUES
from tests.spine.spine_synth import write_dataset

# nnU-Net v2 documentation (dataset_format.md): required dataset.json keys and their meaning
REQUIRED_KEYS = {"channel_names", "labels", "numTraining", "file_ending"}


def _check_layout(root: Path, n: int) -> dict[str, Any]:
    ds = json.loads((root / "dataset.json").read_text())
    assert REQUIRED_KEYS <= set(ds)
    assert ds["channel_names"] == {"0": "X-ray"}  # not "CT": per-image z-scoring
    labels = ds["labels"]
    assert labels["background"] == 0
    # consecutive integers starting at 0, names matching the simulator's label values
    assert sorted(labels.values()) == list(range(len(labels)))
    assert {k: labels[k] for k in ("L1", "L2", "L3", "L4", "L5", "T12", "S1")} == {
        "L1": 1,
        "L2": 2,
        "L3": 3,
        "L4": 4,
        "L5": 5,
        "T12": 6,
        "S1": 7,
    }
    assert ds["numTraining"] == n
    assert ds["file_ending"] == ".png"
    images = sorted((root / "imagesTr").iterdir())
    segs = sorted((root / "labelsTr").iterdir())
    assert len(images) == len(segs) == n
    for img, seg in zip(images, segs, strict=True):
        # case_identifier_XXXX.png with channel 0000; segmentation case_identifier.png
        assert img.name.endswith("_0000.png")
        assert seg.name == img.name[: -len("_0000.png")] + ".png"
        a, b = np.asarray(Image.open(img)), np.asarray(Image.open(seg))
        assert a.shape == b.shape and a.dtype == np.uint16 and b.dtype == np.uint8
        assert int(b.max()) <= 7
    return ds


def test_export_layout(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "sim", 3)
    summary = export_nnunet(data, tmp_path / "raw", 501)
    assert summary.dataset_dir == tmp_path / "raw" / "Dataset501_AACSpine"
    _check_layout(summary.dataset_dir, 3)
    with pytest.raises(ValueError, match="1-999"):
        dataset_folder_name(1000)


def test_export_downsizes_and_canonicalises(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "sim", 3)
    summary = export_nnunet(data, tmp_path / "raw", 7, max_side=48, canonical=True)
    assert summary.dataset_dir.name == "Dataset007_AACSpine"
    seg = np.asarray(Image.open(summary.dataset_dir / "labelsTr" / "case_000002.png"))
    assert max(seg.shape) == 48
    # case 2 is mirrored in the source; canonical export puts the bodies' anterior side left:
    # the (bright, unlabelled) posterior elements are right of L3
    img = np.asarray(Image.open(summary.dataset_dir / "imagesTr" / "case_000002_0000.png"))
    cols = np.nonzero((seg == 3).any(axis=0))[0]
    rows = np.nonzero((seg == 3).any(axis=1))[0]
    band = img[rows.min() : rows.max() + 1].astype(float)
    assert (
        band[:, cols.max() + 1 : cols.max() + 5].mean()
        > band[:, max(cols.min() - 5, 0) : cols.min()].mean()
    )


def test_cli_export_nnunet(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "sim", 2)
    res = CliRunner().invoke(app, ["export-nnunet", str(data), str(tmp_path / "raw"), "--id", "12"])
    assert res.exit_code == 0, res.output
    _check_layout(tmp_path / "raw" / "Dataset012_AACSpine", 2)
    bad = CliRunner().invoke(
        app, ["export-nnunet", str(tmp_path / "nope"), str(tmp_path / "raw"), "--id", "12"]
    )
    assert bad.exit_code == 1


def test_nnunet_model_without_nnunet_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("nnunetv2"):
            raise ImportError("No module named 'nnunetv2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(NnUNetUnavailableError, match=r"pip install 'aacscore\[nnunet\]'"):
        load_spine_model(f"nnunet:{tmp_path}")
    with pytest.raises(ImportError):
        NnUNetSpineModel.load(tmp_path)


# -------------------------------------------------------------------------------------------
# The prediction path, with a stand-in ``nnunetv2`` package (nnU-Net v2 is not installed here)
# -------------------------------------------------------------------------------------------

# nnU-Net v2's nnUNetPredictor.__init__ keywords (nnunetv2/inference/predict_from_raw_data.py)
PREDICTOR_KEYWORDS = frozenset(
    {
        "tile_step_size",
        "use_gaussian",
        "use_mirroring",
        "perform_everything_on_device",
        "device",
        "verbose",
        "verbose_preprocessing",
        "allow_tqdm",
    }
)
CORNER_TOLERANCE_MM = 3.0


@dataclass(frozen=True)
class Film:
    """A simulated film as written to disk and read back, with its annotations."""

    path: Path
    radiograph: Radiograph
    labels: np.ndarray  # the simulator's <stem>_labels.png
    truth: dict[str, Any]  # the simulator's <stem>.json


def _simulate_film(out: Path, mirror: bool) -> Film:
    case = simulate_case(3, 0, spacing_mm=0.35, mirror=mirror)
    write_case(case, out, "dicom")
    path = out / f"{case.name}.dcm"
    truth = json.loads((out / f"{case.name}.json").read_text())
    labels = np.asarray(Image.open(out / truth["files"]["labels"]))
    return Film(path, read_radiograph(path), labels, truth)


@dataclass
class PredictorLog:
    """What the stand-in predictors were given."""

    init_kwargs: list[dict[str, Any]] = field(default_factory=list)
    init_folder: list[tuple[str, Any, str]] = field(default_factory=list)
    loaded_folds: list[tuple[int | str, ...]] = field(default_factory=list)
    predict_calls: int = 0
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class Exported:
    """A film as ``export_nnunet(max_side=...)`` wrote it: what nnU-Net was trained on."""

    image: np.ndarray  # imagesTr PNG as float [0, 1]
    labels: np.ndarray  # labelsTr PNG
    dataset_json: str  # the dataset.json text


def auto_detect_available_folds(folder: Path, checkpoint_name: str) -> list[int]:
    """nnunetv2's ``nnUNetPredictor.auto_detect_available_folds``: the ``fold_*`` subfolders
    (sorted, ``fold_all`` excluded) that hold the checkpoint, as integers."""
    names = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name.startswith("fold_"))
    names = [n for n in names if n != "fold_all" and (folder / n / checkpoint_name).is_file()]
    return [int(n.split("_")[-1]) for n in names]


def _install_nnunet(
    monkeypatch: pytest.MonkeyPatch,
    films: list[Film],
    max_side: int | None = None,
    exports: list[Exported] | None = None,
) -> PredictorLog:
    """Inject ``nnunetv2.inference.predict_from_raw_data.nnUNetPredictor``: a "perfect" nnU-Net
    that returns the true label map of whichever film it is given.

    With ``max_side`` it was trained on films exported with that ``max_side``: it insists on being
    given one of ``exports``' images (longest side ``max_side``) and returns that export's labels.
    """
    log = PredictorLog()
    # the simulator's label values (what ``<stem>_labels.png`` holds), by body name
    sim_name_of = {v: k for k, v in SIMULATOR_LABELS.items()}

    class PerfectPredictor:
        def __init__(
            self,
            *,
            tile_step_size: float = 0.5,
            use_gaussian: bool = True,
            use_mirroring: bool = True,
            perform_everything_on_device: bool = True,
            device: torch.device | None = None,
            verbose: bool = False,
            verbose_preprocessing: bool = False,
            allow_tqdm: bool = True,
        ) -> None:
            kwargs = {
                "tile_step_size": tile_step_size,
                "use_gaussian": use_gaussian,
                "use_mirroring": use_mirroring,
                "perform_everything_on_device": perform_everything_on_device,
                "device": device,
                "verbose": verbose,
                "verbose_preprocessing": verbose_preprocessing,
                "allow_tqdm": allow_tqdm,
            }
            assert set(kwargs) == PREDICTOR_KEYWORDS
            log.init_kwargs.append(kwargs)
            self.channels: dict[str, int] | None = None

        def initialize_from_trained_model_folder(
            self,
            model_training_output_dir: str,
            use_folds: tuple[int | str, ...] | None,
            checkpoint_name: str = "checkpoint_final.pth",
        ) -> None:
            # as nnunetv2's nnUNetPredictor.initialize_from_trained_model_folder: folds
            # auto-detected when None, json loaded, then one torch.load per fold
            folder = Path(model_training_output_dir)
            log.init_folder.append((model_training_output_dir, use_folds, checkpoint_name))
            if use_folds is None:
                use_folds = auto_detect_available_folds(folder, checkpoint_name)
            for name in ("dataset.json", "plans.json"):
                if not (folder / name).is_file():
                    raise FileNotFoundError(folder / name)
            if isinstance(use_folds, str):
                use_folds = (use_folds,)
            loaded: list[int | str] = []
            for f in use_folds:
                f = int(f) if f != "all" else f
                if not (folder / f"fold_{f}" / checkpoint_name).is_file():  # torch.load fails
                    raise FileNotFoundError(folder / f"fold_{f}" / checkpoint_name)
                loaded.append(f)
            if not loaded:
                # nnU-Net reads the configuration from the first checkpoint it loads
                raise UnboundLocalError(
                    "cannot access local variable 'configuration_name' where it is not "
                    "associated with a value"
                )
            log.loaded_folds.append(tuple(loaded))
            # nnU-Net's output channels are the dataset.json label values
            self.channels = json.loads((folder / "dataset.json").read_text())["labels"]

        def predict_single_npy_array(
            self,
            input_image: np.ndarray,
            image_properties: dict[str, Any],
            segmentation_previous_stage: np.ndarray | None = None,
            output_file_truncated: str | None = None,
            save_or_return_probabilities: bool = False,
        ) -> Any:
            assert self.channels is not None, "predictor not initialised"
            # NaturalImage2DIO convention for 2-D images: (channels, 1, rows, cols), spacing 999
            assert isinstance(input_image, np.ndarray)
            assert input_image.ndim == 4 and input_image.shape[:2] == (1, 1)
            assert np.issubdtype(input_image.dtype, np.floating)
            assert set(image_properties) == {"spacing"}
            assert [float(s) for s in image_properties["spacing"]] == [999.0, 1.0, 1.0]
            assert segmentation_previous_stage is None and output_file_truncated is None
            log.predict_calls += 1
            img = input_image[0, 0]
            log.input_shapes.append(img.shape)
            if max_side is None:
                match = [f for f in films if np.array_equal(f.radiograph.pixels, img)]
                assert match, "input is not one of the films as read (altered or mirrored?)"
                sim = match[0].labels
            else:
                assert max(img.shape) == max_side, img.shape
                # the export's resampling, up to its 16-bit quantisation
                same = [
                    e.labels
                    for e in exports or []
                    if e.image.shape == img.shape and np.abs(e.image - img).max() < 1e-5
                ]
                assert same, "input is not a film downsized as export_nnunet downsizes it"
                sim = same[0]
            rows, cols = sim.shape
            n = len(self.channels)
            onehot = np.zeros((n, rows, cols), dtype=np.float32)
            onehot[self.channels["background"]] = 1.0
            for value, name in sim_name_of.items():
                m = sim == value
                onehot[self.channels["background"]][m] = 0.0
                onehot[self.channels[name]][m] = 1.0
            # a network's soft boundaries: smoothed one-hot, renormalised
            probs = ndimage.gaussian_filter(onehot, sigma=(0, 1.0, 1.0))
            probs /= probs.sum(axis=0, keepdims=True)
            seg = probs.argmax(axis=0).astype(np.uint8)[None]
            if save_or_return_probabilities:
                return seg, probs[:, None].astype(np.float32)
            return seg

    root = types.ModuleType("nnunetv2")
    inference = types.ModuleType("nnunetv2.inference")
    module = types.ModuleType("nnunetv2.inference.predict_from_raw_data")
    root.__path__ = []
    inference.__path__ = []
    module.nnUNetPredictor = PerfectPredictor  # type: ignore[attr-defined]
    root.inference = inference  # type: ignore[attr-defined]
    inference.predict_from_raw_data = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nnunetv2", root)
    monkeypatch.setitem(sys.modules, "nnunetv2.inference", inference)
    monkeypatch.setitem(sys.modules, "nnunetv2.inference.predict_from_raw_data", module)
    return log


@pytest.fixture
def results_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A trained-model folder as nnU-Net writes it (dataset.json as ``export_nnunet`` writes it),
    and no aacscore orientation classifier (the image cue decides the side)."""
    folder = tmp_path / "Dataset501_AACSpine" / "nnUNetTrainer__nnUNetPlans__2d"
    for fold, ckpt in ((0, "checkpoint_final.pth"), (1, "checkpoint_best.pth")):
        (folder / f"fold_{fold}").mkdir(parents=True)
        (folder / f"fold_{fold}" / ckpt).write_bytes(b"")
    (folder / "dataset.json").write_text(json.dumps(dataset_json(2)))
    (folder / "plans.json").write_text(json.dumps({"configurations": {"2d": {}}}))
    monkeypatch.setattr(nnunet_module, "default_model_dir", lambda: tmp_path / "no_weights")
    return folder


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Film]:
    out = tmp_path_factory.mktemp("films")
    left = _simulate_film(out / "left", mirror=False)
    right = _simulate_film(out / "right", mirror=True)
    assert (left.truth["anterior_side"], right.truth["anterior_side"]) == ("left", "right")
    return {"left": left, "right": right}


def _corner_errors_mm(res: SpineResult, film: Film, swap_sides: bool = False) -> dict[str, float]:
    sy, sx = film.truth["spacing_mm"]
    out: dict[str, float] = {}
    for name in ("L1", "L2", "L3", "L4", "L5"):
        truth = np.asarray(film.truth["vertebrae"][name]["corners"])
        if swap_sides:  # AS<->PS, PI<->AI: what the other anterior side would call them
            truth = truth[[1, 0, 3, 2]]
        d = res.vertebrae[name].corners - truth
        out[name] = float(np.hypot(d[:, 0] * sx, d[:, 1] * sy).max())
    return out


def _check_geometry(res: SpineResult, film: Film, side: str) -> None:
    assert res.anterior_side == side
    assert res.shape == film.labels.shape and res.labels.shape == film.labels.shape
    assert res.spacing_mm == pytest.approx((0.35, 0.35))
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(res.vertebrae)
    errors = _corner_errors_mm(res, film)
    assert max(errors.values()) < CORNER_TOLERANCE_MM, errors
    # segment bounds: through the true disc midpoints, along the true end-plates, anteriorly
    assert set(DISC_NAMES) <= set(res.bounds)
    corners = {n: np.asarray(v["corners"]) for n, v in film.truth["vertebrae"].items()}
    sy, sx = film.truth["spacing_mm"]
    for disc in DISC_NAMES:
        upper, lower = (corners[n] for n in disc.split("/"))
        mid = (upper[2] + upper[3] + lower[0] + lower[1]) / 4.0
        d = (upper[3] - upper[2]) / np.linalg.norm(upper[3] - upper[2]) + (
            lower[0] - lower[1]
        ) / np.linalg.norm(lower[0] - lower[1])  # PI->AI and PS->AS: anteriorly
        bound = res.bounds[disc]
        assert bound.name == disc
        off = bound.point - mid
        assert np.hypot(off[0] * sx, off[1] * sy) < CORNER_TOLERANCE_MM, disc
        assert float(np.dot(bound.direction, d / np.linalg.norm(d))) > 0.99, disc
    assert (res.bounds["L2/L3"].direction[0] < 0) == (side == "left")
    up, low = res.segment_bounds("L1")
    assert (up.name, low.name) == ("T12/L1", "L1/L2")
    # the label map comes back in the film's own orientation with the aacscore label values
    for name in ("L1", "L3"):
        a = res.labels == LABEL_VALUES[name]
        b = film.labels == SIMULATOR_LABELS[name]
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.95


def test_nnunet_load_passes_documented_arguments(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path
) -> None:
    log = _install_nnunet(monkeypatch, [])
    model = load_spine_model(f"nnunet:{results_folder}")
    assert isinstance(model, NnUNetSpineModel)
    assert model.folder == results_folder and model.orientation_model is None
    assert log.init_kwargs == [
        {
            "tile_step_size": 0.5,
            "use_gaussian": True,
            "use_mirroring": True,
            "perform_everything_on_device": False,  # cpu
            "device": torch.device("cpu"),
            "verbose": False,
            "verbose_preprocessing": False,
            "allow_tqdm": False,
        }
    ]
    assert log.init_folder == [(str(results_folder), None, "checkpoint_final.pth")]

    NnUNetSpineModel.load(results_folder, folds=(1,), checkpoint="checkpoint_best.pth")
    assert log.init_folder[-1] == (str(results_folder), (1,), "checkpoint_best.pth")
    NnUNetSpineModel.load(results_folder, folds=("0",), device="cuda:0")
    assert log.init_kwargs[-1]["device"] == torch.device("cuda:0")
    assert log.init_kwargs[-1]["perform_everything_on_device"] is True
    assert log.init_folder[-1] == (str(results_folder), ("0",), "checkpoint_final.pth")
    # no folds given: nnU-Net uses those holding the checkpoint (fold_1 for the best one)
    best = NnUNetSpineModel.load(results_folder, checkpoint="checkpoint_best.pth")
    assert log.init_folder[-1] == (str(results_folder), None, "checkpoint_best.pth")
    assert log.loaded_folds[-1] == (1,) and best.folds == (1,)
    assert log.loaded_folds == [(0,), (1,), (0,), (1,)]
    with pytest.raises(FileNotFoundError, match="fold_0"):  # nnU-Net's own error passes through
        NnUNetSpineModel.load(results_folder, folds=(0,), checkpoint="checkpoint_best.pth")
    # no fold holds the checkpoint: refused before nnU-Net (which would fail obscurely)
    calls = len(log.init_folder)
    with pytest.raises(FileNotFoundError, match=r"no fold_\* folder holds checkpoint_latest"):
        NnUNetSpineModel.load(results_folder, checkpoint="checkpoint_latest.pth")
    assert len(log.init_folder) == calls
    missing = results_folder.parent / "nope"
    with pytest.raises(FileNotFoundError, match=r"nope: nnU-Net results folder not found"):
        NnUNetSpineModel.load(missing)
    assert log.predict_calls == 0


@pytest.mark.parametrize("side", ["left", "right"])
def test_nnunet_predict_finds_vertebrae_and_orientation(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path, films: dict[str, Film], side: str
) -> None:
    film = films[side]
    log = _install_nnunet(monkeypatch, list(films.values()))
    model = NnUNetSpineModel.load(results_folder)
    res = model.predict(film.radiograph)
    assert isinstance(res, SpineResult)
    assert log.predict_calls == 1
    # a simulated film has a sacrum behind the L4-L5 line: it decides the side
    assert res.orientation.method == "sacrum"
    assert res.orientation.sacrum is not None
    assert (res.orientation.sacrum > 0) == (side == "left")
    assert not any("orientation" in w for w in res.warnings)
    _check_geometry(res, film, side)
    assert "network_s" in res.timings


@pytest.mark.parametrize("side", ["left", "right"])
def test_nnunet_predict_honours_given_anterior_side(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path, films: dict[str, Film], side: str
) -> None:
    film = films[side]
    _install_nnunet(monkeypatch, list(films.values()))
    model = NnUNetSpineModel.load(results_folder)
    res = model.predict(film.radiograph, anterior_side=side)
    assert res.orientation.method == "given"
    _check_geometry(res, film, side)
    # the wrong side is honoured too: anterior and posterior corners trade names
    other = "left" if side == "right" else "right"
    wrong = model.predict(film.radiograph, anterior_side=other, check=False)
    assert wrong.anterior_side == other and wrong.orientation.method == "given"
    errors = _corner_errors_mm(wrong, film, swap_sides=True)
    assert max(errors.values()) < CORNER_TOLERANCE_MM, errors


class StubClassifier:
    """Stands in for aacscore's orientation classifier: a fixed P(anterior right)."""

    def __init__(self, p_right: float) -> None:
        self.p_right = p_right
        self.plans = types.SimpleNamespace(patch_size=(192, 160))
        self.shapes: list[tuple[int, ...]] = []

    def probability_right(self, image: np.ndarray, valid: np.ndarray) -> float:
        self.shapes.append(image.shape)
        assert valid.shape == image.shape
        return self.p_right


def test_nnunet_predict_uses_the_orientation_classifier(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path, films: dict[str, Film]
) -> None:
    _install_nnunet(monkeypatch, list(films.values()))
    model = NnUNetSpineModel.load(results_folder)
    # an unsure classifier defers to the sacrum
    model.orientation_model = StubClassifier(0.6)
    res = model.predict(films["left"].radiograph)
    assert res.orientation.method == "sacrum" and res.anterior_side == "left"
    _check_geometry(res, films["left"], "left")
    # a decisive classifier that disagrees with the sacrum decides, flagged for review
    model.orientation_model = StubClassifier(0.002)
    res = model.predict(films["right"].radiograph, check=False)
    assert res.orientation.method == "classifier" and res.anterior_side == "left"
    assert res.orientation.disagrees_with_sacrum
    assert "orientation_uncertain" in res.flags
    assert any("and the sacrum (anterior right) disagree" in w for w in res.warnings)
    # without a clear sacrum the classifier decides
    monkeypatch.setattr("aacscore.spine.nnunet.sacrum_cue", lambda labels: None)
    clf = StubClassifier(0.98)
    model.orientation_model = clf
    res = model.predict(films["right"].radiograph)
    assert clf.shapes == [(192, 160)]  # the film letterboxed to the classifier's input
    assert res.orientation.method == "classifier"
    assert res.orientation.probability_right == pytest.approx(0.98)
    _check_geometry(res, films["right"], "right")
    # an unsure classifier defers to the image cue
    model.orientation_model = StubClassifier(0.6)
    res = model.predict(films["left"].radiograph)
    assert res.orientation.method == "posterior-elements cue"
    _check_geometry(res, films["left"], "left")


def test_scorer_runs_end_to_end_on_an_nnunet_model(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path, films: dict[str, Film]
) -> None:
    log = _install_nnunet(monkeypatch, list(films.values()))
    torch.manual_seed(0)
    net = ScoreNet(NetworkConfig(head="segments", layers=(1, 1, 1, 1)))
    score_model = ScoreModel(net.eval(), ScoreModelConfig(network=net.config, band=BandGeometry()))
    scorer = Scorer(spine_model=f"nnunet:{results_folder}", score_model=score_model)
    for side in ("left", "right"):
        film = films[side]
        res = scorer.score(film.path)
        assert res.status in ("ok", "warning"), res.error
        assert res.grades is not None and set(res.grades) == set(SEGMENTS)
        assert res.aac24 is not None and 0.0 <= res.aac24 <= 24.0
        assert res.orientation == side
        assert res.spacing_mm == pytest.approx(0.35, rel=1e-3)
        spine = case_document(res)["spine"]
        assert set(spine["vertebrae"]) >= {"L1", "L2", "L3", "L4", "L5"}
        assert set(spine["bounds"]) >= set(DISC_NAMES)
    assert isinstance(scorer.spine_model, NnUNetSpineModel)
    assert log.predict_calls == 2 and len(log.init_kwargs) == 1


# -------------------------------------------------------------------------------------------
# max_side: the pixel scale nnU-Net was trained on is kept at prediction time
# -------------------------------------------------------------------------------------------

MAX_SIDE = 448  # the simulated films are 905 x 764 px at 0.35 mm: about 0.7 mm per pixel


def test_export_records_max_side_in_dataset_json(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "sim", 3)
    small = export_nnunet(data, tmp_path / "small", 21, max_side=48)
    ds = _check_layout(small.dataset_dir, 3)  # still a valid nnU-Net dataset.json
    assert ds["aacscore"] == {"version": __version__, "max_side": 48}
    assert recorded_max_side(small.dataset_json) == 48
    for png in (small.dataset_dir / "imagesTr").iterdir():
        assert max(np.asarray(Image.open(png)).shape) == 48
    full = export_nnunet(data, tmp_path / "full", 22)
    ds = _check_layout(full.dataset_dir, 3)
    assert ds["aacscore"] == {"version": __version__, "max_side": None}
    assert recorded_max_side(full.dataset_json) is None
    assert recorded_max_side(tmp_path / "nope.json") is None
    with pytest.raises(ValueError, match="positive"):
        export_nnunet(data, tmp_path / "bad", 23, max_side=0)


def test_downsize_box_gives_the_longest_side_max_side() -> None:
    assert downsize_box((905, 764), None) is None
    assert downsize_box((905, 764), 905) is None  # not larger: left alone
    box = downsize_box((905, 764), MAX_SIDE)
    assert box is not None and box.resized == (448, 378) and box.offset == (0, 0)
    # a narrow film: the longest side is still exactly max_side (not shrunk by the short side)
    narrow = downsize_box((105, 1000), 100)
    assert narrow is not None and narrow.resized == (10, 100)
    with pytest.raises(ValueError, match="positive"):
        downsize_box((905, 764), 0)


@pytest.fixture(scope="module")
def exported(
    films: dict[str, Film], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Exported]:
    """Each film exported with ``max_side=MAX_SIDE``, read back from the PNGs."""
    out: dict[str, Exported] = {}
    for side, film in films.items():
        summary = export_nnunet(
            film.path.parent, tmp_path_factory.mktemp(f"export_{side}"), 501, max_side=MAX_SIDE
        )
        stem = film.path.stem
        img = np.asarray(Image.open(summary.dataset_dir / "imagesTr" / f"{stem}_0000.png"))
        lab = np.asarray(Image.open(summary.dataset_dir / "labelsTr" / f"{stem}.png"))
        out[side] = Exported(
            img.astype(np.float32) / 65535.0, lab, summary.dataset_json.read_text()
        )
    return out


@pytest.mark.parametrize("side", ["left", "right"])
def test_nnunet_predict_downsizes_like_the_export(
    monkeypatch: pytest.MonkeyPatch,
    results_folder: Path,
    films: dict[str, Film],
    exported: dict[str, Exported],
    side: str,
) -> None:
    film = films[side]
    # nnU-Net copies the raw dataset.json into the results folder
    (results_folder / "dataset.json").write_text(exported[side].dataset_json)
    log = _install_nnunet(monkeypatch, [], max_side=MAX_SIDE, exports=list(exported.values()))
    model = NnUNetSpineModel.load(results_folder)
    assert model.max_side == MAX_SIDE
    res = model.predict(film.radiograph)
    assert log.input_shapes == [exported[side].image.shape]
    assert max(log.input_shapes[0]) == MAX_SIDE
    assert res.orientation.method == "sacrum"
    # landmarks, bounds and labels in the film's own (full-resolution) pixels
    _check_geometry(res, film, side)
    given = model.predict(film.radiograph, anterior_side=side)
    assert given.orientation.method == "given"
    assert max(_corner_errors_mm(given, film).values()) < CORNER_TOLERANCE_MM


def test_nnunet_max_side_keyword_overrides_dataset_json(
    monkeypatch: pytest.MonkeyPatch,
    results_folder: Path,
    films: dict[str, Film],
    exported: dict[str, Exported],
    caplog: pytest.LogCaptureFixture,
) -> None:
    film = films["left"]
    # dataset.json records no max_side (full-resolution export): the keyword decides
    log = _install_nnunet(monkeypatch, [], max_side=MAX_SIDE, exports=list(exported.values()))
    model = NnUNetSpineModel.load(results_folder, max_side=MAX_SIDE)
    assert model.max_side == MAX_SIDE
    _check_geometry(model.predict(film.radiograph), film, "left")
    assert max(log.input_shapes[-1]) == MAX_SIDE
    # a keyword that contradicts the recorded value wins, with a warning naming the file
    (results_folder / "dataset.json").write_text(json.dumps(dataset_json(2, max_side=256)))
    with caplog.at_level("WARNING", logger="aacscore.spine.nnunet"):
        model = NnUNetSpineModel.load(results_folder, max_side=MAX_SIDE)
    assert model.max_side == MAX_SIDE
    assert "dataset.json" in caplog.text and "256" in caplog.text
    assert NnUNetSpineModel.load(results_folder).max_side == 256


def test_nnunet_without_max_side_segments_the_full_film(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path, films: dict[str, Film]
) -> None:
    film = films["right"]
    shape = film.labels.shape
    # this stand-in insists on the unaltered film
    log = _install_nnunet(monkeypatch, list(films.values()))
    # a dataset.json from before max_side was recorded (no "aacscore" entry)
    old = {k: v for k, v in dataset_json(2).items() if k != "aacscore"}
    (results_folder / "dataset.json").write_text(json.dumps(old))
    model = NnUNetSpineModel.load(results_folder)
    assert model.max_side is None
    _check_geometry(model.predict(film.radiograph), film, "right")
    # a film no larger than max_side is not resized either
    model = NnUNetSpineModel.load(results_folder, max_side=max(shape))
    _check_geometry(model.predict(film.radiograph), film, "right")
    assert log.input_shapes == [shape, shape]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"max_side": 0}, "positive integer"),
        ({"max_side": "448"}, "positive integer"),
        ("448", "JSON object"),
    ],
)
def test_nnunet_rejects_a_bad_recorded_max_side(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path, entry: Any, problem: str
) -> None:
    _install_nnunet(monkeypatch, [])
    content = dataset_json(2)
    content["aacscore"] = entry
    (results_folder / "dataset.json").write_text(json.dumps(content))
    with pytest.raises(ValueError, match=rf"dataset\.json: .*{problem}"):
        NnUNetSpineModel.load(results_folder)


def test_nnunet_weight_files_are_the_checkpoints_and_json_in_use(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path
) -> None:
    _install_nnunet(monkeypatch, [])
    model = NnUNetSpineModel.load(results_folder)
    names = {p.relative_to(results_folder).as_posix() for p in model.weight_files()}
    assert names == {"dataset.json", "plans.json", "fold_0/checkpoint_final.pth"}
    best = NnUNetSpineModel.load(results_folder, folds=(1,), checkpoint="checkpoint_best.pth")
    names = {p.relative_to(results_folder).as_posix() for p in best.weight_files()}
    assert names == {"dataset.json", "plans.json", "fold_1/checkpoint_best.pth"}
    assert all(p.is_file() for p in best.weight_files())


def test_nnunet_auto_detected_folds_are_the_weight_files(
    monkeypatch: pytest.MonkeyPatch, results_folder: Path
) -> None:
    # a results folder after a 5-fold run where some folds are missing or unfinished:
    # fold_all is never auto-detected; fold_2 has no final checkpoint; fold_10 sorts by name
    for name, ckpt in (("fold_3", True), ("fold_10", True), ("fold_2", False), ("fold_all", True)):
        (results_folder / name).mkdir()
        (results_folder / name / "debug.json").write_text("{}")
        if ckpt:
            (results_folder / name / "checkpoint_final.pth").write_bytes(b"")
    log = _install_nnunet(monkeypatch, [])
    model = NnUNetSpineModel.load(results_folder)
    assert log.init_folder[-1][1] is None  # nnU-Net did the detection
    assert log.loaded_folds == [(0, 10, 3)]
    assert model.folds == log.loaded_folds[-1]
    names = {p.relative_to(results_folder).as_posix() for p in model.weight_files()}
    assert names == {
        "dataset.json",
        "plans.json",
        "fold_0/checkpoint_final.pth",
        "fold_3/checkpoint_final.pth",
        "fold_10/checkpoint_final.pth",
    }
    # fold_all only when asked for
    everything = NnUNetSpineModel.load(results_folder, folds=("all",))
    assert log.loaded_folds[-1] == ("all",)
    names = {p.relative_to(results_folder).as_posix() for p in everything.weight_files()}
    assert names == {"dataset.json", "plans.json", "fold_all/checkpoint_final.pth"}
