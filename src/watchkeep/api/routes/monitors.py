"""Monitors: declare (JSON or YAML), list, inspect, change, delete, evaluate now, silence,
and the history of the signal each watches."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, ValidationError
from starlette.concurrency import run_in_threadpool

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.routes._monitoring import AUTH_ERRORS, refusals
from watchkeep.api.schemas import RowIdPath, ns_to_datetime, to_unix_ns
from watchkeep.api.schemas_monitoring import SignalOut, SilenceIn
from watchkeep.monitor.admission import check_channel_quota, check_monitor
from watchkeep.monitor.channels import validate_config
from watchkeep.monitor.quota import PerMinute
from watchkeep.monitor.repository import Conflict, MonitorRow
from watchkeep.monitor.signal_history import MAX_BUCKETS, SignalHistory
from watchkeep.monitor.silence import silence_end
from watchkeep.monitor.spec import MonitorFile, MonitorSpec, load_yaml
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.clock import now_ns

router = APIRouter(prefix="/api/v1", tags=["monitors"])
NOT_FOUND = errors((404, "No such monitor"))
DAY_NS = 86400 * 1_000_000_000


def monitor_out(row: MonitorRow) -> dict[str, Any]:
    """A monitor as the API shows it: its spec and its state."""

    def when(ns: int | None) -> Any:
        return ns_to_datetime(ns) if ns is not None else None

    return {
        "id": row.id,
        "spec": row.spec.model_dump(mode="json"),
        "state": row.state.value,
        "state_since": when(row.state_since_unix_nano),
        "pending_state": row.pending_state.value if row.pending_state else None,
        "last_value": row.last_value,
        "last_message": row.last_message,
        "last_evaluated_at": when(row.last_evaluated_at_unix_nano),
        "last_notified_at": when(row.last_notified_at_unix_nano),
        "next_run_at": when(row.next_run_at_unix_nano),
        "silenced_until": when(row.silenced_until_unix_nano),
        "silenced_by": row.silenced_by,
        "silence_reason": row.silence_reason,
    }


def on_demand_limit(request: Request) -> PerMinute:
    """The app's per-project window of on-demand evaluations (``create_app`` makes it)."""
    limiter: PerMinute = request.app.state.evaluate_now_limit
    return limiter


def _found(row: MonitorRow | None) -> MonitorRow:
    if row is None:
        raise ApiError(404, "not_found", "no such monitor")
    return row


@router.get("/monitors", responses=AUTH_ERRORS)
def list_monitors(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.MONITORS_READ))]
) -> dict[str, Any]:
    """Every monitor of the project with its state."""
    rows = services(request).monitoring.monitors.all(principal.project_id)
    return {"items": [monitor_out(r) for r in rows]}


@router.post("/monitors", status_code=201, responses={**AUTH_ERRORS, **errors(409)})
def create_monitor(
    request: Request,
    spec: MonitorSpec,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))],
) -> dict[str, Any]:
    """Declare a monitor (409 when the name is taken; 422 past the project's quotas)."""
    svc = services(request)
    try:
        with refusals():
            check_monitor(svc.settings, spec)
            row = svc.monitoring.monitors.upsert(
                principal.project_id, spec, replace=False, limit=svc.settings.quota_monitors
            )
    except Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return monitor_out(row)


@router.post(
    "/monitors/apply",
    responses={**AUTH_ERRORS, **errors(413)},
    openapi_extra={"requestBody": {"content": {"application/yaml": {"schema": {"type": "string"}}}}},
)
async def apply_monitors(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))]
) -> dict[str, Any]:
    """Create or update the monitors (and channels, which need ``alerts:write``) of a YAML file.

    The file is parsed off the event loop, after the permission check; YAML anchors and
    aliases are refused (422), and the body is capped like every REST body.
    """
    body = await request.body()
    egress = services(request).monitoring.egress
    try:
        declared: MonitorFile = await run_in_threadpool(load_yaml, body.decode("utf-8"))
        channels = [
            (c["name"], c["kind"], validate_config(c["kind"], c.get("config", {}), egress))
            for c in declared.channels
        ]
    except (ValidationError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid_request", f"invalid monitors file: {exc}"[:2000]) from exc
    if channels and not principal.can(Permission.ALERTS_WRITE):
        raise ApiError(403, "forbidden", "declaring channels needs the 'alerts:write' permission")
    settings = services(request).settings
    mon = services(request).monitoring
    with refusals():
        for spec in declared.monitors:
            check_monitor(settings, spec)
        names = [c[0] for c in channels]
        check_channel_quota(mon.channels, principal.project_id, names, settings.quota_alert_channels)
        rows = await run_in_threadpool(
            mon.monitors.upsert_many, principal.project_id, declared.monitors, limit=settings.quota_monitors
        )
    # Channels after the monitors: a file refused for a quota leaves nothing behind.
    for name, kind, config in channels:
        await run_in_threadpool(mon.channels.upsert, principal.project_id, name, kind, config)
    return {"items": [monitor_out(r) for r in rows], "channels": [c[0] for c in channels]}


@router.get("/monitors/{monitor_id}", responses={**AUTH_ERRORS, **NOT_FOUND})
def get_monitor(
    request: Request,
    monitor_id: RowIdPath,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_READ))],
) -> dict[str, Any]:
    """One monitor and its state."""
    return monitor_out(_found(services(request).monitoring.monitors.get(principal.project_id, monitor_id)))


@router.put("/monitors/{monitor_id}", responses={**AUTH_ERRORS, **NOT_FOUND})
def replace_monitor(
    request: Request,
    monitor_id: RowIdPath,
    spec: MonitorSpec,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))],
) -> dict[str, Any]:
    """Replace a monitor's spec (its name cannot change; its state is kept)."""
    with refusals():
        check_monitor(services(request).settings, spec)
    repo = services(request).monitoring.monitors
    row = _found(repo.get(principal.project_id, monitor_id))
    if spec.name != row.spec.name:
        raise ApiError(422, "invalid_request", "a monitor's name cannot change; create a new one")
    return monitor_out(repo.upsert(principal.project_id, spec))


@router.delete("/monitors/{monitor_id}", status_code=204, responses={**AUTH_ERRORS, **NOT_FOUND})
def delete_monitor(
    request: Request,
    monitor_id: RowIdPath,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))],
) -> Response:
    """Delete a monitor (its alert history stays)."""
    if not services(request).monitoring.monitors.delete(principal.project_id, monitor_id):
        raise ApiError(404, "not_found", "no such monitor")
    return Response(status_code=204)


@router.post(
    "/monitors/{monitor_id}/evaluate",
    responses={
        **AUTH_ERRORS,
        **NOT_FOUND,
        **errors(409, (429, "Over evaluate_now_per_minute (see Retry-After)")),
    },
)
def evaluate_monitor(
    request: Request,
    monitor_id: RowIdPath,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))],
) -> dict[str, Any]:
    """Evaluate a monitor now (notifying as a scheduled run would); 409 while a worker has it;
    429 past ``evaluate_now_per_minute`` on-demand evaluations of the project in a minute."""
    wait = on_demand_limit(request).take(principal.project_id)
    if wait is not None:
        limit = services(request).settings.evaluate_now_per_minute
        raise ApiError(
            429,
            "rate_limited",
            f"at most {limit} on-demand evaluations a minute per project (setting evaluate_now_per_minute)",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    mon = services(request).monitoring
    _found(mon.monitors.get(principal.project_id, monitor_id))
    row = mon.worker.evaluate_now(principal.project_id, monitor_id)
    if row is None:
        raise ApiError(409, "busy", "a worker is evaluating this monitor; try again")
    return monitor_out(row)


def actor_of(principal: Principal) -> str:
    """Who a change is recorded as: the key that made it."""
    return f"key:{principal.key_id}"


@router.post("/monitors/{monitor_id}/silence", responses={**AUTH_ERRORS, **NOT_FOUND})
def silence_monitor(
    request: Request,
    monitor_id: RowIdPath,
    body: SilenceIn,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))],
) -> dict[str, Any]:
    """Silence a monitor for a time (at most 30 days; a new silence replaces the current one):
    it is still evaluated and its alert history recorded, but no channel is notified."""
    now = now_ns()
    try:
        until = silence_end(body.duration, to_unix_ns(body.until), now)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    svc = services(request)
    by = actor_of(principal)
    row = _found(
        svc.monitoring.monitors.silence(principal.project_id, monitor_id, until, by, body.reason or None)
    )
    svc.activity.record(
        principal.project_id,
        actor=by,
        actor_user_id=None,
        verb="silenced",
        target_kind="monitor",
        target_id=str(row.id),
        summary=f"silenced {row.spec.name} until {ns_to_datetime(until).isoformat()}"
        + (f": {body.reason}" if body.reason else ""),
    )
    return monitor_out(row)


@router.delete("/monitors/{monitor_id}/silence", responses={**AUTH_ERRORS, **NOT_FOUND})
def unsilence_monitor(
    request: Request,
    monitor_id: RowIdPath,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))],
) -> dict[str, Any]:
    """End a monitor's silence (nothing is re-sent for what fired meanwhile; the next
    re-notification comes ``renotify`` after the last recorded one)."""
    svc = services(request)
    row = _found(svc.monitoring.monitors.silence(principal.project_id, monitor_id, None, None, None))
    svc.activity.record(
        principal.project_id,
        actor=actor_of(principal),
        actor_user_id=None,
        verb="unsilenced",
        target_kind="monitor",
        target_id=str(row.id),
        summary=f"ended the silence of {row.spec.name}",
    )
    return monitor_out(row)


@router.get("/monitors/{monitor_id}/signal", responses={**AUTH_ERRORS, **NOT_FOUND})
def monitor_signal(
    request: Request,
    monitor_id: RowIdPath,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_READ))],
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = 60,
) -> SignalOut:
    """The signal the monitor watches over [since, until) (default: the last day, at most 31
    days) in at most ``buckets`` buckets, with its thresholds (docs/monitoring.md, per kind)."""
    mon = services(request).monitoring
    row = _found(mon.monitors.get(principal.project_id, monitor_id))
    end_ns = to_unix_ns(until) or now_ns()
    start_ns = max(0, to_unix_ns(since) or end_ns - DAY_NS)
    history = SignalHistory(mon.metrics, mon.quality, mon.resources, mon.alerts)
    try:
        signal = history.of(row, start_ns, end_ns, buckets)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    return SignalOut.model_validate(
        {
            "monitor_id": row.id,
            "kind": row.spec.kind,
            "bucket_seconds": signal.bucket_seconds,
            "x": signal.x,
            "series": [asdict(s) for s in signal.series],
            "thresholds": [asdict(t) for t in signal.thresholds],
            "n": signal.n,
        }
    )
