"""Key and project administration through the API, end to end on both databases:
the operator makes a project and its first admin key, the admin makes keys that work at
once, lists and revokes them, and a revoked key stops."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.tenant import OPERATOR_TOKEN, PROTOBUF, seed_trace, tenant_settings, unique
from watchkeep.app import create_app
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tenant_settings(database_url, tmp_path))) as c:
        yield c


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def ingest(client: TestClient, key: str) -> int:
    body, _ids = build_request(2)
    return client.post("/v1/traces", content=body, headers={**bearer(key), **PROTOBUF}).status_code


def test_operator_project_then_admin_keys_then_revocation(client: TestClient) -> None:
    name = unique("team")
    made = created(
        client.post("/api/v1/projects", json={"name": name, "first_key": {"role": "admin"}}, headers=OPERATOR)
    )
    assert made["project"]["name"] == name
    assert (made["project"]["keys"], made["project"]["active_keys"]) == (1, 1)
    admin = made["key"]["key"]
    assert made["key"]["role"] == "admin"
    assert made["key"]["state"] == "active"

    app_key = created(
        client.post("/api/v1/keys", json={"role": "ingest", "name": "checkout-app"}, headers=bearer(admin))
    )
    assert app_key["name"] == "checkout-app"
    assert app_key["expires_at"] is None
    assert ingest(client, app_key["key"]) == 200  # works at once
    seed_trace(client, bearer(admin))

    listed = client.get("/api/v1/keys", headers=bearer(admin)).json()["items"]
    assert [k["prefix"] for k in listed] == [app_key["prefix"], made["key"]["prefix"]]  # newest first
    assert {k["role"] for k in listed} == {"admin", "ingest"}
    assert all("key" not in k for k in listed)

    assert client.delete(f"/api/v1/keys/{app_key['prefix']}", headers=bearer(admin)).status_code == 204
    assert ingest(client, app_key["key"]) == 401  # stops at once
    states = {k["prefix"]: k for k in client.get("/api/v1/keys", headers=bearer(admin)).json()["items"]}
    assert states[app_key["prefix"]]["state"] == "revoked"
    assert states[app_key["prefix"]]["revoked_at_unix_nano"] is not None
    assert client.delete(f"/api/v1/keys/{app_key['prefix']}", headers=bearer(admin)).status_code == 404

    projects = client.get("/api/v1/projects", headers=OPERATOR).json()["items"]
    (mine,) = [p for p in projects if p["name"] == name]
    assert (mine["keys"], mine["active_keys"]) == (2, 1)


def test_expiry_is_stored_shown_and_enforced(client: TestClient, database_url: str) -> None:
    admin = created(
        client.post(
            "/api/v1/projects", json={"name": unique("exp"), "first_key": {"role": "admin"}}, headers=OPERATOR
        )
    )["key"]["key"]
    before = time.time_ns()
    soon = created(
        client.post("/api/v1/keys", json={"role": "member", "expires_in": 3600}, headers=bearer(admin))
    )
    assert before + 3600 * 10**9 <= soon["expires_at_unix_nano"] <= time.time_ns() + 3600 * 10**9
    shown = datetime.fromisoformat(soon["expires_at"].replace("Z", "+00:00"))
    assert shown.timestamp() == pytest.approx(soon["expires_at_unix_nano"] / 1e9, abs=1e-3)
    fixed = created(
        client.post(
            "/api/v1/keys",
            json={"role": "viewer", "expires_at": "2030-06-01T12:00:00+02:00"},
            headers=bearer(admin),
        )
    )
    assert fixed["expires_at_unix_nano"] == 1906538400 * 10**9
    assert ingest(client, soon["key"]) == 200
    # A key whose expiry passed (made directly in the store) lists as expired and is refused.
    engine = make_engine(database_url)
    try:
        project = fixed["project"]
        old = ProjectRepository(engine).create_key(project, "member", "old", time.time_ns() - 1)
    finally:
        engine.dispose()
    assert ingest(client, old) == 401
    states = {
        k["name"]: k["state"] for k in client.get("/api/v1/keys", headers=bearer(admin)).json()["items"]
    }
    assert states["old"] == "expired"


def test_operator_manages_any_projects_keys(client: TestClient) -> None:
    name = unique("ops")
    created(client.post("/api/v1/projects", json={"name": name}, headers=OPERATOR))
    assert client.post("/api/v1/projects", json={"name": name}, headers=OPERATOR).status_code == 409
    owner = created(client.post(f"/api/v1/projects/{name}/keys", json={"role": "admin"}, headers=OPERATOR))
    assert ingest(client, owner["key"]) == 200
    listed = client.get(f"/api/v1/projects/{name}/keys", headers=OPERATOR).json()["items"]
    assert [k["prefix"] for k in listed] == [owner["prefix"]]
    assert (
        client.delete(f"/api/v1/projects/{name}/keys/{owner['prefix']}", headers=OPERATOR).status_code == 204
    )
    assert ingest(client, owner["key"]) == 401
    assert client.get("/api/v1/projects/nope-nope/keys", headers=OPERATOR).status_code == 404
    other = unique("ops-other")
    created(client.post("/api/v1/projects", json={"name": other}, headers=OPERATOR))
    # A key is revoked only under its own project's name.
    fresh = created(client.post(f"/api/v1/projects/{name}/keys", json={"role": "viewer"}, headers=OPERATOR))
    assert (
        client.delete(f"/api/v1/projects/{other}/keys/{fresh['prefix']}", headers=OPERATOR).status_code == 404
    )
    assert client.get("/api/v1/traces", headers=bearer(fresh["key"])).status_code == 200


def test_key_and_project_lists_page(client: TestClient) -> None:
    name = unique("pages")
    admin = created(
        client.post("/api/v1/projects", json={"name": name, "first_key": {"role": "admin"}}, headers=OPERATOR)
    )["key"]["key"]
    for _ in range(4):
        created(client.post("/api/v1/keys", json={"role": "viewer"}, headers=bearer(admin)))
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/keys", params=params, headers=bearer(admin)).json()
        assert len(page["items"]) <= 2
        seen += [k["prefix"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/projects", params=params, headers=OPERATOR).json()
        names += [p["name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert name in names
    assert len(names) == len(set(names))


def test_project_names_are_checked(client: TestClient) -> None:
    for bad in ("", "a/b", "-lead", "x" * 129, "sp ace", "nul\x00"):
        assert client.post("/api/v1/projects", json={"name": bad}, headers=OPERATOR).status_code == 422, bad
