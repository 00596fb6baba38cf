"""``GET /api/v1/audit`` on both databases: admins read their own project's entries only
(never another tenant's, never server-wide ones), other roles are refused, pages follow
``after_seq``, and the REST call sites (keys, alias moves, deletions, exports) record
redacted entries."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.apps import Api
from tests.support.console import project_of
from watchkeep.security.audit import AuditLog


def get(api: Api, key: str, **params: Any) -> Any:
    return api.client.get("/api/v1/audit", params=params, headers={"Authorization": f"Bearer {key}"})


def make_key(api: Api, admin: str, role: str = "member") -> dict[str, Any]:
    made = api.client.post(
        "/api/v1/keys", json={"role": role, "name": "ci"}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


@pytest.mark.parametrize("role", ["member", "viewer", "ingest"])
def test_roles_below_admin_are_refused(api: Api, role: str) -> None:
    project = project_of(api.database_url, api.key_for("admin"))
    refused = get(api, api.key_for(role, project))
    assert refused.status_code == 403, refused.text


def test_without_a_key_is_401(api: Api) -> None:
    assert api.client.get("/api/v1/audit").status_code == 401


def test_key_creation_and_revocation_are_recorded_without_the_secret(api: Api) -> None:
    admin = api.key_for("admin")
    made = make_key(api, admin)
    revoked = api.client.delete(
        f"/api/v1/keys/{made['prefix']}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert revoked.status_code == 204
    items = get(api, admin).json()["items"]
    assert [(i["action"], i["target"]) for i in items] == [
        ("key.create", f"key:{made['prefix']}"),
        ("key.revoke", f"key:{made['prefix']}"),
    ]
    assert items[0]["after"] == {"role": "member", "name": "ci", "expires_at": None}
    assert items[0]["actor"].startswith("key:")
    assert made["key"] not in str(items)


def test_another_tenant_and_server_wide_entries_stay_hidden(api: Api) -> None:
    mine, theirs = api.key_for("admin"), api.key_for("admin")
    make_key(api, theirs)
    AuditLog(api.app.state.services.engine).record(actor="cli", action="project.delete", target="project:x")
    assert get(api, mine).json() == {"items": [], "next_after_seq": None}
    assert len(get(api, theirs).json()["items"]) == 1


def test_pages_follow_after_seq_and_filter_by_action(api: Api) -> None:
    admin = api.key_for("admin")
    for _ in range(3):
        make_key(api, admin, "viewer")
    first = get(api, admin, limit=2).json()
    assert len(first["items"]) == 2
    rest = get(api, admin, limit=2, after_seq=first["next_after_seq"]).json()
    assert len(rest["items"]) == 1
    assert rest["next_after_seq"] is None
    seqs = [i["seq"] for i in first["items"] + rest["items"]]
    assert seqs == sorted(seqs)
    assert get(api, admin, action="key.revoke").json()["items"] == []
    assert get(api, admin, limit=0).status_code == 422


def test_dataset_deletion_and_span_export_are_recorded(api: Api) -> None:
    admin = api.key_for("admin")
    auth = {"Authorization": f"Bearer {admin}"}
    assert api.client.delete("/api/v1/datasets/nope", headers=auth).status_code == 404
    assert api.client.get("/api/v1/export", headers=auth).status_code == 200
    actions = [i["action"] for i in get(api, admin).json()["items"]]
    assert actions == ["spans.export"]


def test_alias_moves_and_rollbacks_are_recorded_with_versions(api: Api) -> None:
    admin = api.key_for("admin")
    auth = {"Authorization": f"Bearer {admin}"}
    for model in ("gpt-4o-mini", "gpt-4o"):
        body = {"backend": "openai", "params": {"model": model}}
        assert api.client.post("/api/v1/models/clf/versions", json=body, headers=auth).status_code == 201
    for version in (1, 2):
        moved = api.client.put("/api/v1/models/clf/aliases/prod", json={"version": version}, headers=auth)
        assert moved.status_code == 200, moved.text
    back = api.client.post("/api/v1/models/clf/aliases/prod/rollback", json={"reason": "bad"}, headers=auth)
    assert back.status_code == 200, back.text
    items = get(api, admin).json()["items"]
    assert [(i["action"], i["target"], i["before"], i["after"]) for i in items] == [
        ("alias.move", "model:clf@prod", {"version": None}, {"version": 1}),
        ("alias.move", "model:clf@prod", {"version": 1}, {"version": 2}),
        ("alias.rollback", "model:clf@prod", {"version": 2}, {"version": 1}),
    ]
    assert items[2]["detail"] == "bad"
