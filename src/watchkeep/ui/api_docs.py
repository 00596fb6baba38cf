"""``/docs``: the API browser (Swagger UI) served from the wheel, with no CDN and no inline script.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline ``<script>``, so it
is blank offline and breaks under a strict Content-Security-Policy. This page loads the
vendored bundle and ``/static/swagger-init.js``, which reads its settings from ``data-``
attributes, and sends the policy it works under.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from watchkeep.ui.assets import mount_static

router = APIRouter()

# What Swagger UI needs: its own script and stylesheet; inline styles (React sets style
# attributes); its icons as data: images; fetches of the schema and of "Try it out" calls.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""


def _root(request: Request) -> str:
    """The prefix the app is served under (``--root-path`` behind a proxy), usually empty."""
    return str(request.scope.get("root_path", ""))


def _static(request: Request, path: str) -> str:
    """A static file's URL with its content digest (``StaticUrls``, set up by ``install``)."""
    url: Callable[[str], str] = request.app.state.static_url
    return _root(request) + url(path)


@router.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    """The interactive API browser; a key is entered under Authorize and kept across reloads."""
    page = PAGE.format(
        title=escape(request.app.title),
        favicon=escape(_static(request, "vendor/swagger-ui/favicon-32x32.png")),
        css=escape(_static(request, "vendor/swagger-ui/swagger-ui.css")),
        bundle=escape(_static(request, "vendor/swagger-ui/swagger-ui-bundle.js")),
        init=escape(_static(request, "swagger-init.js")),
        openapi=escape(_root(request) + (request.app.openapi_url or "/openapi.json")),
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and the static files it loads (``/static``, shared with the console)."""
    app.include_router(router)
    mount_static(app)
