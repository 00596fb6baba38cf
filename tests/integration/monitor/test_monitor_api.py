"""The monitoring REST API over real databases: metrics, quality, drift, monitors, online checks."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pytest
from tests.support.keys import new_key
from tests.support.monitor import NS, MonitorApi

from watchkeep.devtools.synthetic_calls import Traffic, generate, write
from watchkeep.store.rows import SPAN_COLUMNS

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
DUR = SPAN_COLUMNS.index("duration_ms")
STATUS = SPAN_COLUMNS.index("status_code")
MODEL = SPAN_COLUMNS.index("request_model")


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


def test_metrics_summary_series_and_filters(mon: MonitorApi) -> None:
    now = time.time_ns()
    start = now - 3600 * NS
    batch = generate(mon.project_id, 600, start, now - NS, Traffic(route="support"), seed=1)
    other = generate(
        mon.project_id, 200, start, now - NS, Traffic(environment="staging", route="sales"), seed=2
    )
    write(mon.services.engine, batch)
    write(mon.services.engine, other)
    params = {"from": iso(start), "to": iso(now), "route": "support", "bucket_seconds": 900}
    body = mon.client.get("/api/v1/metrics", params=params, headers=mon.auth).json()
    durations = np.array([r[DUR] for r in batch.spans])
    summary = body["summary"]
    assert summary["requests"] == 600
    assert summary["errors"] == sum(r[STATUS] == 2 for r in batch.spans)
    assert summary["latency_p50_ms"] == pytest.approx(np.percentile(durations, 50))
    assert summary["latency_p99_ms"] == pytest.approx(np.percentile(durations, 99))
    assert summary["request_rate"] == pytest.approx(600 / 3600)
    assert len(body["series"]) == 4
    assert sum(b["requests"] for b in body["series"]) == 600
    model = batch.spans[0][MODEL]
    by_model = mon.client.get(
        "/api/v1/metrics",
        params={"from": iso(start), "to": iso(now), "route": "support", "model": model},
        headers=mon.auth,
    ).json()["summary"]
    assert by_model["requests"] == sum(r[MODEL] == model for r in batch.spans)
    staging = mon.client.get(
        "/api/v1/metrics",
        params={"from": iso(start), "to": iso(now), "environment": "staging", "metrics": "requests"},
        headers=mon.auth,
    ).json()["summary"]
    assert staging == {"requests": 200}
    bad = mon.client.get("/api/v1/metrics", params={"metrics": "p42"}, headers=mon.auth)
    assert bad.status_code == 422


def test_second_buckets_over_a_minute_count_every_call(mon: MonitorApi) -> None:
    """Bucket numbers times a bucket's nanoseconds pass 2**31 from the third bucket of a
    second: the per-bucket query must not overflow (PostgreSQL answered 500)."""
    now = time.time_ns()
    start = now - 60 * NS
    batch = generate(mon.project_id, 120, start, now - NS, Traffic(route="seconds"), seed=3)
    write(mon.services.engine, batch)
    params = {"from": iso(start), "to": iso(now), "route": "seconds", "bucket_seconds": 1}
    reply = mon.client.get("/api/v1/metrics", params=params, headers=mon.auth)
    assert reply.status_code == 200
    body = reply.json()
    assert len(body["series"]) == 60
    assert sum(b["requests"] for b in body["series"]) == body["summary"]["requests"] == 120


def test_quality_report_from_labelled_scores(mon: MonitorApi) -> None:
    pairs = [("pos", "pos")] * 30 + [("neg", "neg")] * 10 + [("pos", "neg")] * 10
    for predicted, actual in pairs:
        mon.client.post(
            "/api/v1/scores",
            json={"name": "sentiment", "value": predicted, "label": actual, "trace_id": TRACE},
            headers=mon.auth,
        )
    for thumb in (True, True, True, False):
        mon.client.post(
            "/api/v1/scores", json={"name": "thumbs", "value": thumb, "trace_id": TRACE}, headers=mon.auth
        )
    report = mon.client.get("/api/v1/quality", params={"name": "sentiment"}, headers=mon.auth).json()
    c = report["classification"]
    assert c["labels"] == ["neg", "pos"]
    assert c["confusion"] == [[10, 10], [0, 30]]
    assert c["accuracy"]["value"] == pytest.approx(0.8)
    assert c["accuracy"]["low"] < 0.8 < c["accuracy"]["high"]
    pos = next(p for p in c["per_class"] if p["label"] == "pos")
    assert pos["precision"]["value"] == pytest.approx(0.75)
    assert pos["recall"]["value"] == pytest.approx(1.0)
    thumbs = mon.client.get("/api/v1/quality", params={"name": "thumbs"}, headers=mon.auth).json()
    assert thumbs["rate"]["value"] == pytest.approx(0.75)
    assert thumbs["rate"]["n"] == 4


def test_drift_endpoint_detects_a_latency_shift_and_caches_the_reference(mon: MonitorApi) -> None:
    now = time.time_ns()
    mon.fill(2000, now - 7200 * NS, now - 3600 * NS, Traffic(), seed=3)
    mon.fill(2000, now - 3600 * NS, now - NS, Traffic(latency_median_ms=1100), seed=4)
    params = {
        "feature": "latency_ms",
        "reference_from": iso(now - 7200 * NS),
        "reference_to": iso(now - 3600 * NS),
        "current_from": iso(now - 3600 * NS),
        "current_to": iso(now),
    }
    first = mon.client.get("/api/v1/drift", params=params, headers=mon.auth).json()
    assert first["result"]["drifted"]
    assert first["result"]["method"] == "wasserstein"
    assert not first["reference_cached"]
    again = mon.client.get("/api/v1/drift", params=params, headers=mon.auth).json()
    assert again["reference_cached"]
    assert again["result"]["statistic"] == pytest.approx(first["result"]["statistic"])
    models = mon.client.get("/api/v1/drift", params={**params, "feature": "model"}, headers=mon.auth).json()
    assert not models["result"]["drifted"]
    unknown = mon.client.get("/api/v1/drift", params={**params, "feature": "mood"}, headers=mon.auth)
    assert unknown.status_code == 422


MONITORS_YAML = b"""
channels:
  - name: ops
    kind: webhook
    config: {url: "http://127.0.0.1:9/hook", secret: "0123456789abcdef0123"}
monitors:
  - name: error-rate
    kind: metric
    metric: error_rate
    window: 5m
    condition: {op: ">", warning: 0.02, alert: 0.05}
    channels: [ops]
  - name: latency-drift
    kind: drift
    feature: latency_ms
    window: 1h
    reference: {duration: 1d, refresh: 1h}
"""


def test_monitors_crud_and_yaml(mon: MonitorApi) -> None:
    spec = {"name": "p99", "kind": "metric", "metric": "latency_p99_ms", "condition": {"alert": 5000}}
    created = mon.client.post("/api/v1/monitors", json=spec, headers=mon.auth)
    assert created.status_code == 201
    monitor_id = created.json()["id"]
    assert mon.client.post("/api/v1/monitors", json=spec, headers=mon.auth).status_code == 409
    bad = {**spec, "metric": "latency_p42"}
    assert mon.client.post("/api/v1/monitors", json=bad, headers=mon.auth).status_code == 422
    changed = mon.client.put(
        f"/api/v1/monitors/{monitor_id}", json={**spec, "condition": {"alert": 9000}}, headers=mon.auth
    ).json()
    assert changed["spec"]["condition"]["alert"] == 9000
    assert changed["state"] == "OK"
    yaml_headers = {**mon.auth, "Content-Type": "application/yaml"}
    applied = mon.client.post("/api/v1/monitors/apply", content=MONITORS_YAML, headers=yaml_headers).json()
    assert [m["spec"]["name"] for m in applied["items"]] == ["error-rate", "latency-drift"]
    names = [m["spec"]["name"] for m in mon.client.get("/api/v1/monitors", headers=mon.auth).json()["items"]]
    assert names == ["error-rate", "latency-drift", "p99"]
    channels = mon.client.get("/api/v1/alert-channels", headers=mon.auth).json()["items"]
    assert channels[0]["config"]["secret"] == "***"
    member = {"Authorization": f"Bearer {new_key_for(mon, 'member')}", "Content-Type": "application/yaml"}
    assert mon.client.post("/api/v1/monitors/apply", content=MONITORS_YAML, headers=member).status_code == 403
    assert mon.client.delete(f"/api/v1/monitors/{monitor_id}", headers=mon.auth).status_code == 204
    assert mon.client.get(f"/api/v1/monitors/{monitor_id}", headers=mon.auth).status_code == 404


def new_key_for(mon: MonitorApi, role: str) -> str:
    project = mon.services.projects
    url = mon.services.engine.url.render_as_string(hide_password=False)
    name = next(p.project for p in project.list_keys() if mon.key.startswith(p.prefix))
    return new_key(url, role, name)


def test_online_evaluators_score_a_sample_of_new_calls(mon: MonitorApi) -> None:
    now = time.time_ns()
    mon.fill(50, now - 600 * NS, now - 300 * NS, Traffic(response_words_mean=5), seed=5)  # backlog: skipped
    body = {"name": "short-answer", "evaluator": "length", "params": {"max_chars": 60}, "sample_rate": 1.0}
    assert mon.client.post("/api/v1/online-evaluators", json=body, headers=mon.auth).status_code == 201
    mon.fill(200, now - 200 * NS, now - NS, Traffic(response_words_mean=6), seed=6)
    assert mon.services.monitoring.online.run_once() == 200
    assert mon.services.monitoring.online.run_once() == 0  # the cursor moved on
    report = mon.client.get("/api/v1/quality", params={"name": "short-answer"}, headers=mon.auth).json()
    assert report["n"] == 200
    assert 0.5 < report["rate"]["value"] < 1.0
    typo = {**body, "name": "x", "evaluator": "lenght"}
    refused = mon.client.post("/api/v1/online-evaluators", json=typo, headers=mon.auth)
    assert refused.status_code == 422
    assert "length" in refused.json()["error"]["message"]
