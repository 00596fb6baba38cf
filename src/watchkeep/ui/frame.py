"""The console's frame: who is looking at which project, and how a page is rendered.

Every project page lives under ``/p/{project}/`` and takes ``Console`` from ``page(...)``,
the one dependency that resolves the session, the project and the user's role in it and
refuses what the role does not permit (the same ``security.authz`` permissions keys have,
so a viewer is refused on the server whatever the browser posts). A page renders with
``render``, which adds the navigation, the CSRF token and the security headers. Pages
call the services the REST API calls; they never run SQL of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from watchkeep.api.wiring import Services
from watchkeep.security.authz import Permission, permissions_of
from watchkeep.store.people_repository import ProjectAccess, SessionUser
from watchkeep.ui.session import current_session, services

# Sent with every console page. Scripts and styles only from this server (no inline code,
# no style attributes), nothing framed, forms only posted here.
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the sidebar: a section of a project (``/p/{project}/{path}``)."""

    title: str
    path: str
    permission: Permission
    shortcut: str | None = None  # ``g`` then this key opens it


class ConsoleRedirect(Exception):
    """Send the browser elsewhere (to the login page when there is no session)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class ConsoleRefusal(Exception):
    """A page the user may not see or that does not exist: an error page with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Console:
    """A request inside a project: the user, the project, the user's permissions there."""

    request: Request
    services: Services
    session: SessionUser
    project: ProjectAccess
    permissions: frozenset[Permission] = field(default_factory=frozenset)

    def can(self, permission: Permission) -> bool:
        """Whether the user's role in the project holds ``permission`` (templates hide
        controls with it; handlers refuse with ``demand``)."""
        return permission in self.permissions

    def demand(self, permission: Permission) -> None:
        """Refuse (403) unless the user holds ``permission``."""
        if not self.can(permission):
            raise ConsoleRefusal(403, f"Your role in this project ({self.project.role}) cannot do that.")

    @property
    def actor(self) -> str:
        """How the user is named in activity and comments."""
        return self.session.user.display_name or self.session.user.email

    def url(self, path: str = "") -> str:
        """The URL of ``path`` inside this project."""
        return f"/p/{quote(self.project.project_name, safe='')}/{path}"


def login_url(request: Request) -> str:
    """The login page, returning to this page afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"


def require_session(request: Request) -> SessionUser:
    """The logged-in user, or a redirect to the login page."""
    session = current_session(request)
    if session is None:
        raise ConsoleRedirect(login_url(request))
    return session


def page(permission: Permission) -> Callable[[Request, str], Console]:
    """The dependency of a project page that needs ``permission`` (its path must hold
    ``{project}``): 303 to login without a session, 404 for a project the user cannot
    open (the same answer as for one that does not exist), 403 without the permission."""

    def dependency(request: Request, project: str) -> Console:
        session = require_session(request)
        svc = services(request)
        access = svc.people.access(session.user.id, project)
        if access is None:
            raise ConsoleRefusal(404, "There is no such project, or you are not a member of it.")
        console = Console(request, svc, session, access, permissions_of(access.role))
        console.demand(permission)
        return console

    dependency.__name__ = f"page_{permission.value.replace(':', '_')}"
    return dependency


def nav_items(request: Request) -> tuple[NavItem, ...]:
    """The sections every project page lists (registered by ``ui.console``)."""
    items: tuple[NavItem, ...] = request.app.state.console_nav
    return items


def environment(request: Request) -> Environment:
    """The Jinja2 environment built once with the app."""
    env: Environment = request.app.state.console_env
    return env


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (a fragment is wanted, not a whole page)."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def render(
    where: Console | Request,
    template: str,
    *,
    status: int = 200,
    fragment: str | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered in the frame. With ``fragment``, an htmx request gets only that
    block of the template (the table rows of a filter change, say), others the whole page."""
    console = where if isinstance(where, Console) else None
    request = console.request if console is not None else where
    assert isinstance(request, Request)
    session = console.session if console is not None else current_session(request)
    values: dict[str, Any] = {
        "request": request,
        "console": console,
        "session": session,
        "csrf_token": session.csrf_token if session is not None else context.pop("csrf_token", ""),
        "nav": [item for item in nav_items(request) if console is not None and console.can(item.permission)],
        "Permission": Permission,
        "projects": (
            console.services.people.projects_for(console.session.user.id) if console is not None else []
        ),
        **context,
    }
    tmpl = environment(request).get_template(template)
    if fragment is not None and is_htmx(request):
        body = "".join(tmpl.blocks[fragment](tmpl.new_context(values)))
    else:
        body = tmpl.render(values)
    response = HTMLResponse(body, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    if headers:
        response.headers.update(headers)
    return response
