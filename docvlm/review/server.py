"""``docvlm review --serve``: the review page on 127.0.0.1 with editing (Starlette + uvicorn).

Routes: ``GET /`` the page (the same page as the static file, in ``serve`` mode),
``GET /pages/...`` the page images, ``GET /api/corrections`` the latest action per field,
``POST /api/corrections`` one action ``{doc_id, field, action, value}``: checked against the
schema, then appended to ``OUT/corrections.parquet`` before the answer goes back.

Only local use is meant: the server binds to 127.0.0.1, accepts only ``Host: 127.0.0.1`` /
``localhost`` (no DNS rebinding) and refuses writes from another origin.
"""

from __future__ import annotations

import logging
from typing import Any

from docvlm.review.corrections import CorrectionError, CorrectionLog, make_correction
from docvlm.review.page import PAGES_DIR, ReviewData, render_html, write_page

logger = logging.getLogger(__name__)


def create_app(data: ReviewData, reviewer: str) -> Any:
    """The Starlette application serving ``data`` (schema required for editing)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    schema = data.options.schema
    if schema is None:
        raise CorrectionError("serving the review page needs the schema (--schema FILE)")
    log = CorrectionLog(data.out_dir)
    pages = data.review_dir / PAGES_DIR
    pages.mkdir(parents=True, exist_ok=True)

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(render_html(data, "serve", log.latest()))

    async def list_corrections(request: Request) -> JSONResponse:
        rows = [{"doc_id": k[0], "field": k[1], **v} for k, v in log.latest().items()]
        return JSONResponse(rows)

    async def add_correction(request: Request) -> JSONResponse:
        origin = request.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
            return JSONResponse({"error": "cross-origin writes are refused"}, status_code=403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "send JSON (Content-Type: application/json)"}, 415)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "send a JSON object"}, status_code=400)
        doc = data.document(str(body.get("doc_id")))
        if doc is None:
            return JSONResponse({"error": f"no document {body.get('doc_id')!r}"}, 404)
        field = str(body.get("field") or "")
        latest = log.latest()
        row = next((r for r in doc["rows"] if r["field"] == field), None)
        old = row["raw"] if row else None
        before = latest.get((doc["doc_id"], field))
        if before is not None:
            from docvlm.review.corrections import decode

            old = decode(before["new_value"]) if before["action"] != "absent" else None
        value = body.get("value")
        try:
            stored = make_correction(
                schema, doc["doc_id"], doc["source"], field, str(body.get("action")), old,
                None if value is None else str(value), reviewer,
            )  # fmt: skip
        except CorrectionError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        stored = log.append(stored)
        write_page(data, log.latest())  # the static page shows the corrections too
        return JSONResponse({"ok": True, "correction": stored})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/index.html", index),
            Route("/api/corrections", list_corrections, methods=["GET"]),
            Route("/api/corrections", add_correction, methods=["POST"]),
            Mount(f"/{PAGES_DIR}", app=StaticFiles(directory=pages), name="pages"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])],
    )


def serve(data: ReviewData, port: int = 8765, reviewer: str = "reviewer") -> None:
    """Serve the review page on ``http://127.0.0.1:PORT/`` until interrupted."""
    import uvicorn

    app = create_app(data, reviewer)
    print(f"review: http://127.0.0.1:{port}/  (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
