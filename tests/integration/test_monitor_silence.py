"""Silences: a silenced firing monitor is evaluated and recorded but delivers nothing to a
real webhook receiver; once unsilenced its next re-notification is delivered again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.keys import new_key
from tests.support.monitor import LOOPBACK, NS, MonitorApi, Receiver, monitor_api, no_calls_monitor
from watchkeep.config import Settings


@pytest.fixture
def mon(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    with monitor_api(settings.model_copy(update={"egress_allow_networks": LOOPBACK}), database_url) as api:
        yield api


def hooked_monitor(mon: MonitorApi, receiver: Receiver) -> int:
    """A monitor that fires on every pass, re-notifying hourly, delivering to ``receiver``."""
    mon.add_channel({"name": "hook", "kind": "webhook", "config": {"url": f"{receiver.url}/hook"}})
    return mon.add_monitor(no_calls_monitor("hook", renotify="1h"))


def alerts(mon: MonitorApi) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = mon.client.get("/api/v1/alerts", headers=mon.auth).json()["items"]
    return items


def test_another_projects_key_cannot_silence_or_unsilence(mon: MonitorApi, receiver: Receiver) -> None:
    monitor_id = hooked_monitor(mon, receiver)
    other = {"Authorization": f"Bearer {new_key(mon.database_url, 'admin', f'x-{uuid.uuid4().hex[:8]}')}"}
    path = f"/api/v1/monitors/{monitor_id}/silence"
    assert mon.client.post(path, json={"for": "2h"}, headers=other).status_code == 404
    assert mon.client.get(f"/api/v1/monitors/{monitor_id}/signal", headers=other).status_code == 404
    assert mon.client.post(path, json={"for": "2h"}, headers=mon.auth).status_code == 200
    assert mon.client.delete(path, headers=other).status_code == 404
    assert mon.client.get(f"/api/v1/monitors/{monitor_id}", headers=mon.auth).json()["silenced_until"]
    viewer = mon.auth_for("viewer")
    assert mon.client.delete(path, headers=viewer).status_code == 403


def test_silenced_monitor_records_but_delivers_nothing_then_delivers_after_unsilence(
    mon: MonitorApi, receiver: Receiver
) -> None:
    monitor_id = hooked_monitor(mon, receiver)
    path = f"/api/v1/monitors/{monitor_id}/silence"
    silenced = mon.client.post(path, json={"for": "2h", "reason": "deploy <b>window</b>"}, headers=mon.auth)
    assert silenced.status_code == 200, silenced.text
    body = silenced.json()
    until = datetime.fromisoformat(body["silenced_until"])
    assert timedelta(hours=1, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=2)
    assert body["silenced_by"].startswith("key:")
    assert body["silence_reason"] == "deploy <b>window</b>"
    listed = mon.client.get("/api/v1/monitors", headers=mon.auth).json()["items"]
    assert [m["silenced_until"] for m in listed] == [body["silenced_until"]]

    t0 = time.time_ns()
    report = mon.services.monitoring.worker.run_once(t0)
    assert report.notifications == 1
    assert receiver.requests == []
    [event] = alerts(mon)
    assert (event["kind"], event["to_state"]) == ("firing", "ALERT")
    [delivery] = event["deliveries"]
    assert delivery["silenced"] is True
    assert delivery["ok"] is False
    assert delivery["channel"] == "hook"
    assert delivery["by"] == body["silenced_by"]
    assert datetime.fromisoformat(delivery["until"]) == until
    state = mon.client.get(f"/api/v1/monitors/{monitor_id}", headers=mon.auth).json()
    assert state["state"] == "ALERT"

    ended = mon.client.delete(path, headers=mon.auth)
    assert ended.status_code == 200
    assert (ended.json()["silenced_until"], ended.json()["silenced_by"]) == (None, None)
    # No retroactive notification of the silenced firing: still firing, nothing due yet.
    assert mon.services.monitoring.worker.run_once(t0 + 120 * NS).notifications == 0
    assert receiver.requests == []
    # The hourly re-notification, counted from the (silenced) firing, is delivered.
    assert mon.services.monitoring.worker.run_once(t0 + 3700 * NS).notifications == 1
    [sent] = receiver.bodies()
    assert sent["kind"] == "renotify"
    assert sent["monitor"] == "no-calls"
    newest = alerts(mon)[0]
    assert newest["deliveries"][0]["ok"] is True
    assert "silenced" not in newest["deliveries"][0]


def test_silence_ends_by_itself(mon: MonitorApi, receiver: Receiver) -> None:
    monitor_id = hooked_monitor(mon, receiver)
    assert (
        mon.client.post(f"/api/v1/monitors/{monitor_id}/silence", json={"for": "30m"}, headers=mon.auth)
    ).status_code == 200
    t0 = time.time_ns()
    assert mon.services.monitoring.worker.run_once(t0).notifications == 1
    assert receiver.requests == []
    # Past the silence's end the re-notification goes out although nobody ended it.
    assert mon.services.monitoring.worker.run_once(t0 + 3700 * NS).notifications == 1
    assert [b["kind"] for b in receiver.bodies()] == ["renotify"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"for": "soon"}, "'for' must be a duration like"),
        ({"for": "0s"}, "'for' must be a positive duration"),
        ({"for": "31d"}, "at most 30 days"),
        ({"for": "9999w"}, "at most 30 days"),
        ({"until": "2001-01-01T00:00:00Z"}, "'until' must be in the future"),
        ({"until": (datetime.now(UTC) + timedelta(days=40)).isoformat()}, "at most 30 days"),
        ({"for": "1h", "until": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, "either"),
        ({"reason": "no end"}, "either"),
        ({"for": "1h", "reason": "x" * 501}, "500"),
        ({"until": "2030-01-01T00:00:00"}, "timezone"),
    ],
)
def test_bad_silences_are_refused_with_clear_messages(
    mon: MonitorApi, receiver: Receiver, body: dict[str, Any], message: str
) -> None:
    monitor_id = hooked_monitor(mon, receiver)
    refused = mon.client.post(f"/api/v1/monitors/{monitor_id}/silence", json=body, headers=mon.auth)
    assert refused.status_code == 422
    assert message in refused.text
    state = mon.client.get(f"/api/v1/monitors/{monitor_id}", headers=mon.auth).json()
    assert state["silenced_until"] is None


def test_unknown_monitor_is_404(mon: MonitorApi) -> None:
    path = "/api/v1/monitors/987654321/silence"
    assert mon.client.post(path, json={"for": "1h"}, headers=mon.auth).status_code == 404
    assert mon.client.delete(path, headers=mon.auth).status_code == 404
