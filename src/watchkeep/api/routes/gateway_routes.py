"""``/api/v1/routes``: read and edit gateway routes (routes:read, routes:write).

Routes from the YAML file are shared by every project and read-only here; a project
can add routes, or replace a shared one for itself. Edits are stored in the database
and every gateway process serves them: the one that took the edit at once, the others
within ``WATCHKEEP_GATEWAY_ROUTE_SYNC_SECONDS`` (see docs/gateway.md). Routes created
here are bounded by the operator (``gateway.admission``): upstream origins and secrets
only as the file binds them, no internal addresses, llama.cpp only as the file defines
it, a ttl ceiling, and at most ``WATCHKEEP_QUOTA_ROUTES`` routes per project.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.routes.monitors import actor_of
from watchkeep.gateway.config import NAME, RouteBody, RouteSpec
from watchkeep.gateway.route_sync import RouteRefused
from watchkeep.gateway.routing import GLOBAL, Route
from watchkeep.gateway.service import Gateway
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["routes"])
RouteName = Annotated[str, Path(pattern=NAME)]
_ERRORS = errors(401, 403)


class RouteOut(RouteSpec):
    """A route as the API shows it: secrets appear only as the name of their env var."""

    scope: Literal["shared", "project"]
    breakers: dict[str, str]


class RouteList(BaseModel):
    """Every route the key's project can call."""

    items: list[RouteOut]


def _gateway(request: Request) -> Gateway:
    gateway: Gateway | None = services(request).gateway
    if gateway is None:
        raise ApiError(404, "not_found", "the gateway is not enabled on this server")
    return gateway


def _out(route: Route) -> RouteOut:
    return RouteOut(
        **route.spec.model_dump(),
        scope="shared" if route.scope == GLOBAL else "project",
        breakers={d.name: d.breaker.state.value for d in route.deployments()},
    )


@router.get("/routes", response_model=RouteList, responses=_ERRORS)
async def list_routes(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.ROUTES_READ))]
) -> RouteList:
    """Shared routes and the project's own, with each deployment's breaker state."""
    return RouteList(items=[_out(r) for r in _gateway(request).table.visible(principal.project_id)])


@router.get("/routes/{name}", response_model=RouteOut, responses={**_ERRORS, **errors(404)})
async def get_route(
    request: Request,
    name: RouteName,
    principal: Annotated[Principal, Depends(require(Permission.ROUTES_READ))],
) -> RouteOut:
    """One route by its public model name."""
    route = _gateway(request).table.resolve(principal.project_id, name)
    if route is None:
        raise ApiError(404, "not_found", f"no route named {name!r}")
    return _out(route)


@router.put("/routes/{name}", response_model=RouteOut, responses={**_ERRORS, **errors(422)})
async def put_route(
    request: Request,
    name: RouteName,
    body: RouteBody,
    principal: Annotated[Principal, Depends(require(Permission.ROUTES_WRITE))],
) -> RouteOut:
    """Create or replace the project's route ``name`` (it takes effect at once)."""
    spec = RouteSpec(name=name, **body.model_dump())
    gateway = _gateway(request)
    old = gateway.table.resolve(principal.project_id, name)
    try:
        route = await gateway.routes.put(principal.project_id, spec)
    except RouteRefused as exc:
        raise ApiError(422, exc.code, exc.message) from exc
    await run_in_threadpool(
        services(request).audit.record,
        actor=actor_of(principal),
        action="route.update",
        project_id=principal.project_id,
        target=f"route:{name}",
        before=None if old is None or old.scope == GLOBAL else old.spec.model_dump(mode="json"),
        after=spec.model_dump(mode="json"),
    )
    return _out(route)


@router.delete("/routes/{name}", status_code=204, responses={**_ERRORS, **errors(404)})
async def delete_route(
    request: Request,
    name: RouteName,
    principal: Annotated[Principal, Depends(require(Permission.ROUTES_WRITE))],
) -> Response:
    """Remove the project's own route (a shared route it replaced applies again)."""
    if not await _gateway(request).routes.delete(principal.project_id, name):
        raise ApiError(404, "not_found", f"the project has no route of its own named {name!r}")
    await run_in_threadpool(
        services(request).audit.record,
        actor=actor_of(principal),
        action="route.delete",
        project_id=principal.project_id,
        target=f"route:{name}",
    )
    return Response(status_code=204)
