"""The fallback spine model (:mod:`aacscore.spine.fallback`): when it is asked, which reading
comes back, how it is flagged, and how the shipped folder loads as a pair."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from aacscore.codes import FLAGS, ErrorCode
from aacscore.io import Radiograph
from aacscore.pipeline import Scorer
from aacscore.spine.fallback import FALLBACK_FLAG, FallbackSpineModel, fallback_folder
from aacscore.spine.network import default_model_dir
from aacscore.spine.predict import SpineModel, SpineResult, load_spine_model
from aacscore.vertebrae import Side, SpineError
from tests.spine.spine_synth import make_film
from tests.spine.test_spine_predict import SHAPE, _model_for, _radiograph


@dataclass
class Fake:
    """A spine model that hands back ``result`` (checked or not) or raises ``error`` when
    checked, and records the ``check`` of each call."""

    result: SpineResult
    error: SpineError | None = None
    model_dir: Path | None = None
    backend: str = "fake"
    checks: list[bool] = field(default_factory=list)

    def weight_files(self) -> list[Path]:
        return []

    def predict(
        self, radiograph: Radiograph, anterior_side: str | Side | None = None, check: bool = True
    ) -> SpineResult:
        self.checks.append(check)
        if check and self.error is not None:
            raise self.error
        return self.result


@pytest.fixture(scope="module")
def film() -> tuple[Radiograph, SpineResult]:
    f = make_film(3, shape=SHAPE)
    rad = _radiograph(f)
    res = _model_for(f).predict(rad, anterior_side="left")
    assert "level_uncertain" not in res.flags
    return rad, res


def _implausible() -> SpineError:
    return SpineError("L2: implausible body size", "film.dcm", code=ErrorCode.IMPLAUSIBLE_SPINE)


def test_a_confident_primary_reading_is_used_and_the_fallback_not_asked(
    film: tuple[Radiograph, SpineResult],
) -> None:
    rad, res = film
    primary, second = Fake(res), Fake(replace(res, warnings=("second",)))
    out = FallbackSpineModel(primary, second).predict(rad)
    assert out is res and second.checks == [] and primary.checks == [True]


@pytest.mark.parametrize("why", ["implausible", "level_uncertain"])
def test_the_fallback_reads_what_the_primary_cannot_and_is_flagged(
    film: tuple[Radiograph, SpineResult], why: str
) -> None:
    rad, res = film
    if why == "implausible":
        primary = Fake(res, error=_implausible())
        reason = "spine read by the fallback model: L2: implausible body size"
    else:
        primary = Fake(replace(res, flags=("level_uncertain",)))
        reason = "spine read by the fallback model: the primary model's levels are uncertain"
    theirs = replace(res, warnings=("second's warning",), flags=("fracture_suspected",))
    second = Fake(theirs)
    out = FallbackSpineModel(primary, second).predict(rad)
    assert out.flags == ("fracture_suspected", FALLBACK_FLAG)
    assert out.warnings == ("second's warning", reason)
    assert out.vertebrae is theirs.vertebrae and second.checks == [True]
    assert FALLBACK_FLAG in FLAGS  # a flag of the closed vocabulary (status warning)


def test_a_film_cut_by_the_edge_is_not_asked_again(film: tuple[Radiograph, SpineResult]) -> None:
    rad, res = film
    cut = SpineError("L1 cut by the edge of the film", "film.dcm", code=ErrorCode.FIELD_INCOMPLETE)
    second = Fake(res)
    with pytest.raises(SpineError, match="cut by the edge") as e:
        FallbackSpineModel(Fake(res, error=cut), second).predict(rad)
    assert e.value.code is ErrorCode.FIELD_INCOMPLETE and second.checks == []
    primary = Fake(res, error=cut)
    assert FallbackSpineModel(primary, second).predict(rad, check=False) is res
    assert primary.checks == [True, False] and second.checks == []


def test_when_both_fail_the_primary_error_or_unchecked_reading_comes_back(
    film: tuple[Radiograph, SpineResult],
) -> None:
    rad, res = film
    theirs = SpineError("vertebrae not found: L3", "film.dcm", code=ErrorCode.SPINE_NOT_FOUND)
    primary, second = Fake(res, error=_implausible()), Fake(res, error=theirs)
    pair = FallbackSpineModel(primary, second)
    with pytest.raises(SpineError, match="L2: implausible body size") as e:
        pair.predict(rad)
    assert e.value.code is ErrorCode.IMPLAUSIBLE_SPINE
    unchecked = pair.predict(rad, check=False)  # benchmarks: the primary's reading, unflagged
    assert unchecked is res and primary.checks[-2:] == [True, False]
    assert FALLBACK_FLAG not in unchecked.flags


@pytest.mark.parametrize("flag", ["level_uncertain", "orientation_uncertain"])
def test_an_unsure_fallback_reading_replaces_only_a_failed_primary_reading(
    film: tuple[Radiograph, SpineResult], flag: str
) -> None:
    rad, res = film
    unsure = replace(res, flags=(flag,))
    # the primary's reading failed its checks: the unsure reading is used, its doubt kept
    out = FallbackSpineModel(Fake(res, error=_implausible()), Fake(unsure)).predict(rad)
    assert out.flags == (flag, FALLBACK_FLAG)
    assert "spine read by the fallback model: L2: implausible body size" in out.warnings
    # a plausible but level-uncertain primary reading is not replaced by an unsure one
    uncertain = replace(res, flags=("level_uncertain",))
    assert FallbackSpineModel(Fake(uncertain), Fake(unsure)).predict(rad) is uncertain


def test_an_uncertain_primary_reading_stays_when_the_fallback_fails(
    film: tuple[Radiograph, SpineResult],
) -> None:
    rad, res = film
    uncertain = replace(res, flags=("level_uncertain",))
    out = FallbackSpineModel(Fake(uncertain), Fake(res, error=_implausible())).predict(rad)
    assert out is uncertain


def test_the_shipped_folder_loads_as_a_pair_and_a_folder_without_fallback_alone(
    tmp_path: Path,
) -> None:
    shipped = load_spine_model()
    assert isinstance(shipped, FallbackSpineModel)
    assert shipped.model_dir == default_model_dir()
    second = fallback_folder(default_model_dir())
    assert second is not None and shipped.fallback.model_dir == second
    names = {p.relative_to(default_model_dir()).as_posix() for p in shipped.weight_files()}
    assert {"unet.safetensors", "fallback/unet.safetensors", "fallback/plans.json"} <= names
    alone = tmp_path / "spine"
    shutil.copytree(default_model_dir(), alone, ignore=shutil.ignore_patterns("fallback"))
    assert type(load_spine_model(alone)) is SpineModel
    # the run record and the batch's settings hash cover both models' weights
    info = Scorer(spine_model=None).models_info()["spine"]
    assert "fallback/unet.safetensors" in info["sha256"] and "unet.safetensors" in info["sha256"]


def test_the_pipeline_flags_a_fallback_reading(
    film: tuple[Radiograph, SpineResult], simulated_film: dict[str, Path]
) -> None:
    _, res = film
    real = load_spine_model()
    assert isinstance(real, FallbackSpineModel)
    # a primary that always fails: the shipped fallback model reads the simulated film
    pair = FallbackSpineModel(Fake(res, error=_implausible()), real.fallback)
    result = Scorer(spine_model=pair, tta=False).score(simulated_film["dicom"])
    assert result.status.value == "warning" and FALLBACK_FLAG in result.qc_flags
    assert result.aac24 is not None
