"""The HTTP routes: JSON API under /api, the web page at /, OpenAPI docs at /docs.

Every /api route but the session's needs a caller (`Authorization: Bearer TOKEN`, or the
page's cookie); none or a bad one is 401. A record or segment the caller may not see is
404, exactly like a missing one: the reads run under RLS and simply find nothing.

Annotations here are evaluated (no `from __future__ import annotations`): FastAPI reads the
route signatures, and `Auth` is local to the router it guards.
"""

import mimetypes
import tempfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

import mmsearch
from mmsearch.api import reads
from mmsearch.api.auth import COOKIE, Caller
from mmsearch.api.service import (
    BIGINT_MAX,
    LIST_PARAMS,
    PICTURED,
    SearchParams,
    Service,
    subject_of,
)
from mmsearch.errors import DatabaseUnavailable, UserError

#: media types a browser may render inline from our origin; anything else (HTML, SVG, …)
#: is sent as a download, so an ingested page can never run script as the service
INLINE = ("image/", "audio/", "video/")
NOT_INLINE = ("image/svg+xml",)
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self';"
    " script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
NOT_FOUND = "not found"
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
#: record and segment ids are bigint: anything else is a 422, never a database error
RowId = Annotated[int, PathParam(ge=1, le=BIGINT_MAX)]


def create_app(service: Service, *, lifespan: Lifespan | None = None) -> FastAPI:
    """The application; `lifespan` runs around serving (the server publishes itself there)."""
    app = FastAPI(
        lifespan=lifespan,
        title="mmsearch",
        version=mmsearch.__version__,
        description="Multimodal search over text, images, audio and video, in PostgreSQL.",
        docs_url=None,  # served below from the swagger-ui-py package: no CDN, works offline
        redoc_url=None,
    )
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(ValidationError, _invalid_params)
    app.middleware("http")(_security_headers)
    app.include_router(_api_router(service))
    app.mount("/static", StaticFiles(packages=[("mmsearch.api", "static")]), name="static")
    app.mount("/docs-assets", StaticFiles(packages=[("swagger_ui", "static")]), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        assets = f"{_base(request)}/docs-assets"
        return get_swagger_ui_html(
            openapi_url=f"{_base(request)}/openapi.json",
            title="mmsearch API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        html = resources.files("mmsearch.api").joinpath("static/index.html").read_text("utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP})

    return app


def _api_router(service: Service) -> APIRouter:
    api = APIRouter(prefix="/api")
    auth: Any = Annotated[Caller, Depends(service.authenticate)]
    _search_routes(api, service, auth)
    _read_routes(api, service, auth)
    _session_routes(api, auth)
    return api


def _search_routes(api: APIRouter, service: Service, Auth: Any) -> None:
    @api.get("/status")
    def status(caller: Auth) -> dict[str, Any]:
        """Versions, spaces, and the collections as the caller sees them."""
        return service.status(caller)

    @api.get("/search")
    def search(
        caller: Auth, request: Request, params: Annotated[SearchParams, Query()]
    ) -> dict[str, Any]:
        """Search by text (`q`) or "more like" a segment (`like`)."""
        subject = subject_of(params, None)
        return {"hits": service.search(caller, subject, params, _base(request))}

    @api.post("/search", openapi_extra=_EXAMPLE_BODY)
    async def search_post(caller: Auth, request: Request) -> dict[str, Any]:
        """Query by example (the request body is the file; options in the query string),
        or a JSON body with the options of GET /api/search (e.g. `{"like": 42}`)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise HTTPException(400, "the body is not valid JSON") from None
            params = SearchParams.model_validate(body)
            subject = subject_of(params, None)
            hits = await run_in_threadpool(service.search, caller, subject, params, _base(request))
            return {"hits": hits}
        if kind == "multipart/form-data":
            raise HTTPException(415, "send the file itself as the body (curl --data-binary @FILE)")
        params = _params_from_query(request)
        with tempfile.TemporaryDirectory(prefix="mmsearch-query-") as folder:
            example = Path(folder) / f"example{mimetypes.guess_extension(kind) or ''}"
            await _receive(request, example, service.max_upload_bytes)
            subject = subject_of(params, example)
            hits = await run_in_threadpool(service.search, caller, subject, params, _base(request))
        return {"hits": hits}


def _read_routes(api: APIRouter, service: Service, Auth: Any) -> None:
    @api.get("/records/{record_id}")
    def record(caller: Auth, request: Request, record_id: RowId) -> dict[str, Any]:
        """One record the caller may see, with the URL of its media."""
        row = reads.record(service.client.db, caller.principals, record_id) or _missing()
        row["media_url"] = f"{_base(request)}/api/records/{record_id}/media"
        return row

    @api.get("/records/{record_id}/media")
    def media(caller: Auth, record_id: RowId) -> FileResponse:
        """The ingested file (Range requests answer 206, so players can seek)."""
        row = reads.record(service.client.db, caller.principals, record_id) or _missing()
        path = service.files.original(row["uri"], row["sha256"]) or _missing()
        return _file(path, row["mime"], row["title"] or path.name)

    @api.get("/segments/{segment_id}")
    def segment(caller: Auth, request: Request, segment_id: RowId) -> dict[str, Any]:
        """One segment the caller may see (its text, times, metadata) with media URLs."""
        row = reads.segment(service.client.db, caller.principals, segment_id) or _missing()
        base = _base(request)
        metadata = {k: v for k, v in row.pop("metadata").items() if k != "thumbnail"}
        for private in ("uri", "sha256"):
            row.pop(private)
        pictured = row["media_type"] in PICTURED
        return {
            **row,
            "metadata": metadata,
            "media_url": f"{base}/api/records/{row['record_id']}/media",
            "thumbnail_url": f"{base}/api/segments/{segment_id}/thumbnail" if pictured else None,
        }

    @api.get("/segments/{segment_id}/thumbnail")
    def thumbnail(caller: Auth, segment_id: RowId) -> FileResponse:
        """A JPEG: the video shot's keyframe, or the image itself made small."""
        path = _thumbnail_path(service, caller, segment_id) or _missing()
        return _file(path, "image/jpeg", None)


def _session_routes(api: APIRouter, Auth: Any) -> None:
    @api.post("/session")
    def sign_in(caller: Auth, request: Request, response: Response) -> dict[str, Any]:
        """Keep the bearer token in an HttpOnly cookie for the web page's media requests."""
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        if not token:
            raise HTTPException(400, "sign in with Authorization: Bearer TOKEN")
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=request.scope.get("root_path") or "/",
        )
        return {"principals": list(caller.principals)}

    @api.delete("/session")
    def sign_out(request: Request, response: Response) -> dict[str, Any]:
        response.delete_cookie(COOKIE, path=request.scope.get("root_path") or "/")
        return {}


def _thumbnail_path(service: Service, caller: Caller, segment_id: int) -> Path | None:
    row = reads.segment(service.client.db, caller.principals, segment_id)
    if row is None:
        return None
    if row["media_type"] == "image":
        return service.files.image_thumbnail(row["uri"], row["sha256"])
    if row["media_type"] != "video":
        return None
    stored = row["metadata"].get("thumbnail")
    if stored is None:  # a transcript or OCR segment: the shot that covers its start
        at = row["start_s"] or 0.0
        stored = reads.shot_thumbnail(service.client.db, caller.principals, row["record_id"], at)
    return service.files.keyframe(stored)


def _file(path: Path, mime: str, title: str | None) -> FileResponse:
    inline = mime.startswith(INLINE) and mime not in NOT_INLINE
    return FileResponse(
        path,
        media_type=mime if inline else "application/octet-stream",
        filename=None if inline else (title or path.name),
        content_disposition_type="inline" if inline else "attachment",
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


async def _receive(request: Request, target: Path, limit: int) -> None:
    """Stream the body to `target`, refusing more than `limit` bytes (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the example file is over {limit >> 20} MiB")
    received = 0
    with target.open("wb") as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise HTTPException(413, f"the example file is over {limit >> 20} MiB")
            out.write(chunk)
    if received == 0:
        raise HTTPException(400, "POST the example file as the body, or JSON options")


def _params_from_query(request: Request) -> SearchParams:
    query = request.query_params
    return SearchParams.model_validate(
        {name: query.getlist(name) if name in LIST_PARAMS else query[name] for name in query}
    )


def _base(request: Request) -> str:
    """Root-relative URL prefix (behind a proxy at /search/ it is /search)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _missing() -> Any:
    raise HTTPException(404, NOT_FOUND)


async def _user_error(request: Request, exc: Exception) -> JSONResponse:
    status = 503 if isinstance(exc, DatabaseUnavailable) else 400
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _invalid_params(request: Request, exc: Exception) -> JSONResponse:
    """Options parsed by hand (a JSON body, a file upload's query string) fail like FastAPI's."""
    assert isinstance(exc, ValidationError)
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return JSONResponse({"detail": errors}, status_code=422)


async def _security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


_EXAMPLE_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": SearchParams.model_json_schema()},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }
    }
}
