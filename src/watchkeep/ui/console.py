"""Mounting the console on the app: its pages, its error pages, its environment.

To add a page: write a module in ``ui/pages/`` with a ``router`` (and a ``NAV`` entry when
it belongs in the sidebar) and list it in ``PAGES``; docs/console.md shows the pattern.
"""

from __future__ import annotations

from types import ModuleType

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeep.monitor.quota import PerMinute
from watchkeep.ui.frame import ConsoleRedirect, ConsoleRefusal, NavItem, is_htmx, render
from watchkeep.ui.pages import (
    activity,
    audit,
    auth,
    canaries,
    datasets,
    evals,
    invitations,
    models,
    monitors,
    overview,
    prompts,
    queues,
    queues_annotate,
    routes,
    sessions,
    settings,
    traces,
    usage,
)
from watchkeep.ui.templating import build_environment

# The sections in sidebar order; modules without NAV serve pages reached from others.
PAGES: tuple[ModuleType, ...] = (
    auth,
    invitations,
    overview,
    traces,
    sessions,
    usage,
    monitors,
    routes,
    queues,
    queues_annotate,
    datasets,
    evals,
    models,
    prompts,
    canaries,
    activity,
    audit,
    settings,
)


async def _redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRedirect)
    if is_htmx(request):  # htmx follows this header with a full page load
        return HTMLResponse("", headers={"HX-Redirect": exc.location})
    return RedirectResponse(exc.location, status_code=303)


async def _refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRefusal)
    return render(request, "error.html", status=exc.status, status_code=exc.status, message=exc.message)


def _is_page(request: Request) -> bool:
    endpoint = request.scope.get("endpoint")
    return str(getattr(endpoint, "__module__", "")).startswith("watchkeep.ui.pages.")


def _html_validation_errors(app: FastAPI) -> None:
    """A bad query or path value on a page gets an error page, not the API's JSON."""
    api_handler = app.exception_handlers[RequestValidationError]

    async def invalid(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            answer = api_handler(request, exc)
            return answer if isinstance(answer, Response) else await answer
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()[:5]
        )
        return render(
            request,
            "error.html",
            status=400,
            status_code=400,
            message=f"This address has a value the page cannot use ({problems}).",
        )

    app.exception_handlers[RequestValidationError] = invalid


def install_console(app: FastAPI) -> None:
    """Serve the console's pages on ``app`` (``watchkeep server`` does, unless
    ``WATCHKEEP_CONSOLE=0``)."""
    env = build_environment()
    env.globals["static"] = app.state.static_url  # versioned /static URLs (ui.assets)
    app.state.console_env = env
    app.state.console_nav = tuple(
        nav for module in PAGES if isinstance(nav := getattr(module, "NAV", None), NavItem)
    )
    app.state.login_limit = PerMinute(auth.LOGIN_ATTEMPTS_PER_MINUTE)
    app.add_exception_handler(ConsoleRedirect, _redirect)
    app.add_exception_handler(ConsoleRefusal, _refusal)
    _html_validation_errors(app)
    for module in PAGES:
        app.include_router(module.router)
