"""Fixtures of the batch tests: three simulated DICOM films that differ in height only, what the
real pipeline made of the film (oracle spine, untrained score network) and fake stages that hand
it back, count their calls, raise, or kill their process on one film.

The fakes that travel to worker processes are module-level classes (picklable); monkeypatching
does not cross processes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.uid import generate_uid

from aacscore.aorta.roi import Band, BandGeometry
from aacscore.io import InputItem, Radiograph
from aacscore.pipeline import Scorer
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
    ``fail_rows`` rows, takes two seconds more on one of ``slow_rows`` rows (so that it
    finishes last); counts its calls (in the process it runs in)."""

    def __init__(
        self, spine: SpineResult, fail_rows: int | None = None, slow_rows: int | None = None
    ) -> None:
        self.spine = spine
        self.fail_rows = fail_rows
        self.slow_rows = slow_rows
        self.calls = 0

    def predict(self, radiograph: Radiograph, anterior_side: str | None = None) -> SpineResult:
        self.calls += 1
        if radiograph.shape[0] == self.slow_rows:
            time.sleep(2.0)
        if radiograph.shape[0] == self.fail_rows:
            raise RuntimeError(BOOM)
        return self.spine


class DyingSpine(FakeSpine):
    """Kills its process outright (as the kernel's OOM killer would) on a film of
    ``fail_rows`` rows."""

    def predict(self, radiograph: Radiograph, anterior_side: str | None = None) -> SpineResult:
        if radiograph.shape[0] == self.fail_rows:
            os._exit(1)
        return super().predict(radiograph, anterior_side)


class FakeScore:
    """Score model handing back one precomputed prediction (``band_geometry`` as the real one)."""

    def __init__(self, prediction: ScorePrediction, geometry: BandGeometry) -> None:
        self.prediction = prediction
        self.band_geometry = geometry
        self.calls = 0

    def predict(self, band: Band, groups: Any = "lewis", tta: bool = True) -> ScorePrediction:
        self.calls += 1
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


def rows_of(films: list[Path]) -> list[int]:
    """The height of each film."""
    return [int(pydicom.dcmread(p, stop_before_pixels=True).Rows) for p in films]


def fake_kwargs(
    reference: Reference, fail_rows: int | None = None, spine: type[FakeSpine] = FakeSpine
) -> dict[str, Any]:
    """Scorer arguments with the fake spine and score models."""
    return {
        "spine_model": spine(reference.spine, fail_rows),
        "score_model": FakeScore(reference.prediction, reference.geometry),
        "tta": False,
    }
