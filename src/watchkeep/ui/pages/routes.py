"""Gateway routes: what each public model name of the project maps to, and editing it.

The list shows the gateway's own route table (``RouteTable.visible``, what the routes API
lists): the routes of the server's gateway file, shared by every project, and the
project's own, which replace a shared one of the same name for this project only; each
deployment with its canary share and its breaker's state now. Edits go through
``RouteSync.put``/``delete``, the calls ``PUT``/``DELETE /api/v1/routes/{name}`` make:
stored, the revision bumped, served at once here and by every other gateway process on
its next poll, and refused by the same model and operator policy (``ui.route_form``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeep.gateway.config import RouteSpec
from watchkeep.gateway.route_sync import RouteRefused
from watchkeep.gateway.routing import GLOBAL, Deployment, Route
from watchkeep.gateway.service import Gateway
from watchkeep.security.authz import Permission
from watchkeep.ui import route_form
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render

router = APIRouter(include_in_schema=False)
NAV = NavItem("Routes", "routes", Permission.ROUTES_READ, shortcut="r")
READ = Depends(page(Permission.ROUTES_READ))
WRITE = Depends(page(Permission.ROUTES_WRITE))
MAX_NAME = 128


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """One deployment as the list shows it."""

    role: str  # primary, fallback or shadow
    deployment: Deployment
    share: float | None  # of the primaries' traffic (the canary split); None for others

    @property
    def breaker(self) -> str:
        return self.deployment.breaker.state.value


@dataclass(frozen=True, slots=True)
class RouteView:
    """One route as the list shows it."""

    route: Route
    own: bool  # the project's own (stored) route, not the file's
    replaces_shared: bool  # the project's route shadows a file route of the same name
    deployments: list[DeploymentView]


def _view(route: Route, shared: frozenset[str]) -> RouteView:
    total = sum(d.spec.weight for d in route.primaries) or 1.0
    rows = [DeploymentView("primary", d, d.spec.weight / total) for d in route.primaries]
    rows += [DeploymentView("fallback", d, None) for d in route.fallbacks]
    rows += [DeploymentView("shadow", route.shadow, None)] if route.shadow else []
    own = route.scope != GLOBAL
    return RouteView(route, own, own and route.name in shared, rows)


def _gateway(console: Console) -> Gateway:
    """The server's gateway, or a 404 page when this server does not run one."""
    gateway = console.services.gateway
    if gateway is None:
        raise ConsoleRefusal(404, "The gateway is not enabled on this server (WATCHKEEP_GATEWAY_ENABLED).")
    return gateway


def _route(console: Console, name: str) -> Route:
    """The route ``name`` as the project sees it (its own, else the shared one), else a 404."""
    route = (
        _gateway(console).table.resolve(console.project.project_id, name) if len(name) <= MAX_NAME else None
    )
    if route is None:
        raise ConsoleRefusal(404, "This project has no route of that name.")
    return route


def _record(console: Console, verb: str, name: str) -> None:
    console.services.activity.record(
        console.project.project_id,
        actor=console.actor,
        actor_user_id=console.session.user.id,
        verb=verb,
        target_kind="route",
        target_id=name,
        summary=f"{verb} gateway route {name}",
    )
    action = {"created": "route.create", "edited": "route.update", "deleted": "route.delete"}[verb]
    console.services.audit.record(
        actor=f"user:{console.session.user.email}",
        action=action,
        project_id=console.project.project_id,
        target=f"route:{name}",
    )


def _shared_names(gateway: Gateway) -> frozenset[str]:
    return frozenset(spec.name for spec in gateway.config.routes)


@router.get("/p/{project}/routes", response_class=HTMLResponse)
def routes(console: Annotated[Console, READ]) -> HTMLResponse:
    """Every route the project can call, with deployments, weights, policies and breakers."""
    gateway = console.services.gateway
    if gateway is None:
        return render(console, "routes/list.html", gateway=None, routes=[])
    shared = _shared_names(gateway)
    views = [_view(r, shared) for r in gateway.table.visible(console.project.project_id)]
    return render(console, "routes/list.html", gateway=gateway, routes=views)


def _edit_page(console: Console, route: Route, form: Form | None = None, status: int = 200) -> HTMLResponse:
    spec = route.spec
    own = route.scope != GLOBAL
    fields = Form(route_form.fields_of(spec))
    text = Form({"spec": route_form.spec_text(route_form.stored_body(spec))})
    if form is not None:  # the posted form keeps what was typed, with its errors
        if form.data.get("mode") == "yaml":
            text = form
        else:
            fields = form
    return render(
        console,
        "routes/edit.html",
        route=route,
        own=own,
        replaces_shared=own and spec.name in _shared_names(_gateway(console)),
        fields=fields,
        text=text,
        status=status,
    )


@router.get("/p/{project}/routes/new", response_class=HTMLResponse)
def new_route(console: Annotated[Console, WRITE]) -> HTMLResponse:
    """The form of a new route: a name and its YAML, starting from a canary example."""
    _gateway(console)
    form = Form({"name": "", "spec": route_form.spec_text(route_form.NEW_ROUTE)})
    return render(console, "routes/new.html", form=form)


@router.post("/p/{project}/routes/new", response_class=HTMLResponse)
async def create_route(
    console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]
) -> Response:
    """Create one of the project's routes (400 with the form's errors, nothing stored)."""
    gateway = _gateway(console)
    name = form.data.get("name", "").strip()
    own = {r.name for r in gateway.table.visible(console.project.project_id) if r.scope != GLOBAL}
    if name in own:
        form.fail("name", "the project already has a route of this name; edit it instead")
    body = route_form.yaml_body(form, name) if not form.errors else None
    spec = route_form.parsed(form, name, body, by_field=False) if body is not None else None
    if spec is None or not await _put(console, gateway, form, spec):
        return render(console, "routes/new.html", form=form, status=400)
    _record(console, "created", spec.name)
    return RedirectResponse(console.url("routes"), status_code=303)


async def _put(console: Console, gateway: Gateway, form: Form, spec: RouteSpec) -> bool:
    """Store and serve ``spec`` as the API does; False with the refusal on the form."""
    try:
        await gateway.routes.put(console.project.project_id, spec)
    except RouteRefused as exc:
        form.fail("route", exc.message)
        return False
    return True


@router.get("/p/{project}/routes/{name:path}/edit", response_class=HTMLResponse)
def edit_route(name: str, console: Annotated[Console, WRITE]) -> HTMLResponse:
    """The route's common fields and its whole YAML, each a form of its own."""
    return _edit_page(console, _route(console, name))


@router.post("/p/{project}/routes/{name:path}/edit", response_class=HTMLResponse)
async def save_route(
    name: str, console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]
) -> Response:
    """Save the route as the project's own (a shared route is replaced for this project)."""
    route = _route(console, name)
    if form.data.get("mode") == "yaml":
        body = route_form.yaml_body(form, route.name)
        spec = route_form.parsed(form, route.name, body, by_field=False) if body is not None else None
    else:
        body = route_form.with_fields(form, route.spec)
        spec = route_form.parsed(form, route.name, body, by_field=True)
    if spec is None or not await _put(console, _gateway(console), form, spec):
        return _edit_page(console, route, form, status=400)
    _record(console, "edited", route.name)
    return RedirectResponse(console.url("routes") + "#route-" + quote(route.name, safe=""), status_code=303)


@router.post("/p/{project}/routes/{name:path}/delete", response_class=HTMLResponse)
async def delete_route(
    name: str, console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]
) -> Response:
    """Remove the project's own route (a shared route it replaced applies again)."""
    del form  # posted only for its CSRF check
    if len(name) > MAX_NAME or not await _gateway(console).routes.delete(console.project.project_id, name):
        raise ConsoleRefusal(404, "This project has no route of its own with that name.")
    _record(console, "deleted", name)
    return RedirectResponse(console.url("routes"), status_code=303)
