"""A quality drop fires an alert to a real HTTP receiver and a real SMTP sink, and resolves."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
from prometheus_client import CollectorRegistry
from tests.support.monitor import LOOPBACK, NS, Mailbox, MonitorApi, Receiver

from watchkeep.monitor.channels import SIGNATURE_HEADER, verify
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.monitor.wiring import build_monitoring
from watchkeep.security.egress import AddressPolicy

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SECRET = "s3cret-s3cret-s3cret"


def post_scores(mon: MonitorApi, correct: int, wrong: int) -> None:
    for i in range(correct + wrong):
        actual = "billing" if i % 2 else "refund"
        predicted = actual if i < correct else ("refund" if actual == "billing" else "billing")
        response = mon.client.post(
            "/api/v1/scores",
            json={"name": "intent", "value": predicted, "label": actual, "trace_id": TRACE},
            headers=mon.auth,
        )
        assert response.status_code == 201


def test_quality_drop_alerts_by_webhook_and_email_then_resolves(
    mon: MonitorApi, receiver: Receiver, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    channels = [
        {"name": "hook", "kind": "webhook", "config": {"url": f"{receiver.url}/hook", "secret": SECRET}},
        {
            "name": "mail",
            "kind": "email",
            "config": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "from": "wk@example.com",
                "to": ["oncall@example.com"],
            },
        },
    ]
    for channel in channels:
        mon.add_channel(channel)
    spec = {
        "name": "intent-accuracy",
        "kind": "quality",
        "score": "intent",
        "statistic": "accuracy",
        "window": "1h",
        "min_samples": 20,
        "severity": "critical",
        "condition": {"op": "<", "warning": 0.85, "alert": 0.7},
        "channels": ["hook", "mail"],
    }
    monitor_id = mon.add_monitor(spec)
    worker = mon.services.monitoring.worker
    post_scores(mon, correct=48, wrong=2)
    clock = time.time_ns()
    assert worker.run_once(clock).states == {"OK": 1}
    assert receiver.requests == []

    post_scores(mon, correct=10, wrong=60)  # accuracy falls to 58 / 120
    clock += 61 * NS
    report = worker.run_once(clock)
    assert report.notifications == 1
    state = mon.client.get(f"/api/v1/monitors/{monitor_id}", headers=mon.auth).json()
    assert state["state"] == "ALERT"
    headers, body = receiver.requests[-1]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert not verify("another-secret-entirely", body, headers[SIGNATURE_HEADER])
    fired = orjson.loads(body)
    assert (fired["kind"], fired["state"], fired["monitor"]) == ("firing", "ALERT", "intent-accuracy")
    assert fired["value"] == pytest.approx(58 / 120)
    assert box.messages[-1]["Subject"].startswith("[ALERT] intent-accuracy")

    clock += 61 * NS
    assert worker.run_once(clock).notifications == 0  # still firing, not yet time to re-notify

    post_scores(mon, correct=400, wrong=0)  # quality returns: 458 / 520
    clock += 61 * NS
    assert worker.run_once(clock).notifications == 1
    resolved = orjson.loads(receiver.requests[-1][1])
    assert (resolved["kind"], resolved["state"], resolved["previous_state"]) == ("resolved", "OK", "ALERT")
    assert len(box.messages) == 2
    history = mon.client.get("/api/v1/alerts", params={"monitor_id": monitor_id}, headers=mon.auth).json()[
        "items"
    ]
    assert [h["kind"] for h in history] == ["resolved", "firing"]
    assert all(d["ok"] for h in history for d in h["deliveries"])


def test_concurrent_workers_never_double_fire(mon: MonitorApi, receiver: Receiver) -> None:
    channel = {"name": "hook", "kind": "slack", "config": {"url": f"{receiver.url}/slack"}}
    mon.client.post("/api/v1/alert-channels", json=channel, headers=mon.auth)
    for i in range(5):
        spec = MonitorSpec.model_validate(
            {
                "name": f"calls-{i}",
                "kind": "metric",
                "metric": "requests",
                "min_samples": 0,
                "condition": {"op": "<", "alert": 1},
                "channels": ["hook"],
            }
        )
        mon.services.monitoring.monitors.upsert(mon.project_id, spec)
    egress = AddressPolicy.from_strings(LOOPBACK)
    workers = [
        build_monitoring(mon.services.engine, CollectorRegistry(), egress=egress).worker for _ in range(3)
    ]
    now = time.time_ns()
    reports: list[int] = []
    threads = [
        threading.Thread(target=lambda w=w: reports.append(w.run_once(now).notifications)) for w in workers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for w in workers:
        w.stop()
    assert sum(reports) == 5
    assert len(receiver.requests) == 5
    assert all("text" in b for b in receiver.bodies())
    history = mon.client.get("/api/v1/alerts", headers=mon.auth).json()["items"]
    assert sorted(h["monitor_name"] for h in history) == [f"calls-{i}" for i in range(5)]
