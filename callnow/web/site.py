"""The edges of the site: the root address, the favicon, the API docs served from this host,
HTML error pages outside the API, and HEAD wherever GET works."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle  # type: ignore[import-untyped]  # ships no type hints
from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callnow.i18n import N_
from callnow.i18n import gettext as _
from callnow.web import language
from callnow.web.context import templates

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"
# Paths that answer JSON problems (the Call API); everything else is a page for people.
API_PREFIXES = ("/api/",)

ERROR_TEXT = {
    404: (N_("Not found"), N_("There is no page at this address.")),
    405: (N_("Not allowed here"), N_("This address does not take that kind of request.")),
}


@router.get("/")
def root() -> Response:
    return RedirectResponse("/portal", status_code=303)


@router.get("/favicon.ico")
def favicon() -> Response:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


def install(app: FastAPI, openapi_url: str) -> None:
    """Wire the edges into `app` (built with docs_url=None)."""
    app.mount(
        DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets"
    )

    # Swagger UI from this host: an offline PBX network still has its docs, and no CDN learns
    # who reads them.
    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} – docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            oauth2_redirect_url=None,
        )

    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _error_page)  # type: ignore[arg-type]


async def _error_page(request: Request, exc: StarletteHTTPException) -> Response:
    if request.url.path.startswith(API_PREFIXES) or exc.status_code not in ERROR_TEXT:
        return await http_exception_handler(request, exc)
    title, text = ERROR_TEXT[exc.status_code]
    home = "/portal" if request.url.path.startswith("/portal") else "/"
    language.choose(request, None)  # the browser's language, among every shipped one
    return templates.TemplateResponse(
        request,
        "error.html",
        {"title": _(title), "text": _(text), "home": home},
        status_code=exc.status_code,
        headers=exc.headers,
    )


# The public pages declare HEAD themselves and must see it: a HEAD on a one-step link (a link
# checker, a previewer) shows the page and places nothing.
OWN_HEAD_PREFIXES = ("/callnow",)


class HeadAsGet:
    """Answer HEAD as GET without the body (FastAPI routes declare GET only), and end a stream
    once the headers are out. Paths that handle HEAD themselves keep it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def headers_only(message: Message) -> None:
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.body":
                done = True  # one empty final body; a stream's later chunks are dropped
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        async def ended_after_headers() -> Message:
            # Once the headers are out, a stream must stop: tell it the client left.
            if done:
                return {"type": "http.disconnect"}
            return await receive()

        own = scope.get("path", "").startswith(OWN_HEAD_PREFIXES)
        inner = scope if own else {**scope, "method": "GET"}
        await self.app(inner, ended_after_headers, headers_only)
