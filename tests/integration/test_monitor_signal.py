"""The watched signal of a monitor: the metrics API's figures per bucket, the spec's thresholds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.keys import new_key
from tests.support.monitor import NS, MonitorApi, monitor_api
from watchkeep.config import Settings
from watchkeep.monitor.state import State, Step

HOUR = 3600 * NS
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def mon(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    with monitor_api(settings, database_url) as api:
        yield api


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, UTC).isoformat()


def signal(mon: MonitorApi, monitor_id: int, start: int, end: int, buckets: int) -> Any:
    params = {"since": iso(start), "until": iso(end), "buckets": buckets}
    got = mon.client.get(f"/api/v1/monitors/{monitor_id}/signal", params=params, headers=mon.auth)
    assert got.status_code == 200, got.text
    return got.json()


def metric_monitor(metric: str, **condition: Any) -> dict[str, Any]:
    return {
        "name": f"m-{metric}",
        "kind": "metric",
        "metric": metric,
        "window": "1h",
        "condition": {"op": ">", **condition},
    }


def test_another_projects_key_cannot_read_the_signal(mon: MonitorApi) -> None:
    monitor_id = mon.add_monitor(metric_monitor("error_rate", alert=0.1))
    other = {"Authorization": f"Bearer {new_key(mon.database_url, 'admin', f'x-{uuid.uuid4().hex[:8]}')}"}
    assert mon.client.get(f"/api/v1/monitors/{monitor_id}/signal", headers=other).status_code == 404
    viewer = mon.auth_for("viewer")
    assert mon.client.get(f"/api/v1/monitors/{monitor_id}/signal", headers=viewer).status_code == 200


@pytest.mark.parametrize("metric", ["latency_p90_ms", "error_rate", "cost_usd"])
def test_metric_signal_equals_the_metrics_api_per_bucket(mon: MonitorApi, metric: str) -> None:
    end = time.time_ns() // HOUR * HOUR
    start = end - 4 * HOUR
    mon.fill(400, start, end - HOUR)  # the last bucket stays empty
    monitor_id = mon.add_monitor(metric_monitor(metric, warning=1.5, alert=2.5))
    got = signal(mon, monitor_id, start, end, 4)
    params: dict[str, Any] = {"from": iso(start), "to": iso(end), "bucket_seconds": 3600, "metrics": metric}
    expected = mon.client.get("/api/v1/metrics", params=params, headers=mon.auth).json()["series"]
    assert got["x"] == [(start + i * HOUR) // NS for i in range(4)]
    assert got["bucket_seconds"] == 3600
    [series] = got["series"]
    assert series["label"] == metric
    assert series["values"][:3] == pytest.approx([row[metric] for row in expected][:3])
    assert series["values"][0] is not None
    assert series["values"][3] in (None, 0.0)
    assert sum(got["n"]) == 400
    assert got["n"][3] == 0
    assert got["thresholds"] == [
        {"label": "warning", "value": 1.5, "op": ">"},
        {"label": "alert", "value": 2.5, "op": ">"},
    ]


def test_quality_signal_per_bucket_with_interval(mon: MonitorApi) -> None:
    for i in range(10):
        predicted = "refund" if i < 8 else "billing"
        body = {"name": "intent", "value": predicted, "label": "refund", "trace_id": TRACE}
        assert mon.client.post("/api/v1/scores", json=body, headers=mon.auth).status_code == 201
    spec = {
        "name": "acc",
        "kind": "quality",
        "score": "intent",
        "statistic": "accuracy",
        "condition": {"op": "<", "alert": 0.9},
    }
    monitor_id = mon.add_monitor(spec)
    now = time.time_ns()
    got = signal(mon, monitor_id, now - 2 * HOUR, now + HOUR, 3)
    labels = [s["label"] for s in got["series"]]
    assert labels == ["accuracy", "low", "high"]
    accuracy, low, high = (s["values"] for s in got["series"])
    assert got["n"] == [0, 10, 0]
    assert accuracy[1] == pytest.approx(0.8)
    assert accuracy[0] is None
    assert low[1] < 0.8 < high[1]
    assert got["thresholds"] == [{"label": "alert", "value": 0.9, "op": "<"}]


def test_anomaly_signal_has_the_metric_and_no_fixed_threshold(mon: MonitorApi) -> None:
    end = time.time_ns() // HOUR * HOUR
    mon.fill(50, end - 2 * HOUR, end)
    spec = {"name": "anom", "kind": "anomaly", "metric": "requests", "window": "1h", "bucket": "10m"}
    got = signal(mon, mon.add_monitor(spec), end - 2 * HOUR, end, 2)
    assert got["series"][0]["values"] == [float(n) for n in got["n"]]
    assert sum(got["n"]) == 50
    assert got["thresholds"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "31 days"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "before"),
        ({"buckets": 201}, "buckets"),
        ({"buckets": 0}, "buckets"),
    ],
)
def test_bad_ranges_are_refused(mon: MonitorApi, params: dict[str, Any], message: str) -> None:
    monitor_id = mon.add_monitor(metric_monitor("requests", alert=5))
    got = mon.client.get(f"/api/v1/monitors/{monitor_id}/signal", params=params, headers=mon.auth)
    assert got.status_code == 422
    assert message in got.text


def test_drift_signal_shows_recorded_statistics_and_the_fixed_threshold(mon: MonitorApi) -> None:
    spec = {"name": "drift", "kind": "drift", "feature": "latency_ms", "method": "psi", "threshold": 0.2}
    monitor_id = mon.add_monitor(spec)
    row = mon.services.monitoring.monitors.get(mon.project_id, monitor_id)
    assert row is not None
    end = time.time_ns() // HOUR * HOUR
    for at, value in ((end - 150 * 60 * NS, 0.05), (end - 40 * 60 * NS, 0.1), (end - 10 * 60 * NS, 0.3)):
        step = Step(State.ALERT, at, None, 0, "firing", True, State.OK)
        mon.services.monitoring.alerts.record(row, "firing", step, value, "drift", at)
    got = signal(mon, monitor_id, end - 3 * HOUR, end, 3)
    assert got["series"] == [{"label": "psi", "values": [0.05, None, 0.3], "unit": None}]
    assert got["n"] == [None, None, None]
    assert got["thresholds"] == [{"label": "alert", "value": 0.2, "op": ">"}]
