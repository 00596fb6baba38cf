"""Per-project quotas: a tenant cannot create monitors or evaluators without bound, pin an
arbitrarily large drift reference, schedule monitors back to back, or run on-demand
evaluations in a loop. Each limit answers a clear 4xx naming the setting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.keys import new_key
from watchkeep.app import create_app
from watchkeep.config import Settings

LIMITS = {
    "quota_monitors": 2,
    "quota_evaluators": 2,
    "quota_reference_rows": 100,
    "monitor_min_interval_seconds": 30.0,
    "evaluate_now_per_minute": 2,
    "worker_enabled": False,
}


@dataclass
class Tenant:
    client: TestClient
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(path, json=body, headers=self.auth)


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=LIMITS))) as client:
        yield client


@pytest.fixture
def tenant(app_client: TestClient, database_url: str) -> Tenant:
    return Tenant(app_client, new_key(database_url, "admin", f"q-{uuid.uuid4().hex[:10]}"))


def monitor(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "kind": "metric", "metric": "error_rate", "condition": {"alert": 0.5}, **fields}


def assert_quota(response: Any, setting: str) -> None:
    assert response.status_code == 422, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert setting in error["message"]


def test_monitor_quota(tenant: Tenant, app_client: TestClient, database_url: str) -> None:
    assert tenant.post("/api/v1/monitors", monitor("a")).status_code == 201
    assert tenant.post("/api/v1/monitors", monitor("b")).status_code == 201
    assert_quota(tenant.post("/api/v1/monitors", monitor("c")), "quota_monitors")
    yaml = "monitors:\n  - {name: d, kind: metric, metric: error_rate, condition: {alert: 0.5}}\n"
    applied = app_client.post(
        "/api/v1/monitors/apply", content=yaml, headers={**tenant.auth, "Content-Type": "application/yaml"}
    )
    assert_quota(applied, "quota_monitors")
    # Replacing an existing monitor is not a new one; other projects have their own quota.
    again = "monitors:\n  - {name: a, kind: metric, metric: error_rate, condition: {alert: 0.9}}\n"
    replaced = app_client.post(
        "/api/v1/monitors/apply", content=again, headers={**tenant.auth, "Content-Type": "application/yaml"}
    )
    assert replaced.status_code == 200, replaced.text
    other = Tenant(app_client, new_key(database_url, "admin"))
    assert other.post("/api/v1/monitors", monitor("c")).status_code == 201
    assert len(tenant.client.get("/api/v1/monitors", headers=tenant.auth).json()["items"]) == 2


def test_evaluator_quota(tenant: Tenant) -> None:
    for name in ("a", "b"):
        assert (
            tenant.post("/api/v1/online-evaluators", {"name": name, "evaluator": "json_valid"}).status_code
            == 201
        )
    assert_quota(
        tenant.post("/api/v1/online-evaluators", {"name": "c", "evaluator": "json_valid"}), "quota_evaluators"
    )


def test_pinned_reference_size_quota(tenant: Tenant) -> None:
    drift = {"kind": "drift", "feature": "latency_ms", "metric": None, "condition": None}
    small = {**monitor("small"), **drift, "reference": {"values": [1.0] * 100}}
    assert tenant.post("/api/v1/monitors", small).status_code == 201
    big = {**monitor("big"), **drift, "reference": {"values": [1.0] * 101}}
    assert_quota(tenant.post("/api/v1/monitors", big), "quota_reference_rows")


def test_minimum_monitor_interval(tenant: Tenant) -> None:
    response = tenant.post("/api/v1/monitors", monitor("fast", schedule="5s"))
    assert response.status_code == 422, response.text
    assert "monitor_min_interval_seconds" in response.json()["error"]["message"]
    assert tenant.post("/api/v1/monitors", monitor("ok", schedule="30s", window="5m")).status_code == 201


def test_on_demand_evaluation_is_rate_limited(
    tenant: Tenant, app_client: TestClient, database_url: str
) -> None:
    monitor_id = tenant.post("/api/v1/monitors", monitor("a")).json()["id"]
    path = f"/api/v1/monitors/{monitor_id}/evaluate"
    assert tenant.post(path, None).status_code == 200
    assert tenant.post(path, None).status_code == 200
    limited = tenant.post(path, None)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "evaluate_now_per_minute" in limited.json()["error"]["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Per project: another project is not throttled by this one.
    other = Tenant(app_client, new_key(database_url, "admin"))
    other_id = other.post("/api/v1/monitors", monitor("a")).json()["id"]
    assert other.post(f"/api/v1/monitors/{other_id}/evaluate", None).status_code == 200
