"""Both backends score a film the same way, and the light install (no PyTorch, no MONAI)
scores it on ONNX Runtime, checked in a fresh process with torch made unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aacscore.pipeline import Scorer
from aacscore.results import Result

BLOCKED = ("torch", "monai", "torchvision")

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = {blocked!r}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"{{name}} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    from aacscore import Scorer
    from aacscore.info import environment_info

    out = {{}}
    for backend in ("onnx", None):
        res = Scorer(backend=backend).score({film!r})
        out[str(backend)] = {{
            "status": str(res.status), "aac24": res.aac24, "aac24_sd": res.aac24_sd,
            "grades": res.grades, "flags": list(res.qc_flags), "quality": res.quality,
            "orientation": str(res.orientation),
        }}
    for name, kwargs in (
        ("torch", {{"backend": "torch"}}),
        ("nnunet", {{"spine_model": "nnunet:/nowhere", "backend": "onnx"}}),
    ):
        try:
            Scorer(**kwargs).score({film!r})
            out[name] = None
        except Exception as e:
            out[name] = f"{{type(e).__name__}}: {{e}}"
    out["backends"] = environment_info()["backends"]
    out["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps(out))
    """
)


def _light_run(film: Path) -> dict[str, Any]:
    code = SCRIPT.format(blocked=BLOCKED, film=str(film))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture(scope="module")
def results(simulated_film: dict[str, Path]) -> dict[str, Result]:
    return {b: Scorer(backend=b).score(simulated_film["dicom"]) for b in ("torch", "onnx")}


def _same_reading(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["status"] == b["status"] and a["flags"] == b["flags"]
    assert a["orientation"] == b["orientation"]
    assert a["aac24"] == pytest.approx(b["aac24"], abs=1e-4)
    assert a["aac24_sd"] == pytest.approx(b["aac24_sd"], abs=1e-4)
    assert a["quality"] == pytest.approx(b["quality"], abs=1e-4)
    assert set(a["grades"]) == set(b["grades"])
    for seg, g in a["grades"].items():
        assert b["grades"][seg] == pytest.approx(g, abs=1e-4), seg


def _reading(r: Result) -> dict[str, Any]:
    return {
        "status": str(r.status),
        "aac24": r.aac24,
        "aac24_sd": r.aac24_sd,
        "grades": r.grades,
        "flags": list(r.qc_flags),
        "quality": r.quality,
        "orientation": str(r.orientation),
    }


def test_both_backends_read_the_film_alike(results: dict[str, Result]) -> None:
    a, b = results["torch"], results["onnx"]
    assert a.status in ("ok", "warning"), a.error
    _same_reading(_reading(a), _reading(b))
    assert a.stages is not None and b.stages is not None
    assert a.stages.view is not None and b.stages.view is not None
    assert b.stages.view.p_lateral == pytest.approx(a.stages.view.p_lateral, abs=1e-4)
    pa, pb = a.stages.prediction, b.stages.prediction
    assert pa is not None and pb is not None and pa.fractions and pb.fractions
    assert max(abs(x - y) for x, y in zip(pa.fractions, pb.fractions, strict=True)) < 1e-4


def test_both_backends_read_a_calcified_film_alike() -> None:
    from aacscore.io.types import Radiograph
    from aacscore.simulate import simulate_case

    case = simulate_case(90210, 1, distribution="balanced", spacing_mm=0.3)
    rad = Radiograph(case.image, case.spacing_mm, "calcified", "MONOCHROME2", 16)
    a, b = (Scorer(backend=k).score_radiograph(rad, "calcified") for k in ("torch", "onnx"))
    assert a.aac24 is not None and a.aac24 > 2
    _same_reading(_reading(a), _reading(b))


def test_models_info_names_the_backend_and_its_files() -> None:
    for backend in ("torch", "onnx"):
        info = Scorer(backend=backend).models_info()
        assert {info[k]["backend"] for k in ("spine", "score", "view")} == {backend}
        graphs = {f for k in ("spine", "score", "view") for f in info[k]["sha256"] if ".onnx" in f}
        assert graphs == (
            {"unet.onnx", "orientation.onnx", "model.onnx", "view.onnx"}
            | {"fallback/unet.onnx", "fallback/orientation.onnx"}  # the fallback spine model
            if backend == "onnx"
            else set()
        )
        assert "model.safetensors" in info["score"]["sha256"]  # the quality reference's key


def test_auto_is_onnx_for_the_shipped_models() -> None:
    s = Scorer()
    assert s.backend == "auto"
    assert s.spine_model.backend == s.score_model.backend == s.view_model.backend == "onnx"  # type: ignore[attr-defined]


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        Scorer(backend="cuda")


@pytest.mark.slow
def test_light_install_scores_without_torch(
    simulated_film: dict[str, Path], results: dict[str, Result]
) -> None:
    out = _light_run(simulated_film["dicom"])
    assert out["loaded"] == []  # neither torch nor MONAI was imported
    _same_reading(out["onnx"], _reading(results["torch"]))
    _same_reading(out["onnx"], _reading(results["onnx"]))
    assert out["None"] == out["onnx"]  # the default backend is onnx
    assert out["torch"] == (
        "BackendError: the torch backend needs PyTorch: pip install 'aacscore[train]'"
    )
    assert out["nnunet"] is not None
    assert out["nnunet"].startswith("NnUNetUnavailableError: --spine-model nnunet:/nowhere")
    assert (
        "PyTorch only" in out["nnunet"] and "pip install 'aacscore[train,nnunet]'" in out["nnunet"]
    )
    assert out["backends"]["torch"] is False and out["backends"]["default"] == "onnx"
