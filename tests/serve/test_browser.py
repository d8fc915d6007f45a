"""The review pages in headless Chromium on a live server: worklist, viewer, a dragged corner,
re-score, grades by click and key, accept; then the SQLite row and the export.

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
            page.click("#rescore")
            page.wait_for_selector("#message.ok")
            assert "re-scored" in page.inner_text("#rescore-result")
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
                page.screenshot(path=str(Path(shots) / "serve_viewer.png"))
        finally:
            browser.close()
    assert errors == []
    con = sqlite3.connect(folder.out / "reviews.sqlite")
    row = con.execute(
        "SELECT case_id, version, reviewer, decision, comment, grades_json, vertebrae_json,"
        " rescored_json FROM reviews"
    ).fetchone()
    con.close()
    case_id, version, reviewer, decision, comment, grades, vertebrae, rescored = row
    assert (case_id, version, reviewer, decision) == (folder.dicom_id, 1, "dr browser", "accept")
    assert comment == "L2 corner moved"
    g = json.loads(grades)
    assert g["L1_anterior"] == 3 and g["L1_posterior"] == 2 and len(g) == 8
    assert json.loads(vertebrae)["L2"][0] == pytest.approx(after)
    assert json.loads(rescored)["bounds"]["L1/L2"]
    summary = export_reviews(folder.out, tmp_path / "labels")
    assert summary.n_reference == 1 and summary.n_spine == 1
    ann = json.loads((summary.spine_dir / f"{folder.dicom_id}.json").read_text())
    assert ann["vertebrae"]["L2"]["corners"][0] == pytest.approx(after)
