"""The REST API on a scored folder: cases, film, overlay, SR, reviews, re-score, uploads,
the token and refused paths."""

from __future__ import annotations

import base64
import io
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from aacscore.kauppila import SEGMENTS
from aacscore.pipeline import Scorer
from aacscore.serve.app import BindError, check_bind, create_app, sniff_upload
from aacscore.serve.cases import CaseIndex, FolderError
from tests.serve.conftest import Folder

GRADES = {s: (i * 2) % 4 for i, s in enumerate(SEGMENTS)}


@pytest.fixture
def client(folder: Folder, scorer: Scorer) -> TestClient:
    return TestClient(create_app(folder.out, scorer=scorer, reviewer="dr test"))


def test_health_and_the_openapi_document(client: TestClient) -> None:
    assert client.get("/api/health").json()["cases"] == 3
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/score",
        "/api/cases",
        "/api/cases/{case_id}",
        "/api/cases/{case_id}/overlay.png",
        "/api/cases/{case_id}/sr.dcm",
        "/api/cases/{case_id}/review",
        "/api/health",
    ):
        assert p in paths
    assert client.get("/docs").status_code == 200


def test_cases_list_filters_and_counts(client: TestClient, folder: Folder) -> None:
    data = client.get("/api/cases").json()
    by_id = {c["id"]: c for c in data["cases"]}
    assert set(by_id) == {folder.dicom_id, folder.png_id, folder.missing_id}
    assert by_id[folder.dicom_id]["name"] == "patient film.dcm"
    assert by_id[folder.missing_id]["status"] == "failed"
    assert by_id[folder.missing_id]["error_code"] == "unreadable"
    assert by_id[folder.dicom_id]["aac24_int"] != ""
    assert data["counts"]["total"] == 3 and data["counts"]["status"]["failed"] == 1
    failed = client.get("/api/cases", params={"status": "failed"}).json()["cases"]
    assert [c["id"] for c in failed] == [folder.missing_id]
    code = client.get("/api/cases", params={"error_code": "unreadable"}).json()["cases"]
    assert [c["id"] for c in code] == [folder.missing_id]
    group = by_id[folder.png_id]["group"]
    grouped = client.get("/api/cases", params={"group": group}).json()["cases"]
    assert {c["id"] for c in grouped} == {folder.dicom_id, folder.png_id}
    assert client.get("/api/cases", params={"reviewed": True}).json()["cases"] == []
    assert len(client.get("/api/cases", params={"reviewed": False}).json()["cases"]) == 3


def test_case_film_overlay_and_sr(client: TestClient, folder: Folder) -> None:
    case = client.get(f"/api/cases/{folder.dicom_id}").json()
    assert case["document"]["file"] == str(folder.dicom) and case["version"] == 0
    assert case["has_sr"] and not case["has_overlay"] and case["review"] is None
    film = client.get(f"/api/cases/{folder.dicom_id}/film.png")
    img = Image.open(io.BytesIO(film.content))
    _rows, cols = case["document"]["reader"]["shape"]
    scale = float(film.headers["x-film-scale"])
    assert max(img.size) <= 2048 and img.size[0] == round(cols * scale)
    overlay = client.get(f"/api/cases/{folder.dicom_id}/overlay.png")  # drawn now
    assert overlay.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(overlay.content)).size[0] >= cols
    sr = client.get(f"/api/cases/{folder.dicom_id}/sr.dcm")
    ds = pydicom.dcmread(io.BytesIO(sr.content))
    assert ds.Modality == "SR"
    nosr = client.get(f"/api/cases/{folder.png_id}/sr.dcm")
    assert nosr.status_code == 404 and "no DICOM SR" in nosr.json()["detail"]
    gone = client.get(f"/api/cases/{folder.missing_id}/film.png")
    assert gone.status_code == 404 and "cannot be read any more" in gone.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/cases/..%2f..%2fetc%2fpasswd",
        "/api/cases/%2fetc%2fpasswd",
        "/api/cases/..%2fresults.csv/film.png",
        "/api/cases/..%2F..%2Fresults/overlay.png",
        "/api/cases/results_0000abcd",
        "/api/cases/%2e%2e/sr.dcm",
        "/cases/..%2frun.json",
    ],
)
def test_paths_and_unknown_ids_are_refused(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "root:" not in r.text and "sha256" not in r.text


def test_an_absolute_path_is_not_a_case_id(folder: Folder) -> None:
    index = CaseIndex(folder.out)
    with pytest.raises(KeyError):
        index.get(str(folder.out / "results.csv"))
    with pytest.raises(FolderError, match=r"no results\.csv"):
        CaseIndex(folder.out / "cases")


def test_review_saved_then_a_stale_edit_gets_409(client: TestClient, folder: Folder) -> None:
    url = f"/api/cases/{folder.dicom_id}/review"
    r = client.put(url, json={"version": 0, "decision": "accept", "grades": GRADES})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["reviewer"] == "dr test"
    stale = client.put(url, json={"version": 0, "decision": "reject", "reviewer": "other"})
    assert stale.status_code == 409
    assert stale.json()["detail"]["current_version"] == 1
    bad = client.put(url, json={"version": 1, "grades": {**GRADES, "L2_anterior": 7}})
    assert bad.status_code == 422 and "integer 0-3" in bad.json()["detail"]
    case = client.get(f"/api/cases/{folder.dicom_id}").json()
    assert case["version"] == 1 and case["review"]["grades"] == GRADES
    listed = client.get("/api/cases", params={"reviewed": True}).json()["cases"]
    assert [c["id"] for c in listed] == [folder.dicom_id] and listed[0]["decision"] == "accept"
    con = sqlite3.connect(folder.out / "reviews.sqlite")
    rows = con.execute("SELECT case_id, version, reviewer, decision FROM reviews").fetchall()
    assert rows == [(folder.dicom_id, 1, "dr test", "accept")]
    # the model's results are never touched
    assert "reviewed" not in (folder.out / "results.csv").read_text().splitlines()[0]


def test_rescore_moves_the_bounds_with_the_corners(client: TestClient, folder: Folder) -> None:
    doc = client.get(f"/api/cases/{folder.dicom_id}").json()["document"]
    l2 = doc["spine"]["vertebrae"]["L2"]["corners"]
    corners = [[x, y + 6.0] for x, y in (l2[c] for c in l2)]
    r = client.post(f"/api/cases/{folder.dicom_id}/rescore", json={"vertebrae": {"L2": corners}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out["grades_int"]) == set(SEGMENTS) and out["aac24_int"] is not None
    old, new = doc["spine"]["bounds"], out["bounds"]
    assert set(new) == set(old)
    moved = abs(new["L1/L2"]["anterior"][1] - old["L1/L2"]["anterior"][1])
    assert moved == pytest.approx(3.0, abs=1.0)  # half of the 6 px of L2's superior corners
    assert new["T12/L1"]["anterior"] == pytest.approx(old["T12/L1"]["anterior"])
    assert len(out["band_outline_film_xy"]) > 10
    bad = client.post(
        f"/api/cases/{folder.dicom_id}/rescore", json={"vertebrae": {"L2": [[0, 0]] * 4}}
    )
    assert bad.status_code == 422, bad.text
    none = client.post(f"/api/cases/{folder.missing_id}/rescore", json={"vertebrae": {}})
    assert none.status_code in (404, 422)


def test_scoring_an_uploaded_dicom_and_its_sr(
    client: TestClient, simulated_film: dict[str, Path]
) -> None:
    data = simulated_film["dicom"].read_bytes()
    r = client.post("/api/score", files={"file": ("any name.dcm", data, "application/dicom")})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] in ("ok", "warning") and doc["file"] == "upload.dcm"
    assert doc["aac24"] is not None and doc["spine"] and "dicom_sr_base64" not in doc
    r = client.post("/api/score?sr=1", files={"file": ("x.dcm", data, "application/dicom")})
    assert r.status_code == 200, r.text
    ds = pydicom.dcmread(io.BytesIO(base64.b64decode(r.json()["dicom_sr_base64"])))
    source = pydicom.dcmread(simulated_film["dicom"], stop_before_pixels=True)
    assert ds.Modality == "SR" and ds.StudyInstanceUID == source.StudyInstanceUID
    png = client.post("/api/score", files={"file": ("f.png", simulated_film["png"].read_bytes())})
    assert png.status_code == 200 and png.json()["file"] == "upload.png"
    nosr = client.post(
        "/api/score?sr=1", files={"file": ("f.png", simulated_film["png"].read_bytes())}
    )
    assert nosr.status_code == 422 and "DICOM inputs only" in nosr.json()["detail"]


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros(size, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_uploads_get_a_clear_4xx_and_the_server_keeps_serving(
    folder: Folder, scorer: Scorer
) -> None:
    client = TestClient(create_app(folder.out, scorer=scorer, max_upload_bytes=200_000))
    rng = np.random.default_rng(0)
    cases: list[tuple[Any, int, str]] = [
        (("r.dcm", rng.bytes(5000)), 415, "not a DICOM"),
        (("r.png", b"%PDF-1.7 " + rng.bytes(400)), 415, "25 50 44 46"),
        (("big.png", b"\x89PNG\r\n\x1a\n" + bytes(300_000)), 413, "larger than the limit"),
        (("cut.png", _png((300, 300))[:60]), 422, "cannot be read as png"),
        (("tiny.png", _png((4, 4))), 422, "cannot be read as png"),
        (("e.png", b""), 415, "starts with nothing"),
    ]
    for upload, status, text in cases:
        r = client.post("/api/score", files={"file": upload})
        assert r.status_code == status, (upload[0], r.text)
        assert text in r.json()["detail"], r.json()
        assert client.get("/api/health").status_code == 200
    missing = client.post("/api/score")
    assert missing.status_code == 422


def test_the_token_is_required_on_pages_and_api(folder: Folder, scorer: Scorer) -> None:
    client = TestClient(create_app(folder.out, token="s3cret", scorer=scorer))
    for path in ("/", "/api/health", "/api/cases", "/docs", "/static/viewer.js"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert "token" in r.json()["detail"]
    assert client.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/api/health", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert client.get("/?token=wrong").status_code == 401
    first = client.get("/?token=s3cret", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert "httponly" in first.headers["set-cookie"].lower()
    assert client.get("/").status_code == 200  # the cookie is sent from now on
    assert client.get(f"/cases/{folder.png_id}").status_code == 200
    assert client.get("/api/cases").status_code == 200
    cors = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in cors.headers


def test_binding_beyond_loopback_needs_a_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        check_bind(host, None)
    with pytest.raises(BindError, match="--token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(BindError):
        check_bind("192.168.1.7", "")
    check_bind("0.0.0.0", "t")


def test_sniffing_looks_at_the_bytes_not_the_name() -> None:
    assert sniff_upload(b"\0" * 128 + b"DICM") == "dicom"
    assert sniff_upload(b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniff_upload(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_upload(b"GIF89a") is None
    assert sniff_upload(os.urandom(0)) is None


def test_pages_render(client: TestClient, folder: Folder) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "worklist.js" in page.text
    viewer = client.get(f"/cases/{folder.dicom_id}")
    assert viewer.status_code == 200 and folder.dicom_id in viewer.text
    assert "L4_posterior" in viewer.text
    assert client.get("/static/viewer.js").status_code == 200


def test_the_worker_factory_reads_its_settings_from_the_environment(
    folder: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from aacscore.serve.app import CONFIG_ENV, app_from_env

    config = {"out_dir": str(folder.out), "reviewer": "env reviewer", "max_upload_bytes": 10}
    monkeypatch.setenv(CONFIG_ENV, json.dumps(config))
    monkeypatch.setenv("AACSCORE_TOKEN", "tok")
    client = TestClient(app_from_env())
    assert client.get("/api/health").status_code == 401
    auth = {"Authorization": "Bearer tok"}
    assert client.get("/api/health", headers=auth).json()["cases"] == 3
    big = client.post(
        "/api/score", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n" + bytes(20))}, headers=auth
    )
    assert big.status_code == 413
    r = client.put(f"/api/cases/{folder.png_id}/review", json={"version": 0}, headers=auth)
    assert r.json()["reviewer"] == "env reviewer"


def test_the_film_values_for_window_level_in_the_browser(
    client: TestClient, folder: Folder
) -> None:
    r = client.get(f"/api/cases/{folder.dicom_id}/film.u16")
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    h = r.headers
    w, ht = int(h["x-film-width"]), int(h["x-film-height"])
    codes = np.frombuffer(r.content, dtype="<u2").reshape(ht, w)
    stored = pydicom.dcmread(folder.dicom).pixel_array.astype(np.float64)
    values = float(h["x-film-offset"]) + codes * float(h["x-film-step"])
    assert values.shape == stored.shape and np.abs(values - stored).max() <= 0.5
    ds = pydicom.dcmread(folder.dicom, stop_before_pixels=True)
    assert h["x-window-source"] == "dicom" and h["x-film-invert"] == "0"
    assert float(h["x-window-center"]) == float(ds.WindowCenter)
    assert float(h["x-window-width"]) == float(ds.WindowWidth)
    plain = client.get(
        f"/api/cases/{folder.png_id}/film.u16", headers={"Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers and plain.headers["x-window-source"] == "range"
    assert len(plain.content) == 2 * int(plain.headers["x-film-width"]) * int(
        plain.headers["x-film-height"]
    )
    gone = client.get(f"/api/cases/{folder.missing_id}/film.u16")
    assert gone.status_code == 404 and "cannot be read any more" in gone.json()["detail"]


_PART_HEAD = b"--xyz\r\nContent-Disposition: form-data; name=file; filename=a.png\r\n\r\n"


def _asgi_post(app: Any, headers: list[tuple[bytes, bytes]], chunks: int) -> tuple[int, int, str]:
    """POST /api/score straight to the ASGI app with a body of ``chunks`` 64 KiB chunks; the
    status, the bytes the app took and the response text."""
    import asyncio

    head = _PART_HEAD + b"\x89PNG\r\n\x1a\n"
    state = {"sent": 0, "taken": 0}
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        if state["sent"] >= chunks:
            return {"type": "http.disconnect"}
        chunk = head + bytes(65536 - len(head)) if state["sent"] == 0 else bytes(65536)
        state["sent"] += 1
        state["taken"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": state["sent"] < chunks}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/score",
        "raw_path": b"/api/score",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return int(out["status"]), state["taken"], out["body"].decode()


def test_an_oversize_upload_is_refused_before_it_is_read_whole(
    folder: Folder, scorer: Scorer
) -> None:
    app = create_app(folder.out, scorer=scorer, max_upload_bytes=200_000)
    multipart = [(b"content-type", b"multipart/form-data; boundary=xyz")]
    declared = [*multipart, (b"content-length", str(50 * 2**20).encode())]
    status, taken, text = _asgi_post(app, declared, chunks=800)
    assert (status, taken) == (413, 0) and "larger than the limit of 0.190735 MiB" in text
    # no Content-Length (chunked): cut off once the streamed bytes pass the limit
    status, taken, text = _asgi_post(app, multipart, chunks=800)
    assert status == 413 and "larger than the limit" in text
    assert taken <= 200_000 + 64 * 1024 + 65536  # 4 of the 800 chunks
    client = TestClient(app)

    def body() -> Any:
        yield _PART_HEAD
        for _ in range(100):
            yield bytes(65536)

    r = client.post(
        "/api/score", content=body(), headers={"Content-Type": multipart[0][1].decode()}
    )
    assert r.status_code == 413 and "larger than the limit" in r.json()["detail"]
    assert client.get("/api/health").status_code == 200


def test_ids_not_names_in_urls_pages_and_logs(
    client: TestClient, folder: Folder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="aacscore")
    listed = client.get("/api/cases").json()["cases"]
    assert {c["name"] for c in listed} == {"patient film.dcm", "second.png", "gone.png"}
    assert all("patient" not in c["id"] for c in listed)
    page = client.get(f"/cases/{folder.dicom_id}")
    assert page.status_code == 200 and "patient" not in page.text
    client.put(f"/api/cases/{folder.dicom_id}/review", json={"version": 0})
    client.get(f"/api/cases/{folder.missing_id}/film.u16")
    assert caplog.records and not any("patient" in r.getMessage() for r in caplog.records)


def test_rescore_and_review_with_moved_bounds_and_relabelled_levels(
    client: TestClient, folder: Folder
) -> None:
    doc = client.get(f"/api/cases/{folder.dicom_id}").json()["document"]
    url = f"/api/cases/{folder.dicom_id}/rescore"
    b = doc["spine"]["bounds"]["L3/L4"]
    moved = {"anterior": [b["anterior"][0], b["anterior"][1] + 8], "posterior": b["posterior"]}
    plain = client.post(url, json={}).json()
    out = client.post(url, json={"bounds": {"L3/L4": moved}}).json()
    assert out["moved_bounds"] == ["L3/L4"]
    assert out["bounds"]["L3/L4"]["anterior"] == moved["anterior"]
    assert out["band_outline_film_xy"] != plain["band_outline_film_xy"]
    shift = {"T12": "L1", "L1": "L2", "L2": "L3", "L3": "L4", "L4": "L5", "L5": "S1", "S1": None}
    relab = client.post(url, json={"labels": shift}).json()
    assert relab["levels"] == shift
    assert relab["bounds"]["L2/L3"]["anterior"] == pytest.approx(
        doc["spine"]["bounds"]["L1/L2"]["anterior"]
    )
    bad = client.post(url, json={"labels": {"L1": "L2"}})
    assert bad.status_code == 422 and "two bodies" in bad.json()["detail"]
    review = f"/api/cases/{folder.dicom_id}/review"
    dup = client.put(review, json={"version": 0, "labels": {"L1": "L2"}})
    assert dup.status_code == 422 and "two bodies" in dup.json()["detail"]
    unknown = client.put(review, json={"version": 0, "bounds": {"L9/L10": moved}})
    assert unknown.status_code == 422 and "unknown bound" in unknown.json()["detail"]
    ok = client.put(
        review, json={"version": 0, "labels": shift, "bounds": {"L3/L4": moved}, "rescored": out}
    )
    assert ok.status_code == 200, ok.text
    saved = client.get(f"/api/cases/{folder.dicom_id}").json()["review"]
    assert saved["labels"] == shift and saved["bounds"] == {"L3/L4": moved}
