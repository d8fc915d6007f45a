"""The FastAPI application of ``aacscore serve``: review pages and the REST API.

Pages: ``/`` (the worklist) and ``/cases/{id}`` (the viewer, with corrections). API (OpenAPI at
``/docs``): ``GET /api/health``, ``GET /api/cases``, ``GET /api/cases/{id}`` (with its review),
``GET /api/cases/{id}/film.png``, ``.../film.u16`` (full bit depth, for window/level),
``.../overlay.png``, ``.../sr.dcm``, ``GET .../reviews`` (the audit trail), ``PUT .../review``,
``POST .../rescore`` and ``POST /api/score``.

Security: with a ``token`` every request (pages, API, static files, ``/docs``) must carry it,
as ``Authorization: Bearer TOKEN`` or the cookie set when a page is opened with ``?token=``;
it is compared in constant time. Cases are named by id only (:mod:`aacscore.serve.cases`).
Uploads are limited in size (a Content-Length over the limit is refused before the body is
read, and the bytes are counted as they stream in, with a hard stop) and their type is sniffed
from their first bytes before anything decodes them. No CORS headers are sent. Logs name cases
by their opaque id, never by file or patient.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import os
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aacscore.serve import require_serve_dependencies

require_serve_dependencies()

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile  # noqa: E402
from fastapi.responses import (  # noqa: E402
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles  # noqa: E402
from fastapi.templating import Jinja2Templates  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from aacscore._version import __version__  # noqa: E402
from aacscore.batch import sr_models_info  # noqa: E402
from aacscore.io import RadiographError, read_radiograph_bytes  # noqa: E402
from aacscore.io.reader import sniff  # noqa: E402
from aacscore.kauppila import SEGMENTS  # noqa: E402
from aacscore.outputs.case_json import CaseDocumentError, case_document  # noqa: E402
from aacscore.serve.cases import (  # noqa: E402
    Case,
    CaseIndex,
    CaseNotFound,
    FilmValues,
    case_summary,
    film_picture,
    png_bytes,
)
from aacscore.serve.rescore import RescoreError, relabelled, rescore  # noqa: E402
from aacscore.serve.store import (  # noqa: E402
    Decision,
    ReviewChange,
    ReviewError,
    ReviewStore,
    VersionConflict,
)
from aacscore.vertebrae import CORNER_NAMES, DISC_NAMES, LEVEL_ORDER  # noqa: E402

if TYPE_CHECKING:
    from aacscore.pipeline import Scorer

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TOKEN_COOKIE = "aacscore_token"
TOKEN_ENV = "AACSCORE_TOKEN"
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
"""Largest upload ``POST /api/score`` takes (a lateral lumbar film is a few MB to ~50 MB)."""
_MULTIPART_SLACK = 64 * 1024
"""Room for the multipart framing around the file in the request's Content-Length."""

UploadKind = Literal["dicom", "png", "jpeg"]
_SUFFIX: dict[str, str] = {"dicom": ".dcm", "png": ".png", "jpeg": ".jpg"}


class BindError(ValueError):
    """A host that may not be served without a token."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a host other than loopback without a token.

    Raises:
        BindError: ``host`` is not a loopback address and ``token`` is empty."""
    if not is_loopback(host) and not token:
        raise BindError(
            f"--host {host} lets other machines connect: give --token (or set {TOKEN_ENV}) so "
            "that only those who know it can"
        )


_UPLOAD_KINDS: tuple[UploadKind, ...] = ("dicom", "png", "jpeg")


def sniff_upload(head: bytes) -> UploadKind | None:
    """The kind of an upload from its first bytes (:func:`aacscore.io.reader.sniff`): DICOM
    (Part 10, ``DICM`` at 128), PNG or JPEG; None for anything else."""
    kind = sniff(head)
    return next((k for k in _UPLOAD_KINDS if k == kind), None)


def _describe(head: bytes) -> str:
    return head[:8].hex(" ") if head else "nothing"


_BOUNDS_DOC = (
    f"Moved Kauppila bounds ({', '.join(DISC_NAMES)}, in the reviewed labelling): "
    "film [x, y] of the anterior and posterior anchors."
)
_LABELS_DOC = "Relabelled levels: the model's level name -> the reviewed one (null: no level)."


class _UploadTooLarge(StarletteHTTPException):
    """The upload passed the size limit while streaming in."""


class UploadLimit:
    """ASGI middleware: refuse a request body to ``path`` over ``limit`` bytes with 413, from
    its Content-Length before reading it, else as soon as the streamed bytes pass the limit
    (the rest is never read)."""

    def __init__(self, app: ASGIApp, path: str, limit: int, message: str) -> None:
        self.app = app
        self.path = path
        self.limit = limit
        self.message = message

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self.message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _UploadTooLarge(413, self.message)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _UploadTooLarge:
            if started:
                raise
            await self._refuse(send)


class ReviewBody(BaseModel):
    """A review change, made on review ``version`` of the case (0: never reviewed)."""

    version: int = Field(ge=0, description="The case's review version the change was made on.")
    reviewer: str | None = Field(
        default=None, max_length=100, description="Defaults to the server's --reviewer."
    )
    decision: Decision = Decision.PENDING
    comment: str = Field(default="", max_length=4000)
    grades: dict[str, int] | None = Field(
        default=None, description=f"The 8 integer grades 0-3 ({', '.join(SEGMENTS)})."
    )
    vertebrae: dict[str, list[list[float]]] | None = Field(
        default=None,
        description=f"Corrected corners, per model level four [x, y] ({', '.join(CORNER_NAMES)}).",
    )
    bounds: dict[str, dict[str, list[float]]] | None = Field(default=None, description=_BOUNDS_DOC)
    labels: dict[str, str | None] | None = Field(default=None, description=_LABELS_DOC)
    rescored: dict[str, Any] | None = None


class RescoreBody(BaseModel):
    """Corrected corners (per model level, four film [x, y] points; the others stay as found),
    the relabelling and the moved bounds."""

    vertebrae: dict[str, list[list[float]]] = Field(default_factory=dict)
    labels: dict[str, str | None] | None = Field(default=None, description=_LABELS_DOC)
    bounds: dict[str, dict[str, list[float]]] | None = Field(default=None, description=_BOUNDS_DOC)


class _State:
    """What one application holds: the folder, the store, the scorer (loaded once)."""

    def __init__(
        self,
        out_dir: Path,
        scorer: Scorer | None,
        scorer_kwargs: Mapping[str, Any] | None,
        reviewer: str,
    ) -> None:
        self.index = CaseIndex(out_dir)
        self.store = ReviewStore.for_folder(out_dir)
        self.reviewer = reviewer
        self._scorer = scorer
        self._scorer_kwargs = dict(scorer_kwargs or {})
        self._lock = threading.Lock()

    def scorer(self) -> Scorer:
        if self._scorer is None:
            from aacscore.pipeline import Scorer

            self._scorer = Scorer(**self._scorer_kwargs)
        return self._scorer

    def run(self, fn: Callable[[Scorer], Any]) -> Any:
        """Run ``fn`` with the scorer, one at a time (models are loaded once, not per call)."""
        with self._lock:
            return fn(self.scorer())


def create_app(
    out_dir: str | Path,
    token: str | None = None,
    *,
    reviewer: str = "reviewer",
    scorer: Scorer | None = None,
    scorer_kwargs: Mapping[str, Any] | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
) -> FastAPI:
    """The application serving the results folder ``out_dir``.

    ``token``: required on every request when given. ``scorer`` (or ``scorer_kwargs`` for the
    :class:`~aacscore.pipeline.Scorer` made on the first scoring request) scores uploads and
    re-scores corrected geometry. ``reviewer``: the name saved with a review that names none.

    Raises:
        FolderError: ``out_dir`` is not a results folder.
        StoreError: its ``reviews.sqlite`` cannot be used."""
    state = _State(Path(out_dir), scorer, scorer_kwargs, reviewer)
    app = FastAPI(
        title="aacscore",
        version=__version__,
        description="Kauppila AAC-24 scoring and review. Research use only; not a medical device.",
    )
    app.state.aacscore = state
    app.add_middleware(
        UploadLimit,
        path="/api/score",
        limit=max_upload_bytes + _MULTIPART_SLACK,
        message=_too_large(max_upload_bytes),
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    if token:
        secret = token.encode()

        @app.middleware("http")
        async def _require_token(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            header = request.headers.get("authorization", "")
            given = header[7:] if header[:7].lower() == "bearer " else ""
            given = given or request.cookies.get(TOKEN_COOKIE, "")
            if given and hmac.compare_digest(given.encode(), secret):
                return await call_next(request)
            query = request.query_params.get("token")
            if query is not None and request.method == "GET":
                if hmac.compare_digest(query.encode(), secret):
                    target = request.url.remove_query_params("token")
                    resp = RedirectResponse(str(target.path) + _query(target.query), 303)
                    resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                    return resp
            return JSONResponse(
                {"detail": "a valid token is required (Authorization: Bearer TOKEN, or ?token=)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )

    def case_or_404(case_id: str) -> Case:
        try:
            return state.index.get(case_id)
        except CaseNotFound:
            raise HTTPException(404, f"no case {case_id!r} in this results folder") from None

    def document_or_500(case: Case) -> dict[str, Any]:
        try:
            return case.document()
        except CaseDocumentError as e:
            log.warning("case %s: its case JSON cannot be read", case.id)
            raise HTTPException(500, f"case {case.id}: {e}") from None

    def film_or_404(case: Case) -> Any:
        try:
            return state.index.film(case)
        except (RadiographError, OSError):
            log.warning("case %s: the film cannot be read again", case.id)
            raise HTTPException(
                404, f"case {case.id}: the film it was scored from cannot be read any more"
            ) from None

    def summaries() -> list[dict[str, Any]]:
        reviews = state.store.latest_all()
        return [
            case_summary(c, reviews[c.id].as_dict() if c.id in reviews else None)
            for c in state.index.cases()
        ]

    # --- pages ---------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def worklist_page(request: Request) -> Response:
        return templates.TemplateResponse(
            request,
            "worklist.html",
            {"folder": state.index.out_dir.name, "version": __version__},
        )

    @app.get("/cases/{case_id}", response_class=HTMLResponse, include_in_schema=False)
    def viewer_page(request: Request, case_id: str) -> Response:
        case = case_or_404(case_id)
        return templates.TemplateResponse(
            request,
            "viewer.html",
            {
                "case_id": case.id,
                "folder": state.index.out_dir.name,
                "version": __version__,
                "segments": SEGMENTS,
                "levels": LEVEL_ORDER,
                "reviewer": state.reviewer,
            },
        )

    # --- API -----------------------------------------------------------------------------

    @app.get("/api/health", tags=["service"])
    def health() -> dict[str, Any]:
        """The service is up; the version and the number of cases."""
        return {"status": "ok", "version": __version__, "cases": len(state.index.cases())}

    @app.get("/api/cases", tags=["cases"])
    def list_cases(
        status: str | None = Query(None, description="ok, warning or failed"),
        error_code: str | None = None,
        group: str | None = None,
        reviewed: bool | None = None,
    ) -> dict[str, Any]:
        """The worklist: every case (filtered), and counts over the whole folder."""
        rows = summaries()
        counts: dict[str, Any] = {
            "total": len(rows),
            "reviewed": sum(r["reviewed"] for r in rows),
            "status": {},
        }
        for r in rows:
            counts["status"][r["status"]] = counts["status"].get(r["status"], 0) + 1
        keep = [
            r
            for r in rows
            if (status is None or r["status"] == status)
            and (error_code is None or r.get("error_code", "") == error_code)
            and (group is None or r.get("group", "") == group)
            and (reviewed is None or r["reviewed"] == reviewed)
        ]
        return {"counts": counts, "cases": keep}

    @app.get("/api/cases/{case_id}", tags=["cases"])
    def get_case(case_id: str) -> dict[str, Any]:
        """A case: its summary, its case JSON (``document``) and its current review."""
        case = case_or_404(case_id)
        review = state.store.latest(case.id)
        return {
            "id": case.id,
            "summary": case_summary(case, None if review is None else review.as_dict()),
            "document": document_or_500(case),
            "review": None if review is None else review.as_dict(),
            "version": 0 if review is None else review.version,
            "has_overlay": case.overlay_path.is_file(),
            "has_sr": case.sr_path.is_file(),
        }

    @app.get("/api/cases/{case_id}/reviews", tags=["reviews"])
    def case_reviews(case_id: str) -> list[dict[str, Any]]:
        """Every saved change of a case, oldest first (the audit trail)."""
        case = case_or_404(case_id)
        return [r.as_dict() for r in state.store.history(case.id)]

    @app.get(
        "/api/cases/{case_id}/film.png",
        tags=["cases"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def film_png(case_id: str) -> Response:
        """The film, 8-bit, at most 2048 px; ``X-Film-Scale``: picture px per film px."""
        case = case_or_404(case_id)
        pic = film_picture(film_or_404(case))
        return Response(
            pic.png,
            media_type="image/png",
            headers={"X-Film-Scale": f"{pic.scale:.8f}", "Cache-Control": "private, max-age=60"},
        )

    @app.get(
        "/api/cases/{case_id}/film.u16",
        tags=["cases"],
        response_class=Response,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    def film_u16(request: Request, case_id: str) -> Response:
        """The film's full-bit-depth values at most 2048 px, for window/level in the browser:
        little-endian uint16 codes row by row (gzip content coding when accepted); value =
        ``X-Film-Offset`` + code x ``X-Film-Step`` (DICOM: modality values, after rescale;
        other formats: stored values). ``X-Film-Width``/``-Height``: size; ``X-Film-Scale``:
        picture px per film px; ``X-Window-Center``/``-Width``: the default window (the DICOM's
        when it has one, ``X-Window-Source: dicom``, else the full range); ``X-Film-Invert: 1``:
        show low values bright (MONOCHROME1)."""
        case = case_or_404(case_id)
        try:
            pic: FilmValues = state.index.film_values(case)
        except (RadiographError, OSError):
            log.warning("case %s: the film cannot be read again", case.id)
            raise HTTPException(
                404, f"case {case.id}: the film it was scored from cannot be read any more"
            ) from None
        rows, cols = pic.codes.shape
        headers = {
            "X-Film-Width": str(cols),
            "X-Film-Height": str(rows),
            "X-Film-Scale": f"{pic.scale:.8f}",
            "X-Film-Offset": repr(pic.offset),
            "X-Film-Step": repr(pic.step),
            "X-Window-Center": repr(pic.window[0]),
            "X-Window-Width": repr(pic.window[1]),
            "X-Window-Source": pic.window_source,
            "X-Film-Invert": "1" if pic.invert else "0",
            "Cache-Control": "private, max-age=60",
            "Vary": "Accept-Encoding",
        }
        body = pic.gzip_bytes()
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            headers["Content-Encoding"] = "gzip"
        else:
            body = pic.codes.astype("<u2").tobytes()
        return Response(body, media_type="application/octet-stream", headers=headers)

    @app.get(
        "/api/cases/{case_id}/overlay.png",
        tags=["cases"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def overlay_png(case_id: str) -> Response:
        """The batch's overlay, or one drawn now from the case JSON and the film."""
        case = case_or_404(case_id)
        if case.overlay_path.is_file():
            return Response(case.overlay_path.read_bytes(), media_type="image/png")
        from aacscore.outputs.overlay import overlay_image

        document_or_500(case)
        rad = film_or_404(case)
        try:
            rgb = overlay_image(rad, state.index.result(case, rad))
        except CaseDocumentError as e:
            raise HTTPException(500, f"case {case.id}: {e}") from None
        return Response(png_bytes(rgb), media_type="image/png")

    @app.get(
        "/api/cases/{case_id}/sr.dcm",
        tags=["cases"],
        response_class=Response,
        responses={200: {"content": {"application/dicom": {}}}},
    )
    def sr_dcm(case_id: str) -> Response:
        """The DICOM SR the batch wrote for the case (``aacscore score --dicom-out``)."""
        case = case_or_404(case_id)
        if not case.sr_path.is_file():
            raise HTTPException(
                404, f"case {case.id}: no DICOM SR (score DICOM films with --dicom-out)"
            )
        return Response(case.sr_path.read_bytes(), media_type="application/dicom")

    @app.put("/api/cases/{case_id}/review", tags=["reviews"])
    def put_review(case_id: str, body: ReviewBody) -> dict[str, Any]:
        """Save a change as the case's next review version; 409 when the case was changed
        since ``version``."""
        case = case_or_404(case_id)
        if body.labels:
            doc = document_or_500(case)
            try:
                relabelled((doc.get("spine") or {}).get("vertebrae") or {}, body.labels)
            except RescoreError as e:
                raise HTTPException(422, f"case {case.id}: {e}") from None
        change = ReviewChange(
            decision=body.decision,
            comment=body.comment,
            grades=body.grades,
            vertebrae=body.vertebrae,
            rescored=body.rescored,
            bounds=body.bounds,
            labels=body.labels,
        )
        try:
            review = state.store.save(
                case.id, body.reviewer or state.reviewer, change, body.version
            )
        except VersionConflict as e:
            raise HTTPException(409, {"message": str(e), "current_version": e.current}) from None
        except ReviewError as e:
            raise HTTPException(422, str(e)) from None
        log.info("case %s: review version %d saved", case.id, review.version)
        return review.as_dict()

    @app.post("/api/cases/{case_id}/rescore", tags=["reviews"])
    async def post_rescore(case_id: str, body: RescoreBody) -> dict[str, Any]:
        """Recompute the bounds, the band and the model's grades from corrected corners and
        labels; moved bounds replace those recomputed."""
        case = case_or_404(case_id)
        doc = document_or_500(case)
        rad = film_or_404(case)

        def work(scorer: Scorer) -> dict[str, Any]:
            return rescore(
                rad,
                doc,
                body.vertebrae,
                scorer.score_model,
                scorer.groups,
                labels=body.labels,
                bounds=body.bounds,
            )

        try:
            out: dict[str, Any] = await run_in_threadpool(state.run, work)
        except RescoreError as e:
            raise HTTPException(422, f"case {case.id}: {e}") from None
        return out

    @app.post("/api/score", tags=["service"])
    async def score_upload(
        file: UploadFile = File(..., description="One DICOM (Part 10), PNG or JPEG film."),
        sr: bool = Query(False, description="Also return the DICOM SR (DICOM inputs only)."),
    ) -> dict[str, Any]:
        """Score one uploaded film; returns its case JSON (and ``dicom_sr_base64`` with
        ``sr=1``). The film is called ``upload.<ext>`` in the result."""
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, _too_large(max_upload_bytes))
        kind = sniff_upload(data[:132])
        if kind is None:
            raise HTTPException(
                415,
                "the upload is not a DICOM (Part 10, 'DICM' at byte 128), PNG or JPEG file "
                f"(it starts with {_describe(data)})",
            )
        if sr and kind != "dicom":
            raise HTTPException(
                422, f"sr=1: a DICOM SR is written for DICOM inputs only; this upload is {kind}"
            )
        name = f"upload{_SUFFIX[kind]}"

        def work(scorer: Scorer) -> dict[str, Any]:
            rad = read_radiograph_bytes(data, name, spacing_mm=scorer.spacing_mm)
            result = scorer.score_radiograph(rad, name)
            doc = case_document(result)
            if sr:
                doc["dicom_sr_base64"] = _sr_base64(scorer, result)
            return doc

        try:
            out: dict[str, Any] = await run_in_threadpool(state.run, work)
        except RadiographError as e:
            raise HTTPException(422, f"the upload cannot be read as {kind}: {e.problem}") from None
        except _NoSR as e:
            raise HTTPException(422, f"sr=1: no DICOM SR for this upload: {e}") from None
        log.info("scored an upload (%s): %s", kind, out.get("status"))
        return out

    return app


class _NoSR(Exception):
    """The scored upload gives no DICOM SR (the reason is the message)."""


def _sr_base64(scorer: Scorer, result: Any) -> str:
    from aacscore.outputs.dicom import DicomOutputError, write_dicom_outputs

    with tempfile.TemporaryDirectory(prefix="aacscore_sr_") as tmp:
        try:
            outs = write_dicom_outputs(
                result, None, Path(tmp), "upload", models=sr_models_info(scorer)
            )
        except DicomOutputError as e:
            raise _NoSR(str(e)) from e
        if outs.sr is None:
            raise _NoSR(outs.skipped or "not written")
        return base64.b64encode(outs.sr.read_bytes()).decode("ascii")


def _too_large(limit: int) -> str:
    return f"the upload is larger than the limit of {limit / 2**20:g} MiB"


def _query(query: str) -> str:
    return f"?{query}" if query else ""


def token_from_env(token: str | None) -> str | None:
    """``token``, or the ``AACSCORE_TOKEN`` environment variable when not given."""
    return token or os.environ.get(TOKEN_ENV) or None


CONFIG_ENV = "AACSCORE_SERVE_CONFIG"
"""The environment variable :func:`app_from_env` reads its JSON settings from."""


def app_from_env() -> FastAPI:
    """The application for one of several uvicorn worker processes (``factory=True``), from
    the JSON in ``AACSCORE_SERVE_CONFIG`` (``out_dir``, ``reviewer``, ``scorer_kwargs``,
    ``max_upload_bytes``) and the token in ``AACSCORE_TOKEN``; each worker loads its models
    once."""
    config = json.loads(os.environ[CONFIG_ENV])
    return create_app(
        config["out_dir"],
        token_from_env(None),
        reviewer=config.get("reviewer", "reviewer"),
        scorer_kwargs=config.get("scorer_kwargs") or {},
        max_upload_bytes=int(config.get("max_upload_bytes", MAX_UPLOAD_BYTES)),
    )
