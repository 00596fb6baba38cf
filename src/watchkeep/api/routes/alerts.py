"""Alert history and alert channels.

A channel holds where alerts go (URLs with tokens in them, SMTP hosts, recipients) and a
failed delivery's raw error can repeat them: both are shown in full to the project's
admins only. Other keys see a channel's name and kind, and a category of each failure.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.routes._monitoring import AUTH_ERRORS, refusals
from watchkeep.api.schemas import RowIdPath, RowIdQuery, ns_to_datetime
from watchkeep.monitor.admission import check_channel_quota
from watchkeep.monitor.channels import ChannelKind, validate_config
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["alerts"])
SECRET_KEYS = frozenset({"secret", "password", "headers"})  # write-only, even for admins


class ChannelIn(BaseModel):
    """An alert channel: where notifications of monitors naming it go."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w.:-]+$")
    kind: ChannelKind
    config: dict[str, Any]


def sees_channel_details(principal: Principal) -> bool:
    """Whether ``principal`` may see channel destinations and raw delivery errors."""
    return principal.can(Permission.ALERTS_WRITE) or principal.can(Permission.PROJECT_ADMIN)


def _channel_out(row: dict[str, Any], details: bool) -> dict[str, Any]:
    config = {k: ("***" if k in SECRET_KEYS else v) for k, v in row["config"].items()} if details else None
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "config": config,
        "created_at": ns_to_datetime(row["created_at_unix_nano"]),
    }


def _delivery_out(delivery: dict[str, Any], details: bool) -> dict[str, Any]:
    out = dict(delivery)
    if not out.get("ok"):
        out["category"] = out.get("category") or "error"  # rows stored before categories existed
        if not details:
            out["detail"] = out["category"]
    return out


@router.get("/alerts", responses=AUTH_ERRORS)
def list_alerts(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.ALERTS_READ))],
    monitor_id: RowIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alert history, newest first: every firing, re-notification and resolution, with each
    channel's delivery (a failure's raw error for admins, its category for other keys)."""
    rows = services(request).monitoring.alerts.recent(
        principal.project_id, monitor_id=monitor_id, limit=limit
    )
    details = sees_channel_details(principal)
    items = []
    for r in rows:
        r["created_at"] = ns_to_datetime(r.pop("created_at_unix_nano"))
        r.pop("project_id")
        if r.get("deliveries"):
            r["deliveries"] = [_delivery_out(d, details) for d in r["deliveries"]]
        items.append(r)
    return {"items": items}


@router.get("/alert-channels", responses=AUTH_ERRORS)
def list_channels(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.ALERTS_READ))]
) -> dict[str, Any]:
    """The project's channels: their config for admins (secrets never shown), only name and
    kind for other keys (``config`` is null)."""
    details = sees_channel_details(principal)
    rows = services(request).monitoring.channels.all(principal.project_id)
    return {"items": [_channel_out(r, details) for r in rows]}


@router.post("/alert-channels", status_code=201, responses=AUTH_ERRORS)
def put_channel(
    request: Request,
    body: ChannelIn,
    principal: Annotated[Principal, Depends(require(Permission.ALERTS_WRITE))],
) -> dict[str, Any]:
    """Create or replace a channel: webhook (HMAC-signed), slack, alertmanager or email.

    Its destination must be a public address or in the operator's
    ``WATCHKEEP_EGRESS_ALLOW_NETWORKS`` (422 otherwise, with the reason)."""
    svc = services(request)
    try:
        config = validate_config(body.kind, body.config, svc.monitoring.egress)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)[:2000]) from exc
    with refusals():
        check_channel_quota(
            svc.monitoring.channels, principal.project_id, [body.name], svc.settings.quota_alert_channels
        )
    row = svc.monitoring.channels.upsert(principal.project_id, body.name, body.kind, config)
    return _channel_out(row, details=True)


@router.delete(
    "/alert-channels/{channel_id}",
    status_code=204,
    responses={**AUTH_ERRORS, **errors((404, "No such channel"))},
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
