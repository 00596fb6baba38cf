"""An app for the tenant-boundary tests: a mock gateway route, no worker loop, loopback allow-listed.

Shared by the authorisation matrix and the cross-project tests so both run the same
server: every part that takes a resource id (gateway, monitors, channels) is live.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from watchkeep.config import Settings
from watchkeep.devtools.synthetic_otlp import build_request

OPERATOR_TOKEN = "operator-token-for-the-tests-0123456789"
MOCK_ROUTE: dict[str, Any] = {"deployments": [{"name": "a", "backend": "mock"}]}
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tenant_settings(database_url: str, home: Path) -> Settings:
    """Shared route ``m`` on the mock backend; the operator token set; loopback allow-listed
    (test receivers live there), so a refusal can only come from the rule under test."""
    routes = home / "routes.yaml"
    routes.write_text(yaml.safe_dump({"routes": [{"name": "m", **MOCK_ROUTE}]}), "utf-8")
    return Settings(
        home=home,
        database_url=database_url,
        ingest_decode_workers=0,
        log_format="text",
        key_cache_seconds=0,
        worker_enabled=False,
        gateway_config=routes,
        gateway_default_model=False,
        operator_token=OPERATOR_TOKEN,
        egress_allow_networks=["127.0.0.0/8"],
    )


def seed_trace(client: TestClient, auth: dict[str, str], spans: int = 3) -> list[tuple[str, str]]:
    """Ingest a trace with ``auth`` and wait until it is stored; its (trace_id, span_id) pairs."""
    body, ids = build_request(spans, rng=random.Random())
    response = client.post("/v1/traces", content=body, headers={**auth, **PROTOBUF})
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 30
    while client.get(f"/api/v1/traces/{ids[0][0]}", headers=auth).status_code != 200:
        assert time.monotonic() < deadline, "the seeded trace was never stored"
        time.sleep(0.02)
    return ids
