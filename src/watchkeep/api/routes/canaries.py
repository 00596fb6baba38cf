"""Canary analysis over HTTP: ``/api/v1/canaries``.

``POST`` starts a canary of a registered model on a gateway route (and, with
``configure_route``, points the route's deployments at the two aliases: live splits the
traffic by ``share``, shadow serves the baseline and copies every call to the
candidate; the response cache and failover between the two arms are turned off so each
arm answers real calls for itself). The
canary worker then decides from the route's spans; ``GET /{id}`` shows the current
comparison. Every lookup is in the key's project: another project's id is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from watchkeep.api.auth import services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.registry_schemas import NAME_PATTERN
from watchkeep.api.routes.canary_schemas import CanaryIn, CanaryList, CanaryOut, StopIn, canary_out
from watchkeep.api.routes.monitors import actor_of
from watchkeep.api.routes.registry import AUTH, INVALID, Reader, Writer, _record
from watchkeep.gateway.config import CacheSpec, DeploymentSpec, RouteSpec
from watchkeep.gateway.route_sync import RouteRefused
from watchkeep.registry.canary_repository import STATUSES, Canary, CanaryError, CanaryRepository, CanaryStatus
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["registry"])
NOT_FOUND = errors((404, "No such canary in this project"))
CONFLICT = errors((409, "The canary cannot start or stop (aliases, one already running, already ended)"))
CanaryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The canary's id.")]


def _repo(request: Request) -> CanaryRepository:
    return services(request).canaries


def _found(request: Request, principal: Principal, canary_id: int) -> Canary:
    canary = _repo(request).get(principal.project_id, canary_id)
    if canary is None:
        raise ApiError(404, "not_found", f"no canary {canary_id}")
    return canary


def route_spec(request: Request, project_id: int, body: CanaryIn) -> RouteSpec:
    """The route for the canary, keeping an existing route's other settings."""

    def deployment(name: str, alias: str, weight: float) -> DeploymentSpec:
        return DeploymentSpec(name=name, backend="registry", model=f"{body.name}@{alias}", weight=weight)

    baseline = deployment("baseline", body.baseline_alias, 1 - body.share if body.mode == "live" else 1.0)
    candidate = deployment("candidate", body.candidate_alias, body.share)
    gateway = services(request).gateway
    assert gateway is not None
    existing = gateway.table.resolve(project_id, body.route)
    base = existing.spec if existing is not None and existing.scope == project_id else None
    keep = (
        base.model_dump(exclude={"name", "deployments", "shadow", "cache", "fallbacks", "failover"})
        if base
        else {}
    )
    return RouteSpec(
        name=body.route,
        deployments=[baseline, candidate] if body.mode == "live" else [baseline],
        shadow=candidate if body.mode == "shadow" else None,
        cache=CacheSpec(enabled=False),
        failover=False,
        **keep,
    )


@router.post(
    "/canaries",
    response_model=CanaryOut,
    status_code=201,
    responses={**AUTH, **INVALID, **CONFLICT},
)
async def start_canary(request: Request, body: CanaryIn, principal: Writer) -> CanaryOut:
    """Start a canary (``registry:write``; with ``configure_route`` also ``routes:write``)."""
    try:
        policy = body.policy()
    except ValueError as exc:
        raise ApiError(422, "invalid_canary", str(exc)) from exc
    spec = None
    if body.configure_route:
        if not principal.can(Permission.ROUTES_WRITE):
            raise ApiError(403, "forbidden", "configure_route needs the 'routes:write' permission")
        if services(request).gateway is None:
            raise ApiError(422, "invalid_canary", "the gateway is not enabled: pass configure_route false")
        spec = route_spec(request, principal.project_id, body)
    try:
        canary = _repo(request).start(
            principal.project_id,
            name=body.name,
            route=body.route,
            baseline_alias=body.baseline_alias,
            candidate_alias=body.candidate_alias,
            mode=body.mode,
            share=body.share,
            policy=policy,
            actor=actor_of(principal),
        )
    except CanaryError as exc:
        raise ApiError(409, "canary_refused", str(exc)) from exc
    if spec is not None:
        gateway = services(request).gateway
        assert gateway is not None
        try:
            await gateway.routes.put(principal.project_id, spec)
        except RouteRefused as exc:
            _repo(request).stop(
                principal.project_id, canary.id, actor=actor_of(principal), reason=exc.message
            )
            raise ApiError(422, exc.code, f"the route was refused, canary stopped: {exc.message}") from exc
    summary = (
        f"started canary {canary.id}: {body.name} v{canary.candidate_version} vs v{canary.baseline_version}"
    )
    _record(request, principal, "canary_start", "model", body.name, f"{summary} on route {body.route}")
    return canary_out(canary, detail=True)


@router.get("/canaries", response_model=CanaryList, responses=AUTH)
async def list_canaries(
    request: Request,
    principal: Reader,
    status: Annotated[str | None, Query(description="running, promoted, rolled_back or stopped")] = None,
    name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CanaryList:
    """The project's canaries, newest first."""
    if status is not None and status not in STATUSES:
        raise ApiError(422, "invalid_status", f"status must be one of {', '.join(STATUSES)}")
    chosen: CanaryStatus | None = next((s for s in STATUSES if s == status), None)
    found = _repo(request).list(principal.project_id, name=name, status=chosen, limit=limit)
    return CanaryList(items=[canary_out(c) for c in found])


@router.get("/canaries/{canary_id}", response_model=CanaryOut, responses={**AUTH, **NOT_FOUND})
async def get_canary(request: Request, canary_id: CanaryId, principal: Reader) -> CanaryOut:
    """One canary with its current comparison: per metric both arms, delta, p-values, decision."""
    return canary_out(_found(request, principal, canary_id), detail=True)


@router.post(
    "/canaries/{canary_id}/stop", response_model=CanaryOut, responses={**AUTH, **NOT_FOUND, **CONFLICT}
)
async def stop_canary(
    request: Request, canary_id: CanaryId, principal: Writer, body: StopIn | None = None
) -> CanaryOut:
    """End a running canary by hand; the aliases and the route stay as they are."""
    _found(request, principal, canary_id)
    try:
        canary = _repo(request).stop(
            principal.project_id, canary_id, actor=actor_of(principal), reason=body.reason if body else None
        )
    except CanaryError as exc:
        raise ApiError(409, "canary_not_running", str(exc)) from exc
    _record(request, principal, "canary_stop", "model", canary.name, f"stopped canary {canary.id}")
    return canary_out(canary, detail=True)
