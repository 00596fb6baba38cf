"""The Alertmanager channel against a real Alertmanager: a firing monitor's alert is held
with its labels and annotations, the resolution ends it, and Alertmanager's own webhook
tells a receiver about both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.support.alertmanager import Alertmanager, running_alertmanager
from tests.support.gateway import wait_until
from tests.support.monitor import NS, MonitorApi, Receiver, no_calls_monitor


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def forwarded(receiver: Receiver, status: str) -> list[dict[str, Any]]:
    """The alerts Alertmanager's webhook sent with ``status`` (firing or resolved)."""
    return [alert for body in receiver.bodies() for alert in body["alerts"] if alert["status"] == status]


@pytest.fixture
def alertmanager(receiver: Receiver, tmp_path: Path) -> Iterator[Alertmanager]:
    with running_alertmanager(f"{receiver.url}/alertmanager", tmp_path / "am") as am:
        yield am


def test_firing_and_resolution_reach_alertmanager_and_its_receiver(
    mon: MonitorApi, alertmanager: Alertmanager, receiver: Receiver
) -> None:
    channel = {
        "name": "am",
        "kind": "alertmanager",
        "config": {"url": alertmanager.url, "labels": {"team": "llm-platform"}},
    }
    mon.add_channel(channel)
    monitor_id = mon.add_monitor(
        no_calls_monitor("am", description="nobody is calling the model", renotify="1h")
    )

    fired = mon.client.post(f"/api/v1/monitors/{monitor_id}/evaluate", headers=mon.auth).json()
    assert fired["state"] == "ALERT"
    history = mon.client.get("/api/v1/alerts", headers=mon.auth).json()["items"]
    assert [d["ok"] for d in history[0]["deliveries"]] == [True], history[0]["deliveries"]

    held = alertmanager.alerts(active="true")
    assert len(held) == 1
    alert = held[0]
    assert alert["labels"] == {
        "alertname": "no-calls",
        "severity": "critical",
        "project_id": str(mon.project_id),
        "source": "watchkeep",
        "team": "llm-platform",
    }
    assert alert["annotations"]["summary"] == "[ALERT] no-calls (critical, firing)"
    assert "requests" in alert["annotations"]["description"]
    assert alert["status"]["state"] == "active"
    # Alertmanager would resolve it after its resolve_timeout (5 min) on its own; the
    # channel keeps it active past the next renotification instead.
    assert (when(alert["endsAt"]) - when(alert["startsAt"])).total_seconds() > 3600

    assert wait_until(lambda: forwarded(receiver, "firing"), timeout=30)
    sent = forwarded(receiver, "firing")[0]
    assert sent["labels"]["alertname"] == "no-calls"
    assert sent["labels"]["project_id"] == str(mon.project_id)
    assert sent["annotations"]["summary"] == alert["annotations"]["summary"]

    now = time.time_ns()  # calls arrive: the monitor resolves
    mon.fill(5, now - 60 * NS, now, seed=1)
    resolved = mon.client.post(f"/api/v1/monitors/{monitor_id}/evaluate", headers=mon.auth).json()
    assert resolved["state"] == "OK", resolved["last_message"]
    kinds = [e["kind"] for e in mon.client.get("/api/v1/alerts", headers=mon.auth).json()["items"]]
    assert kinds == ["resolved", "firing"]

    assert wait_until(lambda: not alertmanager.alerts(active="true"), timeout=30)
    assert wait_until(lambda: forwarded(receiver, "resolved"), timeout=30)
    ended = forwarded(receiver, "resolved")[0]
    assert ended["labels"] == alert["labels"]
    assert when(ended["endsAt"]) >= when(ended["startsAt"])
    assert when(ended["endsAt"]) < when(alert["endsAt"])
