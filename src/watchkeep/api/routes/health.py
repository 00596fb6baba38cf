"""Probes, and the operator's view of the whole server: the Prometheus scrape.

The probes are open, for orchestrators. ``/metrics`` is not: it carries every project's
labels and the process's own numbers, so it belongs to the operator: with
``WATCHKEEP_OPERATOR_TOKEN`` set it needs that token; without one it answers loopback
clients only (a Prometheus beside the server). Project keys never get it: they read
their own project through ``/api/v1/metrics``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from watchkeep.api.auth import services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.config import Settings
from watchkeep.store.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)
operator_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="OperatorToken",
    description="The operator's token (`WATCHKEEP_OPERATOR_TOKEN`), not a project key.",
)
OPERATOR_ERRORS = errors(
    (401, "The operator token is required"),
    (403, "Not the operator: a wrong token, a project key, a remote client"),
)
SET_TOKEN = "set WATCHKEEP_OPERATOR_TOKEN on the server and send 'Authorization: Bearer <token>'"


def _is_loopback(host: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((host or "").split("%", 1)[0])
    except ValueError:
        return False  # a Unix socket, a name: not provably local
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def require_operator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
) -> None:
    """Admit the operator: the bearer token when one is set, else a loopback client with no key."""
    token = services(request).settings.operator_token
    if token is not None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(
                401, "unauthorized", "the operator token is required: send 'Authorization: Bearer <token>'"
            )
        if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise ApiError(403, "forbidden", "not the operator token (project keys read /api/v1/metrics)")
        return
    if credentials is not None:
        raise ApiError(403, "forbidden", f"project keys read /api/v1/metrics; for this endpoint {SET_TOKEN}")
    if not _is_loopback(request.client.host if request.client else None):
        raise ApiError(
            403, "forbidden", f"without an operator token only loopback clients are served: {SET_TOKEN}"
        )


def exposure_warning(settings: Settings) -> str | None:
    """What to warn about when the server listens beyond loopback with no operator token."""
    if settings.operator_token is not None or settings.host == "localhost" or _is_loopback(settings.host):
        return None
    return (
        f"listening on {settings.host} without WATCHKEEP_OPERATOR_TOKEN: /metrics and resource samples "
        "answer loopback clients only, and behind a reverse proxy on this host every client looks like "
        "loopback; set WATCHKEEP_OPERATOR_TOKEN"
    )


def warn_if_exposed(settings: Settings) -> None:
    """Log :func:`exposure_warning` at start-up, if any."""
    warning = exposure_warning(settings)
    if warning is not None:
        log.warning(warning)


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
def readyz(request: Request) -> JSONResponse:
    """The database answers, its schema is current, and the ingest writer runs and can commit."""
    svc = services(request)
    checks: dict[str, str] = {}
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["schema"] = "ok" if current_revision(svc.engine) == head_revision() else "outdated"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    checks["ingest_writer"] = svc.writer.state  # "failing: ..." while the store refuses commits
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (operator)",
    response_class=Response,
    dependencies=[Depends(require_operator)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **OPERATOR_ERRORS},
)
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics, every project's included.

    Where no monitor loop runs in this process (``watchkeep gateway`` and its workers), its
    resource gauges are sampled here, at scrape time, so every process reports its own."""
    svc = services(request)
    if not svc.settings.worker_enabled:
        svc.monitoring.sampler.sample()
    return Response(generate_latest(svc.registry), media_type=CONTENT_TYPE_LATEST)
