"""Security headers on every HTTP response, and CORS only where the operator opens it.

A pure-ASGI layer in the app's front chain (so gateway fast-path answers get the headers
too): it adds what a response has not set itself. Console pages already send their own
Content-Security-Policy (``ui.frame``) and ``/docs`` sends Swagger UI's; any other HTML
gets ``CONSOLE_CSP`` and everything else (JSON, files) ``API_CSP``, which allows nothing,
so a response that a browser is tricked into rendering runs no script. HSTS is sent only
over https (behind a proxy, uvicorn's ``--proxy-headers`` sets the scheme).

CORS is closed by default: without ``WATCHKEEP_CORS_ALLOW_ORIGINS`` no cross-origin
browser call gets an ``Access-Control-Allow-Origin``. When origins are listed, Starlette's
``CORSMiddleware`` answers them without credentials: the REST API authenticates with
bearer keys, and a console cookie must never ride a cross-origin request.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeep.config import Settings

# The console loads scripts and styles only from this server and has no inline code.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=31536000; includeSubDomains"
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)
BASELINE: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_HEADERS = ("authorization", "content-type", "x-request-id")


def with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], *, https: bool
) -> list[tuple[bytes, bytes]]:
    """``headers`` plus each security header they lack (a header already set is kept)."""
    result = list(headers)
    present = {name.lower() for name, _ in result}
    result.extend(pair for pair in BASELINE if pair[0] not in present)
    if b"content-security-policy" not in present:
        content_type = next((v for n, v in result if n.lower() == b"content-type"), b"")
        policy = CONSOLE_CSP if content_type.startswith(b"text/html") else API_CSP
        result.append((b"content-security-policy", policy.encode()))
    if https and b"strict-transport-security" not in present:
        result.append((b"strict-transport-security", HSTS.encode()))
    return result


class SecurityHeaders:
    """Adds ``with_security_headers`` to every HTTP response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers", ()), https=https)
            await send(message)

        await self.app(scope, receive, send_secured)


def secure_front(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind the security headers and, when origins are configured, CORS."""
    inner = app
    if settings.cors_allow_origins:
        inner = CORSMiddleware(
            app,
            allow_origins=list(settings.cors_allow_origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            allow_credentials=False,
            max_age=600,
        )
    return SecurityHeaders(inner)
