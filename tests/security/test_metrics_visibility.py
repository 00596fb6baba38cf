"""Telemetry of one tenant is not shown to another: the all-projects Prometheus scrape and
the process-wide resource samples are for the operator (a token, or loopback without
one); a project key reads only its own project's metrics and quality."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.keys import new_key
from watchkeep.api.routes.health import exposure_warning
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.devtools.synthetic_calls import Traffic, generate, write
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

OPERATOR = "operator-token-0123456789abcdef"
LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)  # documentation range: never connected to, only the scope's client
NS = 1_000_000_000


@contextmanager
def started(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings.model_copy(update={"worker_enabled": False}))
    with TestClient(app):
        yield app


def get(app: FastAPI, path: str, peer: tuple[str, int], key: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = TestClient(app, client=peer).get(path, headers=headers)
    return response.status_code, response.text


@pytest.fixture
def open_app(settings: Settings) -> Iterator[FastAPI]:
    """No operator token: the default."""
    with started(settings) as app:
        yield app


@pytest.fixture
def token_app(settings: Settings) -> Iterator[FastAPI]:
    with started(settings.model_copy(update={"operator_token": OPERATOR})) as app:
        yield app


def test_without_a_token_only_loopback_gets_the_scrape(open_app: FastAPI, database_url: str) -> None:
    admin = new_key(database_url, "admin")
    status, text = get(open_app, "/metrics", REMOTE)
    assert status == 403
    assert "WATCHKEEP_OPERATOR_TOKEN" in text
    assert get(open_app, "/metrics", REMOTE, admin)[0] == 403
    assert get(open_app, "/metrics", ("::ffff:10.1.2.3", 1))[0] == 403
    assert get(open_app, "/metrics", LOOPBACK, admin)[0] == 403  # project keys never get it
    status, text = get(open_app, "/metrics", LOOPBACK)
    assert status == 200
    assert "watchkeep_http_requests_total" in text
    assert get(open_app, "/metrics", ("::1", 1))[0] == 200


def test_with_a_token_the_scrape_needs_it(token_app: FastAPI, database_url: str) -> None:
    assert get(token_app, "/metrics", LOOPBACK)[0] == 401
    assert get(token_app, "/metrics", REMOTE)[0] == 401
    assert get(token_app, "/metrics", REMOTE, OPERATOR[:-1] + "X")[0] == 403
    assert get(token_app, "/metrics", LOOPBACK, new_key(database_url, "admin"))[0] == 403
    assert get(token_app, "/metrics", REMOTE, OPERATOR)[0] == 200


def test_resource_samples_are_for_the_operator(token_app: FastAPI, database_url: str) -> None:
    svc = token_app.state.services
    svc.monitoring.worker.run_once(time.time_ns())  # one sample of this process, with its host name
    for role in ("admin", "member", "viewer"):
        status, text = get(token_app, "/api/v1/metrics/resources", LOOPBACK, new_key(database_url, role))
        assert status == 403
        assert svc.monitoring.sampler.host not in text
    assert get(token_app, "/api/v1/metrics/resources", REMOTE)[0] == 401
    status, text = get(token_app, "/api/v1/metrics/resources", REMOTE, OPERATOR)
    assert status == 200
    assert svc.monitoring.sampler.host in text


def test_resource_samples_without_a_token_on_loopback_only(open_app: FastAPI, database_url: str) -> None:
    open_app.state.services.monitoring.worker.run_once(time.time_ns())
    assert get(open_app, "/api/v1/metrics/resources", REMOTE)[0] == 403
    assert get(open_app, "/api/v1/metrics/resources", LOOPBACK, new_key(database_url, "admin"))[0] == 403
    status, text = get(open_app, "/api/v1/metrics/resources", LOOPBACK)
    assert status == 200
    assert '"cpu_percent"' in text


def test_a_project_key_sees_only_its_own_metrics_and_quality(open_app: FastAPI, database_url: str) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    key_a, key_b = new_key(database_url, "member", a), new_key(database_url, "member", b)
    engine = make_engine(database_url)
    try:
        project_a = ProjectRepository(engine).get_or_create(a).id
        now = time.time_ns()
        write(engine, generate(project_a, 200, now - 600 * NS, now - NS, Traffic(), seed=3))
    finally:
        engine.dispose()
    client = TestClient(open_app, client=REMOTE)
    for i in range(5):
        score = {"name": "intent", "value": "x", "label": "x" if i else "y", "trace_id": "ab" * 16}
        assert (
            client.post(
                "/api/v1/scores", json=score, headers={"Authorization": f"Bearer {key_a}"}
            ).status_code
            == 201
        )

    def read(key: str, path: str, **params: str) -> dict[str, object]:
        response = client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        body: dict[str, object] = response.json()
        return body

    assert read(key_a, "/api/v1/metrics")["summary"]["requests"] == 200  # type: ignore[index]
    assert read(key_b, "/api/v1/metrics")["summary"]["requests"] == 0  # type: ignore[index]
    assert read(key_a, "/api/v1/quality", name="intent")["n"] == 5
    assert read(key_b, "/api/v1/quality", name="intent")["n"] == 0


def test_a_warning_when_the_server_listens_beyond_loopback_without_a_token() -> None:
    assert exposure_warning(Settings(host="0.0.0.0")) is not None
    assert "WATCHKEEP_OPERATOR_TOKEN" in (exposure_warning(Settings(host="0.0.0.0")) or "")
    assert exposure_warning(Settings(host="::")) is not None
    assert exposure_warning(Settings(host="0.0.0.0", operator_token=OPERATOR)) is None
    assert exposure_warning(Settings(host="127.0.0.1")) is None
    assert exposure_warning(Settings(host="localhost")) is None


def test_a_project_key_cannot_watch_the_servers_processes(open_app: FastAPI, database_url: str) -> None:
    """A resource monitor's value and message would show the server's CPU and memory to a
    tenant: project keys may not declare one, through the API or a monitors file."""
    admin = {"Authorization": f"Bearer {new_key(database_url, 'admin')}"}
    spec = {
        "name": "rss",
        "kind": "resource",
        "metric": "memory_rss_bytes",
        "process": "server",
        "condition": {"op": ">", "alert": 1},
    }
    client = TestClient(open_app, client=LOOPBACK)
    created = client.post("/api/v1/monitors", json=spec, headers=admin)
    assert created.status_code == 403, created.text
    applied = client.post(
        "/api/v1/monitors/apply",
        content=(
            "monitors:\n  - name: rss\n    kind: resource\n    metric: memory_rss_bytes\n"
            "    process: server\n    condition: {op: '>', alert: 1}\n"
        ),
        headers={**admin, "Content-Type": "application/yaml"},
    )
    assert applied.status_code == 403, applied.text
    assert client.get("/api/v1/monitors", headers=admin).json()["items"] == []
