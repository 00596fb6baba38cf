"""Logging in and out of the console.

The login form is throttled per address (``WATCHKEEP_LOGIN_ATTEMPTS_PER_MINUTE`` is not
needed: 30 a minute per address, on top of the per-account lockout of ``PeopleService``)
and answers every failure with the same message, so it never tells whether an address
has an account. ``next`` only ever leads to a path on this server. With
``WATCHKEEP_OIDC_ISSUER`` set the page also offers "Sign in with SSO" (``security.oidc``):
``/auth/oidc/login`` keeps the state, nonce and PKCE verifier in a short-lived HttpOnly
cookie and ``/auth/oidc/callback`` checks them before a session starts.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from watchkeep.monitor.quota import PerMinute
from watchkeep.security.oidc import OidcClient, OidcError, sign_in
from watchkeep.security.people import LoginRefused
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import render, require_session
from watchkeep.ui.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    cookie_name,
    current_session,
    end_session,
    login_csrf_ok,
    services,
    session_token,
    set_cookie,
    start_session,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
LOGIN_ATTEMPTS_PER_MINUTE = 30


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this server, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _address_key(request: Request) -> int:
    host = request.client.host if request.client else "0.0.0.0"
    try:
        return int(ipaddress.ip_address(host))
    except ValueError:
        return 0


def _login_page(
    request: Request, *, next_url: str, email: str = "", error: str = "", status: int = 200
) -> Response:
    token = request.cookies.get(cookie_name(request, LOGIN_CSRF_COOKIE)) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        status=status,
        csrf_token=token,
        next_url=next_url,
        email=email,
        error=error,
        sso=bool(services(request).settings.oidc_issuer),
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    """The login page (straight on to ``next`` when already logged in)."""
    if current_session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_url=safe_next(next))


async def _audit(request: Request, action: str, email: str, detail: str) -> None:
    """A server-wide audit entry (no project) for a login or a refused one."""
    await run_in_threadpool(
        services(request).audit.record,
        actor=f"user:{email}",
        action=action,
        target=f"user:{email}",
        detail=detail,
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the password and start a session."""
    raw = await request.form(max_fields=10, max_files=0)
    values = {k: v for k, v in raw.items() if isinstance(v, str)}
    next_url = safe_next(values.get("next"))
    email = values.get("email", "")[:320]
    if not login_csrf_ok(request, values.get(CSRF_FIELD)):
        return _login_page(
            request,
            next_url=next_url,
            email=email,
            error="The form had expired; please try again.",
            status=403,
        )
    limit: PerMinute = request.app.state.login_limit
    if limit.take(_address_key(request)) is not None:
        return _login_page(
            request, next_url=next_url, email=email, error="Too many attempts; wait a minute.", status=429
        )
    address = request.client.host if request.client else None
    try:
        token, _ = await run_in_threadpool(
            services(request).people.login,
            email,
            values.get("password", "")[:1024],
            user_agent=(request.headers.get("user-agent") or "")[:300] or None,
            address=address,
        )
    except LoginRefused as refused:
        await _audit(request, "login.failed", email, f"from {address}: {refused.message}")
        return _login_page(request, next_url=next_url, email=email, error=refused.message, status=401)
    await _audit(request, "login", email, f"from {address}")
    response = RedirectResponse(next_url, status_code=303)
    start_session(request, response, token)
    return response


OIDC_COOKIE = "wk_oidc"
OIDC_COOKIE_SECONDS = 600


def _oidc(request: Request) -> OidcClient:
    """The app's OpenID Connect client (made on first use, so its caches live with the app)."""
    client: OidcClient | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        try:
            client = OidcClient.from_settings(services(request).settings)
        except ValueError as bad:
            log.warning("single sign-on is misconfigured: %s", bad)
            raise OidcError("single sign-on is misconfigured on this server") from None
        if client is None:
            raise OidcError("single sign-on is not configured on this server")
        request.app.state.oidc_client = client
    return client


def _callback_url(request: Request) -> str:
    return str(request.url_for("oidc_callback"))


@router.get("/auth/oidc/login")
async def oidc_login(request: Request, next: str | None = None, invitation: str | None = None) -> Response:
    """Send the browser to the provider; ``invitation`` (a token) lets an invited person
    without an account get one for the invited address."""
    try:
        start = await _oidc(request).start(_callback_url(request))
    except OidcError as failed:
        return _login_page(request, next_url=safe_next(next), error=failed.message, status=503)
    kept = {
        "state": start.state,
        "nonce": start.nonce,
        "verifier": start.code_verifier,
        "next": safe_next(next),
        "invitation": invitation[:200] if invitation else None,
    }
    response = RedirectResponse(start.url, status_code=303)
    value = base64.urlsafe_b64encode(json.dumps(kept).encode()).decode()
    set_cookie(request, response, OIDC_COOKIE, value, OIDC_COOKIE_SECONDS)
    return response


def _kept_login(request: Request) -> dict[str, str | None]:
    raw = request.cookies.get(cookie_name(request, OIDC_COOKIE), "")
    try:
        kept = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        kept = None
    if not isinstance(kept, dict) or not all(
        isinstance(kept.get(k), str) for k in ("state", "nonce", "verifier")
    ):
        raise OidcError("the sign-on had expired or was started in another browser; please try again")
    return {k: v if isinstance(v, str) else None for k, v in kept.items()}


async def _oidc_session(request: Request, code: str, state: str) -> tuple[str, str]:
    """The new session's token and where to go, once state, code and ID token check out."""
    kept = _kept_login(request)
    if not hmac.compare_digest(state.encode(), str(kept["state"]).encode()):
        raise OidcError("the sign-on answer does not belong to this browser's login; please try again")
    identity = await _oidc(request).finish(
        code=code,
        redirect_uri=_callback_url(request),
        code_verifier=str(kept["verifier"]),
        nonce=str(kept["nonce"]),
    )
    token, _ = await run_in_threadpool(
        sign_in,
        services(request).people,
        identity,
        invitation=kept.get("invitation"),
        user_agent=(request.headers.get("user-agent") or "")[:300] or None,
        address=request.client.host if request.client else None,
    )
    await _audit(
        request, "login.sso", identity.email, f"issuer {request.app.state.services.settings.oidc_issuer}"
    )
    return token, safe_next(kept.get("next"))


@router.get("/auth/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """Where the provider sends the browser back: start a session or say why not."""
    try:
        if error or not code:
            raise OidcError("the sign-on provider did not sign you in")
        token, next_url = await _oidc_session(request, code[:2048], state[:256])
    except OidcError as failed:
        await _audit(request, "login.sso_failed", "unknown", failed.message[:300])
        response = _login_page(request, next_url="/", error=failed.message, status=401)
    else:
        response = RedirectResponse(next_url, status_code=303)
        start_session(request, response, token)
    response.delete_cookie(cookie_name(request, OIDC_COOKIE), path="/")
    return response


@router.post("/logout")
def logout(request: Request, form: Annotated[Form, Depends(posted)]) -> Response:
    """End this session."""
    token = session_token(request)
    if token:
        services(request).people.logout(token)
    response = RedirectResponse("/login", status_code=303)
    end_session(request, response)
    return response


@router.post("/logout-everywhere")
def logout_everywhere(request: Request, form: Annotated[Form, Depends(posted)]) -> Response:
    """End every session of this user, on every device."""
    session = require_session(request)
    services(request).people.logout_everywhere(session.user.id)
    services(request).audit.record(
        actor=f"user:{session.user.email}",
        action="session.logout_everywhere",
        target=f"user:{session.user.id}",
    )
    response = RedirectResponse("/login", status_code=303)
    end_session(request, response)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    """The first project's overview, or a page saying there is none yet."""
    session = require_session(request)
    projects = services(request).people.projects_for(session.user.id)
    if projects:
        return RedirectResponse(f"/p/{projects[0].project_name}/", status_code=303)
    return render(request, "no_projects.html")


@router.get("/account", response_class=HTMLResponse)
def account(request: Request) -> Response:
    """The user's own page: who they are, their projects and roles, logging out everywhere."""
    session = require_session(request)
    projects = services(request).people.projects_for(session.user.id)
    return render(request, "account.html", my_projects=projects)


@router.get("/switch")
def switch_project(request: Request, project: str = "") -> Response:
    """The project switcher's target: that project's overview."""
    require_session(request)
    return RedirectResponse(f"/p/{quote(project[:200], safe='')}/", status_code=303)
