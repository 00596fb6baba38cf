"""Console sessions in cookies, and the CSRF check every state-changing request passes.

The session cookie holds a random token whose digest the store keeps (``PeopleService``);
it is HttpOnly (no script reads it), SameSite=Lax (no cross-site POST carries it) and
Secure whenever the request came over https (``WATCHKEEP_CONSOLE_SECURE_COOKIES``), then
with the ``__Host-`` prefix so no subdomain can set it. Every POST, PUT, PATCH or DELETE
must also carry the session's CSRF token (a form field or the ``X-CSRF-Token`` header that
htmx sends) and, when the browser names one, an ``Origin`` equal to the server's own.
Before login there is no session, so the login form uses a double-submit token: a random
cookie echoed in a hidden field.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from fastapi import Request, Response

from watchkeep.api.wiring import Services
from watchkeep.store.people_repository import SessionUser

SESSION_COOKIE = "wk_session"
LOGIN_CSRF_COOKIE = "wk_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def services(request: Request) -> Services:
    """The app's services."""
    svc: Services = request.app.state.services
    return svc


def secure_cookies(request: Request) -> bool:
    """Whether cookies set on this request are marked Secure (and ``__Host-`` prefixed)."""
    mode = services(request).settings.console_secure_cookies
    if mode == "always":
        return True
    if mode == "never":
        return False
    return request.url.scheme == "https"


def cookie_name(request: Request, base: str) -> str:
    """``base``, with the ``__Host-`` prefix when cookies are Secure."""
    return f"__Host-{base}" if secure_cookies(request) else base


def session_token(request: Request) -> str | None:
    """The session token the browser sent, if any."""
    return request.cookies.get(cookie_name(request, SESSION_COOKIE))


def current_session(request: Request) -> SessionUser | None:
    """The logged-in user of this request (looked up once per request), or None."""
    if hasattr(request.state, "console_session"):
        cached: SessionUser | None = request.state.console_session
        return cached
    token = session_token(request)
    found = services(request).people.session_user(token) if token else None
    request.state.console_session = found
    return found


def set_cookie(request: Request, response: Response, base: str, value: str, max_age: int | None) -> None:
    """Set one of the console's cookies with the flags above."""
    response.set_cookie(
        cookie_name(request, base),
        value,
        max_age=max_age,
        path="/",
        secure=secure_cookies(request),
        httponly=True,
        samesite="lax",
    )


def start_session(request: Request, response: Response, token: str) -> None:
    """Hand the browser a new session's token (and drop the login form's token)."""
    hours = services(request).settings.console_session_hours
    set_cookie(request, response, SESSION_COOKIE, token, int(hours * 3600))
    response.delete_cookie(cookie_name(request, LOGIN_CSRF_COOKIE), path="/")


def end_session(request: Request, response: Response) -> None:
    """Make the browser forget its session."""
    response.delete_cookie(
        cookie_name(request, SESSION_COOKIE), path="/", secure=secure_cookies(request), httponly=True
    )


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


def presented_token(request: Request, form_token: str | None) -> str:
    """The CSRF token a request carries, from its header or form field."""
    return request.headers.get(CSRF_HEADER) or form_token or ""


def csrf_ok(request: Request, expected: str, form_token: str | None) -> bool:
    """Whether a state-changing request carries ``expected`` and comes from this origin."""
    if request.method in SAFE_METHODS:
        return True
    given = presented_token(request, form_token)
    return bool(expected) and same_origin(request) and hmac.compare_digest(given.encode(), expected.encode())


def login_csrf_ok(request: Request, form_token: str | None) -> bool:
    """The login form's double-submit check."""
    cookie = request.cookies.get(cookie_name(request, LOGIN_CSRF_COOKIE)) or ""
    return csrf_ok(request, cookie, form_token)
