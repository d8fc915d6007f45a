"""Fixtures shared by several test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from aacscore.simulate import simulate_case
from aacscore.simulate.dataset import write_case


@pytest.fixture(scope="session")
def simulated_film(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One simulated film (seed 3, case 0, 0.3 mm) written as DICOM and PNG."""
    out = tmp_path_factory.mktemp("simulated_film")
    case = simulate_case(3, 0, spacing_mm=0.3)
    write_case(case, out, "both")
    return {"dicom": out / f"{case.name}.dcm", "png": out / f"{case.name}.png"}
