"""The review pages in headless Chromium on a live server: worklist, viewer, window/level on the
film's full-bit-depth values, a dragged corner, a dragged bound anchor and a whole bound, levels
relabelled, re-score, grades by click and key, accept; then the SQLite row and the export.

``AACSCORE_SCREENSHOTS=DIR`` also saves the worklist and the viewer as PNGs there (the README's
``docs/images/serve_*.png``)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

from aacscore.pipeline import Scorer
from aacscore.serve.app import create_app
from aacscore.serve.export import export_reviews
from tests.serve.conftest import Folder
from tests.tools import require_tool

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(folder: Folder, scorer: Scorer) -> Iterator[str]:
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    app = create_app(folder.out, scorer=scorer, reviewer="dr browser")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.browser
def test_review_a_case_in_the_browser(live: str, folder: Folder, tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = os.environ.get("AACSCORE_SCREENSHOTS")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(live + "/")
            page.wait_for_selector("body[data-ready='1']")
            assert page.locator("#worklist tbody tr").count() == 3
            assert page.inner_text("[data-count='cases'] b") == "3"
            page.select_option("select[name=status]", "failed")
            assert page.locator("#worklist tbody tr").count() == 1
            page.select_option("select[name=status]", "")
            page.click("#worklist th[data-key='name']")  # sort by name: gone, patient film, second
            names = page.eval_on_selector_all(
                "#worklist tbody tr td:first-child", "els => els.map(e => e.textContent)"
            )
            assert names == ["gone.png", "patient film.dcm", "second.png"]
            if shots:
                page.screenshot(path=str(Path(shots) / "serve_worklist.png"))
            page.keyboard.press("j")
            page.keyboard.press("j")
            page.keyboard.press("k")
            page.keyboard.press("Enter")
            page.wait_for_url(f"**/cases/{folder.dicom_id}")
            page.wait_for_selector("#viewer[data-ready='1']")
            assert "patient film.dcm" in page.inner_text("#case-name")
            # drag L2's anterior-superior corner 12 screen px down
            box = page.locator("#film").bounding_box()
            assert box is not None
            x, y = page.evaluate(
                "() => window.aacscoreViewer.toScreen(window.aacscoreViewer.state.corners.L2[0])"
            )
            before = page.evaluate("() => window.aacscoreViewer.state.corners.L2[0]")
            page.mouse.move(box["x"] + x, box["y"] + y)
            page.mouse.down()
            page.mouse.move(box["x"] + x, box["y"] + y + 6, steps=3)
            page.mouse.move(box["x"] + x, box["y"] + y + 12, steps=3)
            page.mouse.up()
            after = page.evaluate("() => window.aacscoreViewer.state.corners.L2[0]")
            assert after[1] > before[1] and abs(after[0] - before[0]) < 1.0
            _window_level(page)
            # relabel: one level down, back up, then one level down for good
            page.click("#shift-down")
            assert page.evaluate("() => window.aacscoreViewer.state.labels.L1") == "L2"
            page.click("#shift-up")
            labels = page.evaluate("() => window.aacscoreViewer.state.labels")
            assert all(v == k for k, v in labels.items() if k != "S1") and labels["S1"] is None
            page.select_option("tr[data-level='S1'] select", "S1")  # set a single body's level
            assert page.locator("#levels tr.changed").count() == 0
            page.click("#shift-down")
            assert page.locator("#levels tr.changed").count() == 7
            # drag the L2/L3 bound's anterior anchor, then the whole L3/L4 line
            a0 = _drag(page, box, "b => b['L2/L3'].anterior", 0, 10)
            a1 = page.evaluate("() => window.aacscoreViewer.state.bounds['L2/L3'].anterior")
            assert a1[1] > a0[1] + 5
            line0 = page.evaluate("() => window.aacscoreViewer.state.bounds['L3/L4']")
            _drag(
                page,
                box,
                "b => [(b['L3/L4'].anterior[0] + b['L3/L4'].posterior[0]) / 2,"
                " (b['L3/L4'].anterior[1] + b['L3/L4'].posterior[1]) / 2]",
                0,
                -8,
            )
            line1 = page.evaluate("() => window.aacscoreViewer.state.bounds['L3/L4']")
            for end in ("anterior", "posterior"):
                assert line1[end][1] < line0[end][1] - 4
                assert line1[end][0] == pytest.approx(line0[end][0], abs=0.5)
            moved = page.evaluate("() => [...window.aacscoreViewer.state.movedBounds].sort()")
            assert moved == ["L2/L3", "L3/L4"]
            page.click("#rescore")
            page.wait_for_selector("#message.ok")
            assert "re-scored" in page.inner_text("#rescore-result")
            rescored = page.evaluate("() => window.aacscoreViewer.state.rescored")
            assert rescored["moved_bounds"] == ["L2/L3", "L3/L4"]
            assert rescored["bounds"]["L2/L3"]["anterior"] == pytest.approx(a1)
            assert rescored["levels"]["L1"] == "L2"
            page.click("tr[data-segment='L1_anterior'] button[data-grade='3']")
            page.focus("#film")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("2")  # L1_posterior
            page.fill("#comment", "L2 corner moved")
            page.click("#accept")
            page.wait_for_function(
                "document.getElementById('message').textContent.includes('saved')"
            )
            assert "version 1" in page.inner_text("#message")
            if shots:
                page.evaluate("() => window.scrollTo(0, 0)")
                page.screenshot(path=str(Path(shots) / "serve_viewer.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    con = sqlite3.connect(folder.out / "reviews.sqlite")
    row = con.execute(
        "SELECT case_id, version, reviewer, decision, comment, grades_json, vertebrae_json,"
        " rescored_json, bounds_json, labels_json FROM reviews"
    ).fetchone()
    con.close()
    case_id, version, reviewer, decision, comment, grades, vertebrae, rescored, bounds, labs = row
    assert (case_id, version, reviewer, decision) == (folder.dicom_id, 1, "dr browser", "accept")
    assert comment == "L2 corner moved"
    g = json.loads(grades)
    assert g["L1_anterior"] == 3 and g["L1_posterior"] == 2 and len(g) == 8
    assert json.loads(vertebrae)["L2"][0] == pytest.approx(after)
    assert json.loads(rescored)["bounds"]["L1/L2"]
    assert json.loads(bounds)["L2/L3"]["anterior"] == pytest.approx(a1)
    assert json.loads(labs) == {
        "T12": "L1", "L1": "L2", "L2": "L3", "L3": "L4", "L4": "L5", "L5": "S1", "S1": None
    }  # fmt: skip
    summary = export_reviews(folder.out, tmp_path / "labels")
    assert summary.n_reference == 1 and summary.n_spine == 1
    ann = json.loads((summary.spine_dir / f"{folder.dicom_id}.json").read_text())
    assert ann["vertebrae"]["L3"]["corners"][0] == pytest.approx(after)  # the model's L2
    assert ann["review_bounds"]["L3/L4"]["anterior"] == pytest.approx(line1["anterior"])


def _drag(page: Any, box: Any, point_js: str, dx: float, dy: float) -> list[float]:
    """Drag the film point ``point_js`` (a function of the bounds) by (dx, dy) screen px; the
    point before."""
    p = page.evaluate(f"() => ({point_js})(window.aacscoreViewer.state.bounds)")
    x, y = page.evaluate("p => window.aacscoreViewer.toScreen(p)", p)
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.down()
    page.mouse.move(box["x"] + x + dx / 2, box["y"] + y + dy / 2, steps=3)
    page.mouse.move(box["x"] + x + dx, box["y"] + y + dy, steps=3)
    page.mouse.up()
    return list(p)


_PIXEL_JS = """([i, j]) => {
  const f = window.aacscoreViewer.state.film;
  const v = f.canvas.getContext("2d").getImageData(i, j, 1, 1).data[0];
  return [v, f.offset + f.codes[j * f.w + i] * f.step];
}"""


def _window_level(page: Any) -> None:
    """The DICOM's window is the default; a narrow window maps the full-depth values."""
    state = page.evaluate(
        "() => { const s = window.aacscoreViewer.state;"
        " return [s.level, s.window, s.film.source, s.film.w, s.film.h]; }"
    )
    assert state[:3] == [8191.5, 16383.0, "dicom"]
    w, h = state[3], state[4]
    points = [(w // 2, h // 2), (w // 3, h // 4), (2 * w // 3, 3 * h // 4)]
    values = [page.evaluate(_PIXEL_JS, list(p))[1] for p in points]
    level = sorted(values)[1]
    page.evaluate(f"() => window.aacscoreViewer.setWindow({level}, 40)")  # 40 of 16383 values
    for p in points:
        shown, value = page.evaluate(_PIXEL_JS, list(p))
        expected = min(255.0, max(0.0, (value - (level - 20)) / 40 * 255))
        assert abs(shown - expected) <= 1.0, (p, shown, value)
    # a window 40 stored values wide shows ~40 greys (an 8-bit film: one grey per 64 values)
    greys = page.evaluate(
        """() => { const f = window.aacscoreViewer.state.film;
        const px = f.canvas.getContext("2d").getImageData(0, 0, f.w, f.h).data;
        const seen = new Set(); for (let i = 0; i < px.length; i += 4) seen.add(px[i]);
        return seen.size; }"""
    )
    assert greys >= 30  # 41: one per stored value
    page.fill("#level", "8000")
    assert page.evaluate("() => window.aacscoreViewer.state.level") == pytest.approx(8000, abs=20)
    page.click("#wl-reset")
    assert page.evaluate("() => window.aacscoreViewer.state.window") == 16383.0
