"""Drift, anomaly and resource monitors, end to end through the worker."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from tests.support.monitor import NS, MonitorApi

from watchkeep.devtools.synthetic_calls import Traffic
from watchkeep.monitor.evaluate import MonitorEvaluator, PassCache
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.monitor.state import State

HOUR = 3600 * NS


def evaluate(mon: MonitorApi, spec: dict[str, object], now: int) -> dict[str, object]:
    row = mon.client.post("/api/v1/monitors", json=spec, headers=mon.auth).json()
    mon.services.monitoring.worker.run_once(now)
    result: dict[str, object] = mon.client.get(f"/api/v1/monitors/{row['id']}", headers=mon.auth).json()
    return result


def test_drift_monitor_fires_on_a_response_length_shift(mon: MonitorApi) -> None:
    now = (time.time_ns() // HOUR + 1) * HOUR  # an hour boundary after the monitors are due
    mon.fill(3000, now - 25 * HOUR, now - 2 * HOUR, Traffic(response_words_mean=40), seed=1)
    mon.fill(1500, now - HOUR, now - 1, Traffic(response_words_mean=60), seed=2)
    reference = {"duration": "23h", "offset": "1h", "refresh": "1h"}
    drifted = evaluate(
        mon,
        {
            "name": "len",
            "kind": "drift",
            "feature": "response_length",
            "window": "1h",
            "reference": reference,
        },
        now,
    )
    assert drifted["state"] == "ALERT", drifted["last_message"]
    assert "wasserstein" in str(drifted["last_message"])
    steady = evaluate(
        mon,
        {"name": "models", "kind": "drift", "feature": "model", "window": "1h", "reference": reference},
        now,
    )
    assert steady["state"] == "OK"


def test_anomaly_monitor_fires_on_an_error_spike(mon: MonitorApi) -> None:
    now = (time.time_ns() // HOUR + 1) * HOUR  # an hour boundary after the monitors are due
    mon.fill(4800, now - 25 * HOUR, now - HOUR, Traffic(error_rate=0.02), seed=3)
    mon.fill(200, now - HOUR, now, Traffic(error_rate=0.3), seed=4)
    spec = {
        "name": "errors",
        "kind": "anomaly",
        "metric": "error_rate",
        "window": "1h",
        "bucket": "1h",
        "reference": {"duration": "24h"},
    }
    assert evaluate(mon, spec, now)["state"] == "ALERT"
    calm = {**spec, "name": "latency", "metric": "latency_p50_ms"}
    assert evaluate(mon, calm, now)["state"] == "OK"


def test_resource_samples_are_stored_and_watched(mon: MonitorApi) -> None:
    worker = mon.services.monitoring.worker
    now = time.time_ns()
    worker.run_once(now)
    operator = TestClient(mon.app, client=("127.0.0.1", 50000))  # loopback, no operator token set
    assert mon.client.get("/api/v1/metrics/resources", headers=mon.auth).status_code == 403
    samples = operator.get("/api/v1/metrics/resources").json()
    assert samples["gpu"] == "none"  # no GPU on the test machines
    metrics = {(s["process"], s["metric"]) for s in samples["items"]}
    assert {("server", "cpu_percent"), ("server", "memory_rss_bytes")} <= metrics
    spec = {
        "name": "rss",
        "kind": "resource",
        "metric": "memory_rss_bytes",
        "process": "server",
        "condition": {"op": ">", "alert": 1024},
    }
    # The server's processes are the operator's: a project key may not watch them ...
    refused = mon.client.post("/api/v1/monitors", json=spec, headers=mon.auth)
    assert refused.status_code == 403, refused.text
    # ... the operator declares such monitors (``watchkeep monitors apply`` writes the store).
    repo = mon.services.monitoring.monitors
    row = repo.upsert(mon.project_id, MonitorSpec.model_validate(spec))
    # due from the moment it was stored (the store's clock), however long the steps above took
    mon.services.monitoring.worker.run_once(max(now, row.next_run_at_unix_nano) + NS)
    watched = repo.get(mon.project_id, row.id)
    assert watched is not None
    assert watched.state is State.ALERT


def test_loads_shared_within_a_pass_give_the_numbers_of_lone_evaluations(mon: MonitorApi) -> None:
    """Monitors reading the same window share one load per pass; each sees what it would alone."""
    now = (time.time_ns() // HOUR + 1) * HOUR
    mon.fill(2000, now - 6 * HOUR, now - 2 * HOUR, seed=1)
    mon.fill(1500, now - HOUR, now - 1, Traffic(latency_median_ms=900.0), seed=2)
    reference = {"duration": "4h", "offset": "1h", "refresh": "1h"}
    raw: list[dict[str, object]] = [
        {"name": "lat-auto", "kind": "drift", "feature": "latency_ms", "reference": reference},
        {
            "name": "lat-psi",
            "kind": "drift",
            "feature": "latency_ms",
            "method": "psi",
            "reference": reference,
        },
        {
            "name": "lat-mini",
            "kind": "drift",
            "feature": "latency_ms",
            "filter": {"model": "gpt-4o-mini"},
            "reference": reference,
        },
        {"name": "models", "kind": "drift", "feature": "model", "reference": reference},
        *(
            {"name": metric, "kind": "metric", "metric": metric, "condition": {"alert": 1e12}}
            for metric in ("latency_p99_ms", "latency_p50_ms", "error_rate", "requests")
        ),
    ]
    specs = [MonitorSpec.model_validate({"window": "1h", **s}) for s in raw]
    m = mon.services.monitoring
    evaluator = MonitorEvaluator(m.metrics, m.quality, m.drift, m.resources)
    shared = PassCache()
    together = [evaluator.evaluate(mon.project_id, spec, now, shared) for spec in specs]
    alone = [evaluator.evaluate(mon.project_id, spec, now, PassCache()) for spec in specs]
    assert together == alone
    assert shared.hits >= 3  # the second latency_ms load, the second latency and counter windows
    assert {o.level for o in together} <= {State.OK, State.ALERT}
    assert all(o.value is not None and o.samples > 0 for o in together)
