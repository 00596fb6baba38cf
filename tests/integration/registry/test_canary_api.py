"""The canaries REST API on both databases: start (and the route it writes), list, the
detail's live comparison, stop, refusals, every role's permissions and project isolation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.support.apps import Api
from tests.support.canary_data import add_spans, stage_canary
from tests.support.console import project_of

from watchkeep.config import Settings
from watchkeep.registry.canary_figures import NS, SETTLE_NS
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No background canary worker: the tests run its looks themselves, at times they choose."""
    return settings.model_copy(update={"canary_check_seconds": 0})


def call(api: Api, method: str, url: str, key: str | None = None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {key or api.key}"}
    return api.client.request(method, f"/api/v1{url}", headers=headers, **kwargs)


def _model(api: Api, key: str | None = None) -> None:
    for i in range(2):
        body = {"backend": "mock", "params": {"mock": {"reply": f"v{i + 1}"}}}
        assert call(api, "POST", "/models/bot/versions", key, json=body).status_code == 201
    for alias, version in (("production", 1), ("canary", 2)):
        moved = call(api, "PUT", f"/models/bot/aliases/{alias}", key, json={"version": version})
        assert moved.status_code == 200, moved.text


def _project_id(api: Api, key: str) -> int:
    engine = make_engine(api.database_url)
    try:
        found = ProjectRepository(engine).find(project_of(api.database_url, key))
        assert found is not None
        return found.id
    finally:
        engine.dispose()


def _admin(api: Api) -> str:
    """An admin key of the member's project (admins hold routes:write)."""
    return api.key_for("admin", project_of(api.database_url, api.key))


def test_start_writes_the_route_and_the_detail_shows_the_comparison(api: Api) -> None:
    admin = _admin(api)
    _model(api, admin)
    body = {
        "name": "bot",
        "route": "chat",
        "share": 0.25,
        "min_samples": 5,
        "metrics": ["error_rate", "score:ok"],
    }
    started = call(api, "POST", "/canaries", admin, json=body)
    assert started.status_code == 201, started.text
    canary = started.json()
    assert (canary["baseline_version"], canary["candidate_version"], canary["status"]) == (1, 2, "running")
    assert [m["name"] for m in canary["policy"]["metrics"]] == ["error_rate", "score:ok"]
    route = call(api, "GET", "/routes/chat", admin).json()
    assert [(d["name"], d["model"], d["weight"]) for d in route["deployments"]] == [
        ("baseline", "bot@production", 0.75),
        ("candidate", "bot@canary", 0.25),
    ]
    assert route["cache"]["enabled"] is False

    again = call(api, "POST", "/canaries", admin, json=body)
    assert again.status_code == 409
    assert "already running" in again.text

    # The worker's look shows in the detail: both arms, their sizes and the decision.
    services = api.app.state.services
    seen = services.canaries.get(_project_id(api, admin), canary["id"])
    engine = make_engine(api.database_url)
    try:
        add_spans(engine, seen.project_id, seen.watermark_ns + NS, 10, version="bot@1", errors=1)
        add_spans(engine, seen.project_id, seen.watermark_ns + NS, 10, version="bot@2", errors=3)
    finally:
        engine.dispose()
    services.canary_worker.look(seen, seen.watermark_ns + NS + SETTLE_NS)
    detail = call(api, "GET", f"/canaries/{canary['id']}").json()
    assert detail["looks"] == 1
    error_rate = detail["decision"]["metrics"][0]
    assert (error_rate["name"], error_rate["n_baseline"], error_rate["n_candidate"]) == ("error_rate", 10, 10)
    assert (error_rate["baseline"], error_rate["candidate"]) == (0.1, 0.3)
    assert abs(error_rate["delta"] - 0.2) < 1e-9
    assert detail["decision"]["action"] == "continue"

    listed = call(api, "GET", "/canaries", params={"status": "running", "name": "bot"}).json()["items"]
    assert [c["id"] for c in listed] == [canary["id"]]
    assert call(api, "GET", "/canaries", params={"status": "weird"}).status_code == 422

    stopped = call(api, "POST", f"/canaries/{canary['id']}/stop", json={"reason": "done"})
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert stopped.json()["reason"].endswith(": done")
    assert call(api, "POST", f"/canaries/{canary['id']}/stop").status_code == 409
    assert call(api, "GET", "/canaries", params={"status": "running"}).json()["items"] == []


def test_shadow_mode_route_and_bad_input(api: Api) -> None:
    admin = _admin(api)
    _model(api, admin)
    body = {"name": "bot", "route": "chat", "mode": "shadow"}
    started = call(api, "POST", "/canaries", admin, json=body)
    assert started.status_code == 201, started.text
    route = call(api, "GET", "/routes/chat", admin).json()
    assert [(d["name"], d["model"]) for d in route["deployments"]] == [("baseline", "bot@production")]
    assert (route["shadow"]["name"], route["shadow"]["model"]) == ("candidate", "bot@canary")

    bad = [
        {"name": "bot", "route": "r2", "metrics": ["p99"]},
        {"name": "bot", "route": "r2", "share": 1.5},
        {"name": "bot", "route": "r2", "mode": "both"},
        {"name": "bot", "route": "r2", "min_samples": 10, "max_samples": 5},
    ]
    for b in bad:
        assert call(api, "POST", "/canaries", admin, json=b).status_code == 422, b
    unknown = call(
        api, "POST", "/canaries", admin, json={"name": "bot", "route": "r2", "candidate_alias": "x"}
    )
    assert unknown.status_code == 409
    assert call(api, "POST", "/canaries", admin, json={"name": "nope", "route": "r2"}).status_code == 409


def test_every_role_and_project_isolation(api: Api) -> None:
    _model(api)  # the member's project
    body = {"name": "bot", "route": "chat", "configure_route": False}
    mine = project_of(api.database_url, api.key)
    viewer, ingest = api.key_for("viewer", mine), api.key_for("ingest", mine)
    # A member may start a canary but not write the route (routes:write is an admin's).
    assert call(api, "POST", "/canaries", json={**body, "configure_route": True}).status_code == 403
    started = call(api, "POST", "/canaries", json=body)
    assert started.status_code == 201, started.text
    canary_id = started.json()["id"]
    for key in (viewer, ingest):
        assert call(api, "POST", "/canaries", key, json=body).status_code == 403
        assert call(api, "POST", f"/canaries/{canary_id}/stop", key).status_code == 403
    assert call(api, "GET", "/canaries", ingest).status_code == 403
    assert call(api, "GET", f"/canaries/{canary_id}", viewer).json()["id"] == canary_id
    # Another project's keys (a member and an admin) see nothing and touch nothing: 404.
    for key in (api.key_for("member"), api.key_for("admin")):
        assert call(api, "GET", f"/canaries/{canary_id}", key).status_code == 404
        assert call(api, "POST", f"/canaries/{canary_id}/stop", key).status_code == 404
        assert call(api, "GET", "/canaries", key).json()["items"] == []
    assert call(api, "GET", "/canaries/999999999").status_code == 404
    assert call(api, "GET", f"/canaries/{canary_id}").json()["status"] == "running"
    assert call(api, "POST", f"/canaries/{canary_id}/stop").status_code == 200
    assert call(api, "GET", "/models/bot/aliases").json()["aliases"] == {"production": 1, "canary": 2}


@dataclass
class _Tenant:
    """The authorization matrix's tenant (``tests.support.eval_api.Stage``) over ``api``."""

    client: TestClient
    admin: dict[str, str]

    def make(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.client.request(method, url, headers=self.admin, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def trace(self) -> str:
        raise NotImplementedError


def test_the_matrix_staging_gives_a_running_canary_of_the_admins_project(api: Api) -> None:
    tenant = _Tenant(api.client, {"Authorization": f"Bearer {_admin(api)}"})
    canary_id = stage_canary(tenant)
    shown = call(api, "GET", f"/canaries/{canary_id}").json()  # the member's project
    assert (shown["status"], shown["baseline_version"], shown["candidate_version"]) == ("running", 1, 2)


def test_nul_characters_are_a_422_not_a_server_error(api: Api) -> None:
    _model(api)
    nul_metric = {"name": "bot", "route": "r", "configure_route": False, "metrics": ["score:a\x00b"]}
    assert call(api, "POST", "/canaries", json=nul_metric).status_code == 422
    started = call(api, "POST", "/canaries", json={"name": "bot", "route": "r", "configure_route": False})
    assert started.status_code == 201
    stop = call(api, "POST", f"/canaries/{started.json()['id']}/stop", json={"reason": "a\x00b"})
    assert stop.status_code == 422
