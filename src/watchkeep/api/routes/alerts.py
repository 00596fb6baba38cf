"""Alert history and alert channels."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.routes._monitoring import AUTH_ERRORS
from watchkeep.api.schemas import ErrorResponse, RowIdPath, RowIdQuery, ns_to_datetime
from watchkeep.monitor.channels import ChannelKind, validate_config
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["alerts"])
SECRET_KEYS = frozenset({"secret", "password", "headers"})


class ChannelIn(BaseModel):
    """An alert channel: where notifications of monitors naming it go."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w.:-]+$")
    kind: ChannelKind
    config: dict[str, Any]


def _redacted(row: dict[str, Any]) -> dict[str, Any]:
    config = {k: ("***" if k in SECRET_KEYS else v) for k, v in row["config"].items()}
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "config": config,
        "created_at": ns_to_datetime(row["created_at_unix_nano"]),
    }


@router.get("/alerts", responses=AUTH_ERRORS)
def list_alerts(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.ALERTS_READ))],
    monitor_id: RowIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alert history, newest first: every firing, re-notification and resolution."""
    rows = services(request).monitoring.alerts.recent(
        principal.project_id, monitor_id=monitor_id, limit=limit
    )
    items = []
    for r in rows:
        r["created_at"] = ns_to_datetime(r.pop("created_at_unix_nano"))
        r.pop("project_id")
        items.append(r)
    return {"items": items}


@router.get("/alert-channels", responses=AUTH_ERRORS)
def list_channels(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.ALERTS_READ))]
) -> dict[str, Any]:
    """The project's channels (secrets are never shown)."""
    return {"items": [_redacted(r) for r in services(request).monitoring.channels.all(principal.project_id)]}


@router.post("/alert-channels", status_code=201, responses=AUTH_ERRORS)
def put_channel(
    request: Request,
    body: ChannelIn,
    principal: Annotated[Principal, Depends(require(Permission.ALERTS_WRITE))],
) -> dict[str, Any]:
    """Create or replace a channel: webhook (HMAC-signed), slack, alertmanager or email."""
    try:
        config = validate_config(body.kind, body.config)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)[:2000]) from exc
    row = services(request).monitoring.channels.upsert(principal.project_id, body.name, body.kind, config)
    return _redacted(row)


@router.delete(
    "/alert-channels/{channel_id}",
    status_code=204,
    responses={**AUTH_ERRORS, 404: {"model": ErrorResponse, "description": "No such channel"}},
)
def delete_channel(
    request: Request,
    channel_id: RowIdPath,
    principal: Annotated[Principal, Depends(require(Permission.ALERTS_WRITE))],
) -> Response:
    """Delete a channel."""
    if not services(request).monitoring.channels.delete(principal.project_id, channel_id):
        raise ApiError(404, "not_found", "no such channel")
    return Response(status_code=204)
