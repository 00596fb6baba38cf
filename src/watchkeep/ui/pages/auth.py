"""Logging in and out of the console.

The login form is throttled per address (``WATCHKEEP_LOGIN_ATTEMPTS_PER_MINUTE`` is not
needed: 30 a minute per address, on top of the per-account lockout of ``PeopleService``)
and answers every failure with the same message, so it never tells whether an address
has an account. ``next`` only ever leads to a path on this server.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from watchkeep.monitor.quota import PerMinute
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
        request, "login.html", status=status, csrf_token=token, next_url=next_url, email=email, error=error
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    """The login page (straight on to ``next`` when already logged in)."""
    if current_session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_url=safe_next(next))


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
    try:
        token, _ = await run_in_threadpool(
            services(request).people.login,
            email,
            values.get("password", "")[:1024],
            user_agent=(request.headers.get("user-agent") or "")[:300] or None,
            address=request.client.host if request.client else None,
        )
    except LoginRefused as refused:
        return _login_page(request, next_url=next_url, email=email, error=refused.message, status=401)
    response = RedirectResponse(next_url, status_code=303)
    start_session(request, response, token)
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
