"""``aacscore serve`` and ``aacscore review``: the thin commands over :mod:`aacscore.serve`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aacscore.cli import app


def _flat(text: str) -> str:
    return "".join(text.split())


def test_serve_without_the_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("fastapi", "uvicorn") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    r = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert r.exit_code == 2
    assert _flat("needs fastapi, uvicorn: install them with pip install 'aacscore[serve]'") in (
        _flat(r.output)
    )


def test_serve_refuses_an_open_host_without_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("fastapi")
    monkeypatch.delenv("AACSCORE_TOKEN", raising=False)
    r = CliRunner().invoke(app, ["serve", str(tmp_path), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "--token" in r.output
    r = CliRunner().invoke(app, ["serve", str(tmp_path / "none")])
    assert r.exit_code == 2 and _flat("no such results folder") in _flat(r.output)


def test_serve_runs_uvicorn_on_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("file,status\n", encoding="utf-8")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: calls.append(kw))
    monkeypatch.setenv("AACSCORE_TOKEN", "from-env")
    r = CliRunner().invoke(app, ["serve", str(out), "--host", "0.0.0.0", "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert calls == [{"host": "0.0.0.0", "port": 8123, "log_level": "warning"}]
    assert "?token=from-env" in r.output
    assert (out / "reviews.sqlite").is_file()
