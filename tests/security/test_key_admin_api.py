"""Attacks on key and project administration: escalation, cross-project revocation, expired
keys (also ones the server has cached), and project keys or wrong tokens at the operator's door."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.keys import new_key
from tests.support.tenant import OPERATOR_TOKEN, PROTOBUF, tenant_settings, unique
from watchkeep.app import create_app
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.security import keys as keys_module
from watchkeep.security.authz import ROLE_PERMISSIONS, Role, may_grant
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
HOUR_NS = 3600 * 10**9
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def app_client(database_url: str, tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    settings = tenant_settings(database_url, tmp_path).model_copy(update=overrides)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    yield from app_client(database_url, tmp_path)


@pytest.fixture
def repo(database_url: str) -> Iterator[ProjectRepository]:
    engine = make_engine(database_url)
    yield ProjectRepository(engine)
    engine.dispose()


def prefixes(client: TestClient, admin_key: str) -> set[str]:
    response = client.get("/api/v1/keys", headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    return {k["prefix"] for k in response.json()["items"]}


def ingest_status(client: TestClient, key: str) -> int:
    body, _ids = build_request(1)
    return client.post("/v1/traces", content=body, headers={**bearer(key), **PROTOBUF}).status_code


# --- escalation ---


def test_no_role_may_grant_a_permission_it_lacks() -> None:
    for granter, wanted in itertools.product(Role, Role):
        allowed = may_grant(granter.value, wanted.value)
        assert allowed == (ROLE_PERMISSIONS[wanted] <= ROLE_PERMISSIONS[granter]), (granter, wanted)
    assert may_grant("admin", "admin")  # documented: an admin may create another admin
    assert not may_grant("member", "admin")
    assert not may_grant("viewer", "member")
    assert not may_grant("ingest", "viewer")  # viewer reads what ingest cannot
    assert not may_grant("admin", "owner")  # unknown roles are never granted
    assert not may_grant("root", "viewer")


@pytest.mark.parametrize("role", ["member", "ingest", "viewer"])
def test_non_admin_keys_cannot_create_list_or_revoke_keys(
    client: TestClient, database_url: str, role: str
) -> None:
    project = unique("esc")
    admin = new_key(database_url, "admin", project)
    key = new_key(database_url, role, project)
    before = prefixes(client, admin)
    for wanted in ("admin", "member", "ingest", "viewer"):
        response = client.post("/api/v1/keys", json={"role": wanted}, headers=bearer(key))
        assert response.status_code == 403, response.text
    assert client.get("/api/v1/keys", headers=bearer(key)).status_code == 403
    assert client.delete(f"/api/v1/keys/{admin[:15]}", headers=bearer(key)).status_code == 403
    assert client.delete(f"/api/v1/keys/{key[:15]}", headers=bearer(key)).status_code == 403
    assert prefixes(client, admin) == before  # nothing created
    assert ingest_status(client, admin) == 200  # nothing revoked


def test_unknown_roles_and_extra_fields_are_refused(client: TestClient, database_url: str) -> None:
    admin = new_key(database_url, "admin")
    for body in ({"role": "owner"}, {"role": "root"}, {"role": "admin", "project": "other"}, {}):
        assert client.post("/api/v1/keys", json=body, headers=bearer(admin)).status_code == 422, body


def test_an_admin_creates_keys_of_its_own_project_only(client: TestClient, database_url: str) -> None:
    project, other = unique("a"), unique("b")
    admin, other_admin = new_key(database_url, "admin", project), new_key(database_url, "admin", other)
    made = client.post("/api/v1/keys", json={"role": "admin", "name": "rotated"}, headers=bearer(admin))
    assert made.status_code == 201, made.text
    assert made.json()["project"] == project
    new = made.json()["key"]
    assert made.json()["prefix"] in prefixes(client, admin)
    assert prefixes(client, new) == prefixes(client, admin)  # the new admin sees the same project
    assert not prefixes(client, new) & prefixes(client, other_admin)


def test_a_revoked_admin_key_can_create_nothing(client: TestClient, database_url: str) -> None:
    admin = new_key(database_url, "admin")
    assert client.delete(f"/api/v1/keys/{admin[:15]}", headers=bearer(admin)).status_code == 204
    assert client.post("/api/v1/keys", json={"role": "viewer"}, headers=bearer(admin)).status_code == 401


# --- cross-project revocation ---


def test_revoking_another_projects_key_is_404_like_a_key_nobody_has(
    client: TestClient, database_url: str
) -> None:
    attacker = new_key(database_url, "admin")
    victim = new_key(database_url, "member")
    theirs = client.delete(f"/api/v1/keys/{victim[:15]}", headers=bearer(attacker))
    nobodys = client.delete("/api/v1/keys/wk_AAAAAAAAAAAA", headers=bearer(attacker))
    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.json()["error"]["code"] == nobodys.json()["error"]["code"]
    assert ingest_status(client, victim) == 200  # the victim's key still works
    assert victim[:15] not in prefixes(client, attacker)  # and is never listed


def test_a_key_may_revoke_itself_and_stops_at_once(client: TestClient, database_url: str) -> None:
    admin = new_key(database_url, "admin")
    assert client.delete(f"/api/v1/keys/{admin[:15]}", headers=bearer(admin)).status_code == 204
    assert client.get("/api/v1/keys", headers=bearer(admin)).status_code == 401
    assert ingest_status(client, admin) == 401


def test_a_revocation_reaches_a_server_that_cached_the_key(database_url: str, tmp_path: Path) -> None:
    """With a long key cache, revoking through the API evicts the key in this process at once."""
    for client in app_client(database_url, tmp_path, key_cache_seconds=3600):
        project = unique("cached")
        admin, member = new_key(database_url, "admin", project), new_key(database_url, "member", project)
        assert ingest_status(client, member) == 200  # cached now
        assert client.delete(f"/api/v1/keys/{member[:15]}", headers=bearer(admin)).status_code == 204
        assert ingest_status(client, member) == 401
        assert client.post("/v1/chat/completions", json=CHAT, headers=bearer(member)).status_code == 401


def test_listings_carry_no_secret_and_no_digest(client: TestClient, database_url: str) -> None:
    admin = new_key(database_url, "admin")
    made = client.post("/api/v1/keys", json={"role": "viewer"}, headers=bearer(admin)).json()
    texts = [
        client.get("/api/v1/keys", headers=bearer(admin)).text,
        client.get(f"/api/v1/projects/{made['project']}/keys", headers=OPERATOR).text,
    ]
    for secret in (admin, made["key"]):
        digest = hashlib.sha256(secret.encode()).hexdigest()
        for text in texts:
            assert secret not in text
            assert digest not in text
            assert secret[:15] in text


# --- expiry ---


def test_an_expired_key_is_refused_on_ingest_query_and_gateway(
    client: TestClient, repo: ProjectRepository
) -> None:
    expired = repo.create_key(unique("exp"), "admin", None, time.time_ns() - 1)
    assert ingest_status(client, expired) == 401
    assert client.get("/api/v1/traces", headers=bearer(expired)).status_code == 401
    assert client.post("/api/v1/keys", json={"role": "viewer"}, headers=bearer(expired)).status_code == 401
    assert client.post("/v1/chat/completions", json=CHAT, headers=bearer(expired)).status_code == 401


class LaterClock:
    """``time`` for the key cache with the wall clock moved ahead (monotonic time untouched)."""

    def __init__(self, ahead_ns: int) -> None:
        self.ahead_ns = ahead_ns

    def time_ns(self) -> int:
        return time.time_ns() + self.ahead_ns

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_a_cached_key_stops_at_its_expiry_not_at_the_cache_time(
    database_url: str, tmp_path: Path, repo: ProjectRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache answer was fetched while the key was valid and is still fresh (an hour's
    cache); once the wall clock passes the key's expiry, neither REST nor the gateway takes it."""
    for client in app_client(database_url, tmp_path, key_cache_seconds=3600):
        key = repo.create_key(unique("exp-cached"), "member", None, time.time_ns() + HOUR_NS)
        assert ingest_status(client, key) == 200
        assert client.get("/api/v1/traces", headers=bearer(key)).status_code == 200
        verifier = client.app.state.services.keys  # type: ignore[attr-defined]
        assert verifier.cached(key) is not None  # served from the cache from here on
        monkeypatch.setattr(keys_module, "time", LaterClock(2 * HOUR_NS))
        assert verifier.cached(key) is None
        assert ingest_status(client, key) == 401
        assert client.get("/api/v1/traces", headers=bearer(key)).status_code == 401
        assert client.post("/v1/chat/completions", json=CHAT, headers=bearer(key)).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"role": "viewer", "expires_in": 0},
        {"role": "viewer", "expires_in": -5},
        {"role": "viewer", "expires_in": 11 * 366 * 86400},
        {"role": "viewer", "expires_at": "2020-01-01T00:00:00Z"},
        {"role": "viewer", "expires_at": "2027-01-01T00:00:00"},  # no zone
        {"role": "viewer", "expires_at": "9999-01-01T00:00:00Z"},
        {"role": "viewer", "expires_at": "2099-01-01T00:00:00Z", "expires_in": 60},
    ],
)
def test_unusable_expiries_are_refused(client: TestClient, database_url: str, body: dict[str, Any]) -> None:
    admin = new_key(database_url, "admin")
    before = prefixes(client, admin)
    assert client.post("/api/v1/keys", json=body, headers=bearer(admin)).status_code == 422
    assert prefixes(client, admin) == before


def test_the_key_quota_bounds_a_project(database_url: str, tmp_path: Path) -> None:
    for client in app_client(database_url, tmp_path, quota_keys=3):
        admin = new_key(database_url, "admin")
        made = [client.post("/api/v1/keys", json={"role": "viewer"}, headers=bearer(admin)) for _ in range(3)]
        assert [m.status_code for m in made] == [201, 201, 422]  # the admin key is the first of three
        assert made[-1].json()["error"]["code"] == "quota_exceeded"
        prefix = made[0].json()["prefix"]
        assert client.delete(f"/api/v1/keys/{prefix}", headers=bearer(admin)).status_code == 204
        assert client.post("/api/v1/keys", json={"role": "viewer"}, headers=bearer(admin)).status_code == 201


# --- the operator's routes ---

OPERATOR_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/projects", None),
    ("POST", "/api/v1/projects", {"name": "intruder", "first_key": {"role": "admin"}}),
    ("GET", "/api/v1/projects/{project}/keys", None),
    ("POST", "/api/v1/projects/{project}/keys", {"role": "admin"}),
    ("DELETE", "/api/v1/projects/{project}/keys/{prefix}", None),
]


def operator_attempts(client: TestClient, headers: dict[str, str], project: str, prefix: str) -> list[int]:
    out = []
    for method, path, body in OPERATOR_CALLS:
        url = path.format(project=project, prefix=prefix)
        out.append(client.request(method, url, json=body, headers=headers).status_code)
    return out


@pytest.mark.parametrize("role", ["admin", "member", "ingest", "viewer"])
def test_project_keys_never_reach_the_operator_routes(
    client: TestClient, database_url: str, role: str
) -> None:
    project = unique("op")
    key = new_key(database_url, role, project)
    assert operator_attempts(client, bearer(key), project, key[:15]) == [403] * len(OPERATOR_CALLS)
    assert ingest_status(client, key) == (403 if role == "viewer" else 200)  # still valid, just not here
    listed = client.get("/api/v1/projects", headers=OPERATOR).json()["items"]
    assert "intruder" not in {p["name"] for p in listed}


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {OPERATOR_TOKEN[:-1]}",
        f"Bearer {OPERATOR_TOKEN}x",
        f"Bearer {OPERATOR_TOKEN.upper()}",
        f"Basic {OPERATOR_TOKEN}",
        "Bearer wk_" + "a" * 43,
    ],
)
def test_wrong_operator_tokens_are_refused(client: TestClient, database_url: str, authorization: str) -> None:
    project = unique("op-wrong")
    key = new_key(database_url, "admin", project)
    got = operator_attempts(client, {"Authorization": authorization}, project, key[:15])
    assert all(status in (401, 403) for status in got), got
    assert ingest_status(client, key) == 200  # not revoked
    assert operator_attempts(client, {}, project, key[:15]) == [401] * len(OPERATOR_CALLS)


def test_without_an_operator_token_the_operator_routes_are_off(database_url: str, tmp_path: Path) -> None:
    for client in app_client(database_url, tmp_path, operator_token=None):
        project = unique("op-off")
        key = new_key(database_url, "admin", project)
        for headers in ({}, OPERATOR, bearer(key)):
            assert operator_attempts(client, headers, project, key[:15]) == [403] * len(OPERATOR_CALLS)
        assert ingest_status(client, key) == 200
        made = client.post("/api/v1/keys", json={"role": "viewer"}, headers=bearer(key))
        assert made.status_code == 201  # the project admins' own routes stay on


def test_the_operator_token_is_no_project_key(client: TestClient) -> None:
    assert client.get("/api/v1/keys", headers=OPERATOR).status_code == 401
    assert client.post("/api/v1/keys", json={"role": "admin"}, headers=OPERATOR).status_code == 401


def test_a_key_made_through_the_api_has_exactly_its_roles_rights(
    client: TestClient, database_url: str
) -> None:
    """An ingest key made by an admin calls models at once but reads nothing."""
    admin = new_key(database_url, "admin")
    ingest = client.post("/api/v1/keys", json={"role": "ingest"}, headers=bearer(admin)).json()["key"]
    assert client.post("/v1/chat/completions", json=CHAT, headers=bearer(ingest)).status_code == 200
    assert client.get("/api/v1/traces", headers=bearer(ingest)).status_code == 403
