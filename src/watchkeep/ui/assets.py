"""The console's static files at ``/static``: our CSS/JS and the npm libraries in ``vendor/``.

``vendor/`` is filled by ``scripts/vendor-ui.sh`` (``make install``) from the npm lockfile and
shipped in the wheel, so nothing is fetched from a CDN at run time. Its files change only with
the lockfile, so browsers may keep them for a year (``immutable``); ``static_url`` adds a
``?v=`` digest of the file's content, so an upgrade is still fetched at once. Our own files
change with each release and get a short lifetime.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
VENDOR_CACHE = "public, max-age=31536000, immutable"
OWN_CACHE = "public, max-age=300"
# What the pages load; a checkout without them has not run the vendor script.
REQUIRED_VENDOR = (
    "htmx.min.js",
    "uPlot.iife.min.js",
    "uPlot.min.css",
    "swagger-ui/swagger-ui-bundle.js",
    "swagger-ui/swagger-ui.css",
)


class CachedStaticFiles(StaticFiles):
    """StaticFiles with a Cache-Control header: long for vendored libraries, short for the rest."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            vendored = path.replace(os.sep, "/").startswith("vendor/")
            response.headers["Cache-Control"] = VENDOR_CACHE if vendored else OWN_CACHE
        return response


class StaticUrls:
    """``/static/<path>?v=<content digest>`` for templates: a new file is a new URL.

    Digests are computed once per path and kept on this instance (one per app), so a
    page render costs a dict lookup.
    """

    def __init__(self, root: Path = STATIC) -> None:
        self.root = root
        self._digests: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        digest = self._digests.get(path)
        if digest is None:
            digest = hashlib.sha256((self.root / path).read_bytes()).hexdigest()[:12]
            self._digests[path] = digest
        return f"/static/{path}?v={digest}"


def missing_vendor_files(root: Path = STATIC) -> list[str]:
    """The vendored files the console needs that are not in ``root/vendor``."""
    return [name for name in REQUIRED_VENDOR if not (root / "vendor" / name).is_file()]


def mount_static(app: FastAPI, root: Path = STATIC) -> None:
    """Serve ``root`` at ``/static`` and put a ``StaticUrls`` on ``app.state.static_url``.

    Fails at startup, not with a blank page later, when the vendored libraries are missing.
    """
    missing = missing_vendor_files(root)
    if missing:
        raise RuntimeError(
            f"the console's browser libraries are missing from {root / 'vendor'} ({', '.join(missing)}):"
            " run `make install` or scripts/vendor-ui.sh"
        )
    app.mount("/static", CachedStaticFiles(directory=root), name="static")
    app.state.static_url = StaticUrls(root)
