"""Monitors and alerts: the project's monitors with their state, one monitor's history and
watched signal, creating and editing monitors, and silencing one for a time.

Everything goes through the monitoring services the REST API uses (the same validation,
admission rules, quotas and silences), scoped to the console's project: a monitor id of
another project is a 404 like one that does not exist. Each change is recorded in the
project's activity feed under the person who made it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeep.monitor.quota import QuotaExceeded
from watchkeep.monitor.repository import Conflict, MonitorRow
from watchkeep.monitor.signal_history import SignalHistory
from watchkeep.monitor.silence import MAX_REASON, silence_end
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.security.authz import Permission
from watchkeep.store.clock import now_ns
from watchkeep.ui.filters import read_filters
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render
from watchkeep.ui.monitor_form import Choices, form_of, validated
from watchkeep.ui.monitor_view import (
    HISTORY_PAGE,
    STATE_TONES,
    chart_data,
    firing_first,
    next_cursor,
    read_cursor,
    value_text,
    view,
)
from watchkeep.ui.templating import query

router = APIRouter(include_in_schema=False)
NAV = NavItem("Monitors", "monitors", Permission.MONITORS_READ, shortcut="m")
READ = Depends(page(Permission.MONITORS_READ))
WRITE = Depends(page(Permission.MONITORS_WRITE))
CHART_BUCKETS = 60
SILENCE_FOR = ("1h", "4h", "1d", "1w")
MAX_ID = 2**63 - 1


def _monitor(console: Console, monitor_id: int) -> MonitorRow:
    """The project's monitor ``monitor_id``, else a 404 (whoever else's it is)."""
    row = None
    if 0 < monitor_id <= MAX_ID:
        row = console.services.monitoring.monitors.get(console.project.project_id, monitor_id)
    if row is None:
        raise ConsoleRefusal(404, "There is no such monitor in this project.")
    return row


def _record(console: Console, verb: str, row: MonitorRow, summary: str) -> None:
    console.services.activity.record(
        console.project.project_id,
        actor=console.actor,
        actor_user_id=console.session.user.id,
        verb=verb,
        target_kind="monitor",
        target_id=str(row.id),
        summary=summary,
    )


def _history(
    console: Console, request: Request, monitor_id: int | None
) -> tuple[list[dict[str, object]], str]:
    """One page of alert events (newest first) and the URL of the next page ("" for none)."""
    if not console.can(Permission.ALERTS_READ):
        return [], ""
    events = console.services.monitoring.alerts.recent(
        console.project.project_id,
        monitor_id=monitor_id,
        limit=HISTORY_PAGE + 1,
        before=read_cursor(request.query_params.get("before")),
    )
    cursor = next_cursor(events)
    params: dict[str, object] = dict(request.query_params)
    next_url = request.url.path + query(params, before=cursor) + "#history" if cursor else ""
    return events[:HISTORY_PAGE], next_url


@router.get("/p/{project}/monitors", response_class=HTMLResponse)
def monitors(request: Request, console: Annotated[Console, READ]) -> HTMLResponse:
    """Every monitor of the project, firing ones first, and the project's alert history."""
    rows = console.services.monitoring.monitors.all(console.project.project_id)
    events, next_url = _history(console, request, None)
    return render(
        console,
        "monitors/list.html",
        monitors=firing_first(rows, now_ns()),
        events=events,
        next_url=next_url,
        tones=STATE_TONES,
        fmt=value_text,
    )


def _form_page(
    console: Console, form: Form | None, row: MonitorRow | None, status: int = 200
) -> HTMLResponse:
    return render(console, "monitors/form.html", form=form, monitor=row, choices=Choices(), status=status)


@router.get("/p/{project}/monitors/new", response_class=HTMLResponse)
def new_monitor(console: Annotated[Console, WRITE]) -> HTMLResponse:
    """The form of a new monitor."""
    defaults = {"kind": "metric", "severity": "warning", "window": "5m", "schedule": "1m", "op": ">"}
    return _form_page(
        console, Form({**defaults, "enabled": "on", "min_samples": "1", "consecutive": "1"}), None
    )


@router.post("/p/{project}/monitors/new", response_class=HTMLResponse)
def create_monitor(console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]) -> Response:
    """Create a monitor from the form (400 with the form's errors, nothing stored)."""
    spec = validated(form, console.services.settings)
    row = _store(console, form, spec, replace=False) if spec is not None else None
    if row is None:
        return _form_page(console, form, None, status=400)
    _record(console, "created", row, f"created monitor {row.spec.name}")
    return RedirectResponse(console.url(f"monitors/{row.id}"), status_code=303)


def _store(console: Console, form: Form, spec: MonitorSpec, *, replace: bool) -> MonitorRow | None:
    """Write ``spec`` under the project's monitor quota; None with a form error when refused."""
    svc = console.services
    try:
        return svc.monitoring.monitors.upsert(
            console.project.project_id, spec, replace=replace, limit=svc.settings.quota_monitors
        )
    except Conflict:
        form.fail("name", "a monitor of this project already has this name")
    except QuotaExceeded as exc:
        form.fail("name", exc.message)
    return None


@router.get("/p/{project}/monitors/{monitor_id}", response_class=HTMLResponse)
def monitor(request: Request, monitor_id: int, console: Annotated[Console, READ]) -> HTMLResponse:
    """One monitor: definition, state, silence, the watched signal over the chosen range
    with its thresholds, and its alert history."""
    return _detail(request, console, _monitor(console, monitor_id))


def _detail(
    request: Request, console: Console, row: MonitorRow, form: Form | None = None, status: int = 200
) -> HTMLResponse:
    """The monitor's page (``form``: a refused silence form, shown with its errors)."""
    bar = read_filters(request, ())
    mon = console.services.monitoring
    history = SignalHistory(mon.metrics, mon.quality, mon.resources, mon.alerts)
    chart, chart_error = None, ""
    try:
        chart = chart_data(history.of(row, bar.since_ns, bar.until_ns, CHART_BUCKETS))
    except ValueError as exc:
        chart_error = str(exc)
    events, next_url = _history(console, request, row.id)
    return render(
        console,
        "monitors/detail.html",
        status=status,
        m=view(row, now_ns()),
        bar=bar,
        chart=chart,
        chart_error=chart_error,
        events=events,
        next_url=next_url,
        tones=STATE_TONES,
        fmt=value_text,
        silence_for=SILENCE_FOR,
        form=form,
        spec_json=row.spec.model_dump_json(indent=2, exclude_defaults=True),
    )


@router.get("/p/{project}/monitors/{monitor_id}/edit", response_class=HTMLResponse)
def edit_monitor(monitor_id: int, console: Annotated[Console, WRITE]) -> HTMLResponse:
    """The form of an existing monitor, filled from its spec."""
    row = _monitor(console, monitor_id)
    return _form_page(console, Form(form_of(row.spec)), row)


@router.post("/p/{project}/monitors/{monitor_id}/edit", response_class=HTMLResponse)
def update_monitor(
    monitor_id: int, console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]
) -> Response:
    """Replace a monitor's spec (its name stays; its state is kept)."""
    row = _monitor(console, monitor_id)
    form.data["name"] = row.spec.name
    spec = validated(form, console.services.settings, row.spec)
    saved = _store(console, form, spec, replace=True) if spec is not None else None
    if saved is None:
        return _form_page(console, form, row, status=400)
    _record(console, "edited", saved, f"edited monitor {saved.spec.name}")
    return RedirectResponse(console.url(f"monitors/{saved.id}"), status_code=303)


@router.post("/p/{project}/monitors/{monitor_id}/enabled")
def set_enabled(
    monitor_id: int, console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]
) -> Response:
    """Turn a monitor on or off (``enabled`` = ``on`` or anything else)."""
    row = _monitor(console, monitor_id)
    enabled = form.data.get("enabled") == "on"
    if enabled != row.spec.enabled:
        spec = row.spec.model_copy(update={"enabled": enabled})
        saved = console.services.monitoring.monitors.upsert(console.project.project_id, spec)
        verb = "enabled" if enabled else "disabled"
        _record(console, verb, saved, f"{verb} monitor {saved.spec.name}")
    return RedirectResponse(console.url(f"monitors/{row.id}"), status_code=303)


@router.post("/p/{project}/monitors/{monitor_id}/delete")
def delete_monitor(
    monitor_id: int, console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]
) -> Response:
    """Delete a monitor (its alert history stays)."""
    row = _monitor(console, monitor_id)
    if console.services.monitoring.monitors.delete(console.project.project_id, row.id):
        _record(console, "deleted", row, f"deleted monitor {row.spec.name}")
    return RedirectResponse(console.url("monitors"), status_code=303)


def _silence_until(form: Form, now: int) -> int | None:
    """The end of the silence the form asks for, or None with an error on its field."""
    duration = form.data.get("for", "").strip() or None
    until_text = form.data.get("until", "").strip()
    reason = form.data.get("reason", "")
    if len(reason) > MAX_REASON or "\x00" in reason:
        form.fail("reason", f"a reason may hold at most {MAX_REASON} characters, and no NUL")
        return None
    until_ns = None
    if until_text:
        try:
            when = datetime.fromisoformat(until_text[:40])
        except ValueError:
            form.fail("until", "'until' must be a date and time like 2026-12-01T09:00")
            return None
        until_ns = int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1e9)
    try:
        return silence_end(duration, until_ns, now)
    except ValueError as exc:
        form.fail("until" if until_text and duration is None else "for", str(exc))
        return None


@router.post("/p/{project}/monitors/{monitor_id}/silence", response_class=HTMLResponse)
def silence(
    request: Request,
    monitor_id: int,
    console: Annotated[Console, WRITE],
    form: Annotated[Form, Depends(posted)],
) -> Response:
    """Silence the monitor's notifications for a duration or until a time (at most 30 days)."""
    row = _monitor(console, monitor_id)
    until = _silence_until(form, now_ns())
    if until is None:
        return _detail(request, console, row, form, status=400)
    reason = form.data.get("reason", "").strip() or None
    silenced = console.services.monitoring.monitors.silence(
        console.project.project_id, row.id, until, console.actor, reason
    )
    if silenced is None:
        raise ConsoleRefusal(404, "There is no such monitor in this project.")
    when = datetime.fromtimestamp(until / 1e9, tz=UTC).isoformat(timespec="minutes")
    _record(
        console,
        "silenced",
        silenced,
        f"silenced {row.spec.name} until {when}" + (f": {reason}" if reason else ""),
    )
    return RedirectResponse(console.url(f"monitors/{row.id}"), status_code=303)


@router.post("/p/{project}/monitors/{monitor_id}/unsilence")
def unsilence(
    monitor_id: int, console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]
) -> Response:
    """End the monitor's silence now."""
    row = _monitor(console, monitor_id)
    if row.silenced_until_unix_nano is not None:
        console.services.monitoring.monitors.silence(console.project.project_id, row.id, None, None, None)
        _record(console, "unsilenced", row, f"ended the silence of {row.spec.name}")
    return RedirectResponse(console.url(f"monitors/{row.id}"), status_code=303)
