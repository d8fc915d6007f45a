"""A small results folder scored by the real batch (fake spine and score stages, as in the batch
tests): one DICOM film with its DICOM SR, one PNG film, one failed input; and the app on it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aacscore.batch import case_stem, score_batch
from aacscore.io import InputItem
from aacscore.pipeline import Scorer
from aacscore.serve.cases import case_id
from tests.batch_fixtures import Reference, fake_kwargs
from tests.batch_fixtures import reference as reference  # fixture


@dataclass(frozen=True)
class Folder:
    out: Path
    dicom: Path
    png: Path
    missing: Path

    @property
    def dicom_id(self) -> str:
        return case_id(str(self.dicom))

    @property
    def png_id(self) -> str:
        return case_id(str(self.png))

    @property
    def missing_id(self) -> str:
        return case_id(str(self.missing))

    @property
    def dicom_stem(self) -> str:
        return case_stem(str(self.dicom))


def scorer_kwargs(reference: Reference) -> dict[str, Any]:
    return {**fake_kwargs(reference), "view_model": False, "quality_reference": False}


@pytest.fixture(scope="module")
def scored(
    simulated_film: dict[str, Path], reference: Reference, tmp_path_factory: pytest.TempPathFactory
) -> Folder:
    films = tmp_path_factory.mktemp("serve_films")
    dicom = Path(shutil.copy(simulated_film["dicom"], films / "patient film.dcm"))
    png = Path(shutil.copy(simulated_film["png"], films / "second.png"))
    missing = films / "gone.png"
    out = tmp_path_factory.mktemp("serve_out")
    items = [InputItem(dicom), InputItem(png), InputItem(missing)]
    score_batch(items, out, scorer_kwargs(reference), jobs=1, dicom_out=True)
    return Folder(out, dicom, png, missing)


@pytest.fixture
def folder(scored: Folder, tmp_path: Path) -> Folder:
    """A fresh copy of the scored folder (its own reviews.sqlite)."""
    out = tmp_path / "out"
    shutil.copytree(scored.out, out)
    return Folder(out, scored.dicom, scored.png, scored.missing)


@pytest.fixture(scope="module")
def scorer(reference: Reference) -> Scorer:
    return Scorer(**scorer_kwargs(reference))
