"""The inference core scores a film with the training code, the simulator, the statistics and
the cohort analysis made unimportable (the light-install promise, checked in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

FORBIDDEN = ("aacscore.training", "aacscore.simulate", "aacscore.stats", "aacscore.cohort")

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    FORBIDDEN = {forbidden!r}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                raise ImportError(f"{{name}} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    from aacscore import Scorer

    res = Scorer(tta=False).score({film!r})
    loaded = sorted(m for m in sys.modules if any(m.startswith(f) for f in FORBIDDEN))
    print(json.dumps({{"status": str(res.status), "aac24": res.aac24, "loaded": loaded}}))
    """
)


def test_scoring_needs_no_training_simulator_stats_or_cohort(
    simulated_film: dict[str, Path],
) -> None:
    code = SCRIPT.format(forbidden=FORBIDDEN, film=str(simulated_film["dicom"]))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] in ("ok", "warning")
    assert out["aac24"] is not None and 0.0 <= out["aac24"] <= 24.0
    assert out["loaded"] == []


def test_the_blocker_blocks() -> None:
    code = SCRIPT.format(forbidden=FORBIDDEN, film="x").split("from aacscore import Scorer")[0]
    code += "import aacscore.training\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode != 0 and "blocked in this test" in proc.stderr
