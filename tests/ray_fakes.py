"""Fake stages for the Ray engine's tests, in a module that does not import PyTorch: a Ray actor
unpickles them, importing this module, and importing torch (as :mod:`tests.batch_fixtures` does)
would make each actor start slowly. They behave as the fakes of :mod:`tests.batch_fixtures`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from aacscore.aorta.roi import Band, BandGeometry
from aacscore.io import InputItem, Radiograph
from aacscore.score.predict import ScorePrediction
from aacscore.spine.predict import SpineResult

BOOM = "simulated crash (device-side assert triggered)"


class Failure(str, Enum):
    """What the fake spine model does on the film of ``fail_rows`` rows."""

    RAISE = "raise"
    """Raises RuntimeError(BOOM)."""
    DIE = "die"
    """Kills its process, every time."""
    DIE_ONCE = "die_once"
    """Kills its process the first time (a marker file remembers), then scores the film."""


class RaySpine:
    """Spine model handing back one precomputed result, failing on one film (see
    :class:`Failure`)."""

    def __init__(
        self,
        spine: SpineResult,
        fail_rows: int | None = None,
        failure: Failure = Failure.RAISE,
        marker: Path | None = None,
    ) -> None:
        self.spine = spine
        self.fail_rows = fail_rows
        self.failure = failure
        self.marker = marker

    def predict(self, radiograph: Radiograph, anterior_side: str | None = None) -> SpineResult:
        if radiograph.shape[0] == self.fail_rows:
            if self.failure is Failure.RAISE:
                raise RuntimeError(BOOM)
            if self.failure is Failure.DIE:
                os._exit(1)
            assert self.marker is not None
            if not self.marker.exists():
                self.marker.write_text("died once")
                os._exit(1)
        return self.spine


class RayScore:
    """Score model handing back one precomputed prediction."""

    def __init__(self, prediction: ScorePrediction, geometry: BandGeometry) -> None:
        self.prediction = prediction
        self.band_geometry = geometry

    def predict(self, band: Band, groups: Any = "lewis", tta: bool = True) -> ScorePrediction:
        return self.prediction


@dataclass(frozen=True)
class ExplodingInput(InputItem):
    """An input whose reader raises an unexpected error (in whichever process reads it)."""

    def read(self, *args: Any, **kwargs: Any) -> Radiograph:
        raise RuntimeError(BOOM)


def ray_kwargs(
    reference: Any,
    fail_rows: int | None = None,
    failure: Failure = Failure.RAISE,
    marker: Path | None = None,
) -> dict[str, Any]:
    """Scorer arguments with the fake models (``reference``: a
    :class:`tests.batch_fixtures.Reference`)."""
    return {
        "spine_model": RaySpine(reference.spine, fail_rows, failure, marker),
        "score_model": RayScore(reference.prediction, reference.geometry),
        "tta": False,
    }
