"""Probes and the Prometheus scrape endpoint: open by default, for orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from watchkeep.api.auth import authenticate, bearer, services
from watchkeep.api.errors import ApiError
from watchkeep.security.authz import Permission
from watchkeep.store.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
def readyz(request: Request) -> JSONResponse:
    """The database answers, its schema is current, and the ingest writer runs."""
    svc = services(request)
    checks: dict[str, str] = {}
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["schema"] = "ok" if current_revision(svc.engine) == head_revision() else "outdated"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    checks["ingest_writer"] = "ok" if svc.writer.alive else "stopped"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}},
        401: {"description": "Key required by settings"},
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    svc = services(request)
    if svc.settings.metrics_require_key:
        principal = authenticate(request, await bearer(request))
        if not principal.can(Permission.METRICS_READ):
            raise ApiError(403, "forbidden", "this key's role lacks 'metrics:read'")
    return Response(generate_latest(svc.registry), media_type=CONTENT_TYPE_LATEST)
