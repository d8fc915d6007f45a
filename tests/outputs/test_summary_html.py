"""``OUT/summary.html``: its content on small folders built here, and the page in Chromium."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

from aacscore.outputs import summary_html
from aacscore.outputs.summary_html import (
    SUMMARY_NAME,
    SummaryError,
    read_folder,
    write_summary,
)
from aacscore.results import RESULT_COLUMNS
from tests.tools import require_tool

EVIL = "x<b>&\"q'.png"
"""A file name with every character HTML must escape."""


def _row(file: str, status: str, **values: str) -> dict[str, str]:
    return {"file": file, "status": status, **values}


def _overlay(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((60, 40, 3), np.uint8)
    img[:] = colour
    Image.fromarray(img).save(path)
    return path


def make_folder(
    out: Path,
    rows: Sequence[Mapping[str, str]],
    *,
    cases: Sequence[Mapping[str, Any]] = (),
    run: Any = None,
) -> Path:
    """An output folder: ``results.csv`` (with an extra column), case JSONs, ``run.json``."""
    out.mkdir(parents=True, exist_ok=True)
    columns = [*RESULT_COLUMNS, "extra_column"]
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns} | {"extra_column": "ignored"})
    for i, doc in enumerate(cases):
        (out / "cases").mkdir(exist_ok=True)
        (out / "cases" / f"case_{i}.json").write_text(json.dumps(doc), encoding="utf-8")
    if run is not None:
        (out / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return out


def run_record(started: str = "2026-01-01T10:00:00+00:00", version: str = "0.1.0") -> dict:
    return {
        "started": started,
        "finished": started.replace("10:", "11:"),
        "arguments": {"inputs": ["/data/films"], "overlay": True, "groups": "lewis"},
        "environment": {"aacscore": version, "python": "3.11.7", "device": "cpu (2 threads)"},
        "models": {
            "spine": {"path": "/m/spine", "sha256": {"unet.safetensors": "ab" * 32}},
            "score": {"path": "/m/score", "sha256": {"model.safetensors": "cd" * 32}},
        },
        "n_inputs": 4,
        "skipped_inputs": [
            {"file": "/data/films/a.json", "reason": "a JSON sidecar"},
            {"file": "/data/films/<odd>.txt", "reason": "not an image"},
        ],
        "counts": {"ok": 1, "warning": 2, "failed": 1},
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four films: ok, two warnings (one low-confidence and low-quality), one failure; three
    overlays, one of them recorded under a path the folder no longer has (it was moved)."""
    out = tmp_path / "OUT"
    rows = [
        _row("/data/films/ok1.dcm", "ok", aac24="0.400", aac24_sd="0.2", group="low"),
        _row(
            "/data/films/warn.png",
            "warning",
            aac24="7.600",
            aac24_sd="1.1",
            group="high",
            qc_flags="spacing_unknown",
        ),
        _row(
            f"/data/films/{EVIL}",
            "warning",
            aac24="3.000",
            group="moderate",
            low_confidence="True",
            quality="0.010",
            qc_flags="view_uncertain;low_quality",
        ),
        _row(
            "/data/films/bad.jpg",
            "failed",
            error_code="spine_not_found",
            error="/data/films/bad.jpg: the <lumbar> vertebrae were not found",
        ),
    ]
    ov_ok = _overlay(out / "overlays" / "ok1_1.png", (30, 200, 30))
    _overlay(out / "overlays" / "evil 2#.png")
    ov_bad = _overlay(out / "overlays" / "bad_3.png", (30, 30, 200))
    cases = [
        {"file": "/data/films/ok1.dcm", "status": "ok", "overlay": str(ov_ok)},
        {
            "file": f"/data/films/{EVIL}",
            "status": "warning",
            "overlay": "/old/place/OUT/overlays/evil 2#.png",
            "groups": {"name": "lewis", "description": "low 0-1, moderate 2-5, high >=6"},
        },
        {"file": "/data/films/bad.jpg", "status": "failed", "overlay": str(ov_bad)},
        {"file": "/data/films/warn.png", "status": "warning"},
    ]
    return make_folder(out, rows, cases=cases, run=run_record())


def _page(out: Path, **kw: Any) -> str:
    path = write_summary(out, **kw)
    assert path == out / SUMMARY_NAME
    return path.read_text(encoding="utf-8")


def _tile(page: str, status: str) -> int:
    m = re.search(rf'data-status="{status}"><b>(\d+)</b>', page)
    assert m, f"no {status} tile"
    return int(m.group(1))


def _section(page: str, ident: str) -> str:
    start = page.index(f'<section id="{ident}">')
    return page[start : page.index("</section>", start)]


def test_counts_by_status_and_error_code(folder: Path) -> None:
    page = _page(folder)
    assert (_tile(page, "all"), _tile(page, "ok"), _tile(page, "warning")) == (4, 1, 2)
    assert _tile(page, "failed") == 1
    counts = _section(page, "counts")
    assert "<td>spine_not_found</td><td>1</td><td>100.0 %</td>" in counts
    assert "the lumbar vertebrae were not found" in counts  # the code's meaning


def test_histogram_and_group_table(folder: Path) -> None:
    dist = _section(_page(folder), "distribution")
    assert dist.count("<svg") == 1
    assert "3 scored films: median AAC-24 3.0" in dist
    # groups in the order of their scores, n and % of the scored films
    low, moderate, high = (dist.index(f"<td>{g}</td>") for g in ("low", "moderate", "high"))
    assert low < moderate < high
    assert "<td>high</td><td>1</td><td>33.3 %</td>" in dist
    assert "lewis (low 0-1, moderate 2-5, high &gt;=6)" in dist


def test_failures_and_needs_review(folder: Path) -> None:
    page = _page(folder)
    failures = _section(page, "failures")
    assert "Failures (1)" in failures
    assert "/data/films/bad.jpg: the &lt;lumbar&gt; vertebrae were not found" in failures
    assert "spine_not_found" in failures
    review = _section(page, "review")
    assert "Needs review (2)" in review
    assert "2 with a warning, 1 with a low-confidence score, 1 of low quality" in review
    assert "/data/films/warn.png" in review and "bad.jpg" not in review
    assert ">low_quality</span>" in review and ">spacing_unknown</span>" in review
    assert "ok1.dcm" not in review


def test_every_string_from_the_folder_is_escaped(tmp_path: Path) -> None:
    script = "<script>alert(1)</script>"
    rows = [
        _row(f"/d/{EVIL}", "warning", aac24="2", group="<i>g</i>", qc_flags=f"{script};$x_1"),
        _row(f"/d/f{script}.png", "failed", error_code=script, error=f"bad {script}"),
    ]
    run = run_record() | {"arguments": {"inputs": [script]}, "started": script}
    page = _page(make_folder(tmp_path / "o", rows, run=run))
    assert page.count("<script>") == 1  # the page's own table sorter only
    assert "<i>g</i>" not in page and "<b>&" not in page
    assert "x&lt;b&gt;&amp;&quot;q&#x27;.png" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;i&gt;g&lt;/i&gt;" in page  # in the group table and the histogram's legend


def test_thumbnails_embedded_and_linked_by_relative_path(folder: Path) -> None:
    page = _page(folder)
    sheet = _section(page, "overlays")
    thumbs = re.findall(
        r'<figure class="thumb st-(\w+)"><a href="([^"]+)"><img src="([^"]+)"', sheet
    )
    # failures first, then warnings, then ok; the moved overlay is found under overlays/
    assert [(s, h) for s, h, _ in thumbs] == [
        ("failed", "overlays/bad_3.png"),
        ("warning", "overlays/evil%202%23.png"),
        ("ok", "overlays/ok1_1.png"),
    ]
    for _, href, src in thumbs:
        assert (folder / unquote(href)).is_file()
        assert src.startswith("data:image/jpeg;base64,")
    assert "AAC-24 3.0 · moderate · warning" in sheet
    assert "spine_not_found · failed" in sheet
    assert "Overlays (3)" in sheet and "Showing the first" not in sheet


def test_thumbnails_are_capped(folder: Path) -> None:
    sheet = _section(_page(folder, max_thumbnails=2), "overlays")
    assert sheet.count('<figure class="thumb') == 2
    assert "Showing the first 2 of 3 (at most 2 thumbnails)" in sheet
    assert "overlays/ok1_1.png" not in sheet  # the ok film is the one left out


def test_page_is_self_contained(folder: Path) -> None:
    page = _page(folder)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "Research use only; not a medical device." in page
    urls = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert urls
    for url in urls:
        assert not re.match(r"[a-z][a-z0-9+.-]*://|//", url, re.I), url
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # only the histogram's in-page clip paths


def test_run_record_single_form(folder: Path) -> None:
    run = _section(_page(folder), "run")
    assert "Latest run (1 of 1)" in run and "All runs" not in run
    assert "<td>aacscore</td><td>0.1.0</td>" in run
    assert "<td>started</td><td>2026-01-01T10:00:00+00:00</td>" in run
    assert "ab" * 32 in run and "unet.safetensors" in run
    assert "<td>inputs</td><td>[&quot;/data/films&quot;]</td>" in run
    skipped = run[run.index("<details>") : run.index("</details>")]
    assert "Skipped inputs (2)" in run
    assert "/data/films/&lt;odd&gt;.txt" in skipped and "a JSON sidecar" in skipped


def test_run_record_list_form_shows_the_latest(tmp_path: Path) -> None:
    runs = {"runs": [run_record(version="0.0.9"), run_record("2026-02-02T10:00:00+00:00")]}
    unfinished = run_record("2026-03-03T10:00:00+00:00", version="0.2.0") | {"finished": None}
    runs["runs"].append(unfinished)
    folder = make_folder(tmp_path / "o", [_row("/a.png", "ok", aac24="1")], run=runs)
    content = read_folder(folder)
    assert [r["started"][:10] for r in content.runs] == ["2026-01-01", "2026-02-02", "2026-03-03"]
    run = _section(_page(folder), "run")
    assert "Latest run (3 of 3)" in run
    assert "<td>aacscore</td><td>0.2.0</td>" in run
    assert "not finished (running, or interrupted)" in run
    all_runs = run[run.index("All runs") :]
    assert all_runs.count("<tr>") == 4  # header and three runs
    assert "2026-02-02T11:00:00+00:00" in all_runs


@pytest.mark.parametrize("run", [None, "not json", [1, 2]])
def test_empty_folder(tmp_path: Path, run: Any) -> None:
    folder = make_folder(tmp_path / "o", [])
    if isinstance(run, str):
        (folder / "run.json").write_text("{torn", encoding="utf-8")
    elif run is not None:
        (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    page = _page(folder)
    assert _tile(page, "all") == 0
    assert "No film has been scored yet." in page
    assert "No film failed." in page and "Needs review (0)" in page
    assert "No overlay was written" in page
    assert "No run.json (yet)." in page
    assert ("Problems reading the folder" in page) == (run is not None)


def test_failed_only_batch_without_cases(tmp_path: Path) -> None:
    rows = [_row(f"/f{i}.dcm", "failed", error_code="unreadable", error="bad") for i in range(3)]
    page = _page(make_folder(tmp_path / "o", rows, run=run_record()))
    assert _tile(page, "failed") == 3 and _tile(page, "ok") == 0
    assert "<svg" not in page and "Failures (3)" in page
    assert "<td>unreadable</td><td>3</td><td>100.0 %</td>" in page


def test_partial_folder_tolerates_torn_files(folder: Path) -> None:
    (folder / "cases" / "torn.json").write_text('{"file": "/x', encoding="utf-8")
    (folder / "overlays" / "bad_3.png").write_bytes(b"not a png")
    with (folder / "results.csv").open("a", encoding="utf-8") as f:
        f.write("/data/films/torn.dcm,war")  # a row being written
    page = _page(folder)
    assert "cases/torn.json: not read" in page
    assert "1 overlay(s) could not be read for a thumbnail." in page
    assert page.count('<figure class="thumb') == 2
    assert _tile(page, "all") == 5 and _tile(page, "war") == 1


def test_rewrites_atomically(folder: Path) -> None:
    (folder / SUMMARY_NAME).write_text("old", encoding="utf-8")
    _page(folder)
    assert (folder / SUMMARY_NAME).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_refuses_what_is_not_an_output_folder(tmp_path: Path) -> None:
    with pytest.raises(SummaryError, match="no such folder"):
        write_summary(tmp_path / "missing")
    with pytest.raises(SummaryError, match=r"results\.csv: not found"):
        write_summary(tmp_path)
    (tmp_path / "results.csv").write_text("name,score\na,1\n", encoding="utf-8")
    with pytest.raises(SummaryError, match="no column file, status"):
        write_summary(tmp_path)
    assert not (tmp_path / SUMMARY_NAME).exists()


def test_reads_what_the_batch_writers_write(tmp_path: Path) -> None:
    from aacscore.codes import ErrorCode
    from aacscore.outputs.case_json import write_case_json
    from aacscore.outputs.results_csv import ResultsWriter
    from aacscore.results import Status, failed
    from tests.results_fixtures import ok_result

    out = tmp_path / "OUT"
    writer = ResultsWriter(out / "results.csv")
    ov = _overlay(out / "overlays" / "w.png")
    results = [
        ok_result("/in/w.dcm", Status.WARNING).with_details({"overlay": str(ov)}),
        failed("/in/f.dcm", "/in/f.dcm: unreadable", ErrorCode.UNREADABLE),
    ]
    for i, r in enumerate(results):
        writer.write(r)
        write_case_json(out / "cases" / f"{i}.json", r)
    content = read_folder(out)
    w, f = content.cases
    assert (w.status, w.aac24, w.group, w.flags, w.overlay) == (
        "warning",
        3.25,
        "moderate",
        ("a", "b"),
        ov,
    )
    assert (f.status, f.error_code, f.overlay) == ("failed", "unreadable", None)
    assert w.needs_review and not f.needs_review


BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.mark.browser
def test_page_in_headless_chromium(folder: Path) -> None:
    chromium = require_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    path = write_summary(folder)
    requests: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            assert page.title() == "aacscore summary: OUT"
            assert page.inner_text('[data-status="failed"] b') == "1"
            assert page.inner_text('[data-status="warning"] b') == "2"
            assert "Research use only; not a medical device." in page.inner_text("header")
            failure = page.inner_text("#failures tbody tr")
            assert "spine_not_found" in failure
            assert "/data/films/bad.jpg: the <lumbar> vertebrae were not found" in failure
            assert EVIL in page.inner_text("#review")  # shown as text, not parsed as markup
            widths = page.eval_on_selector_all(
                ".thumb img", "els => els.map(e => e.complete ? e.naturalWidth : 0)"
            )
            assert len(widths) == 3 and all(w > 0 for w in widths)
            hrefs = page.eval_on_selector_all(".thumb a", "els => els.map(a => a.href)")
            targets = [Path(unquote(urlparse(h).path)) for h in hrefs]
            assert targets[1] == (folder / "overlays" / "evil 2#.png").resolve()
            assert all(t.is_file() for t in targets)
            # the inline sorter: the review table by AAC-24, then back
            column = "#review table.review tbody tr td:nth-child(3)"
            page.click("#review table.review th:nth-child(3)")
            first = page.eval_on_selector_all(column, "els => els.map(e => e.textContent)")
            assert [s.split()[0] for s in first] == ["3.0", "7.6"]
            page.click("#review table.review th:nth-child(3)")
            second = page.eval_on_selector_all(column, "els => els.map(e => e.textContent)")
            assert second == first[::-1]
        finally:
            browser.close()
    assert errors == []
    assert requests and requests[0] == path.as_uri()
    assert all(u.startswith(("file:", "data:")) for u in requests), requests


def test_thumbnails_are_cached_while_newer_than_their_overlay(folder: Path) -> None:
    _page(folder)
    cached = folder / summary_html.THUMBNAIL_CACHE / "ok1_1.jpg"
    assert cached.is_file()
    marker = io.BytesIO()
    Image.new("RGB", (7, 9), (255, 0, 255)).save(marker, format="JPEG")
    cached.write_bytes(marker.getvalue())  # newer than the overlay: reused as it is
    uri = "data:image/jpeg;base64," + base64.b64encode(marker.getvalue()).decode("ascii")
    assert f'<img src="{uri}" width="7" height="9"' in _page(folder)
    overlay = folder / "overlays" / "ok1_1.png"
    later = cached.stat().st_mtime_ns + 10**9
    os.utime(overlay, ns=(later, later))  # the overlay was re-drawn: thumbnail made again
    assert uri not in _page(folder)
    with Image.open(cached) as img:
        assert img.size != (7, 9)
