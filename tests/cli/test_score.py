"""``aacscore score`` argument handling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aacscore.cli import app


def test_cli_score_reports_missing_inputs(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["score", str(tmp_path / "nothing"), "-o", str(tmp_path)])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["score", str(tmp_path), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "no radiographs" in res.output


def test_cli_score_excludes_out_records_skips_and_passes_ignore_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from PIL import Image

    import aacscore.batch as batch
    from aacscore.io.inputs import OUTPUT_FOLDER_REASON

    root = tmp_path / "in"
    (root / "results" / "overlays").mkdir(parents=True)
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(root / "a.png")
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(root / "results" / "overlays" / "x.png")
    (root / "a.json").write_text("{}")
    seen: dict[str, Any] = {}

    def fake_batch(items: Any, out: Any, kwargs: Any, **kw: Any) -> Any:
        seen.update(items=items, out=out, kwargs=kwargs, **kw)
        raise SystemExit(0)

    monkeypatch.setattr(batch, "score_batch", fake_batch)
    args = ["score", str(root), "-o", str(root / "results"), "--ignore-header"]
    CliRunner().invoke(app, args)
    assert [it.path for it in seen["items"]] == [root / "a.png"]
    assert seen["kwargs"]["ignore_header"] is True
    assert seen["arguments"]["ignore_header"] is True
    skipped = {s.file: s.reason for s in seen["skipped_inputs"]}
    assert skipped[str(root / "results")] == OUTPUT_FOLDER_REASON
    assert "JSON sidecar" in skipped[str(root / "a.json")]
