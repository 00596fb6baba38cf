"""Comments on traces over the REST API: tenants first, then validation, authorship, paging."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.apps import Api
from tests.support.comments import Project, new_project
from watchkeep.store.comment_repository import BODY_MAX_CHARS


@pytest.fixture
def proj(api: Api) -> Project:
    return new_project(api)


def test_another_projects_key_cannot_read_write_or_delete_this_projects_comments(
    api: Api, proj: Project
) -> None:
    created = proj.comment("mine").json()
    other = new_project(api)
    hostile = other.auth["admin"]
    listed = api.client.get(
        "/api/v1/comments", params={"target_kind": "trace", "target_id": proj.trace}, headers=hostile
    )
    assert listed.status_code == 404, listed.text
    assert "mine" not in listed.text
    posted = api.client.post(
        "/api/v1/comments",
        json={"target_kind": "trace", "target_id": proj.trace, "body": "theirs"},
        headers=hostile,
    )
    assert posted.status_code == 404, posted.text
    edited = api.client.patch(f"/api/v1/comments/{created['id']}", json={"body": "taken"}, headers=hostile)
    assert edited.status_code == 404, edited.text
    deleted = api.client.delete(f"/api/v1/comments/{created['id']}", headers=hostile)
    assert deleted.status_code == 404, deleted.text
    items = proj.comments().json()["items"]
    assert [(c["id"], c["body"]) for c in items] == [(created["id"], "mine")]


def test_a_comment_is_stored_as_given_and_listed_with_its_author(proj: Project) -> None:
    body = "<script>alert(1)</script> & \u00e9\n  second line  "
    response = proj.comment(body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["body"] == body
    assert created["target_kind"] == "trace"
    assert created["target_id"] == proj.trace
    assert created["author_name"].startswith("key wk_")
    assert created["author_user_id"] is None
    assert created["edited_at"] is None
    assert created["mentions"] == []
    listed = proj.comments().json()
    assert listed["items"] == [created]
    assert listed["next_cursor"] is None


def test_an_upper_case_trace_id_names_the_same_trace(proj: Project) -> None:
    response = proj.comment("upper", target_id=proj.trace.upper())
    assert response.status_code == 201, response.text
    assert response.json()["target_id"] == proj.trace
    assert [c["body"] for c in proj.comments(target_id=proj.trace.upper()).json()["items"]] == ["upper"]


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"body": ""}, 422, "body"),
        ({"body": "   \n\t "}, 422, "body is empty"),
        ({"body": "x" * (BODY_MAX_CHARS + 1)}, 422, "body"),
        ({"body": "nul \x00 inside"}, 422, "NUL"),
        ({"target_id": "not-a-trace"}, 422, "not a valid trace id"),
        ({"target_id": "ab" * 15}, 422, "not a valid trace id"),
        ({"target_kind": "model"}, 422, "unknown target_kind 'model'"),
        ({"target_kind": "TRACE"}, 422, "unknown target_kind"),
        ({"target_id": "0" * 31 + "1"}, 404, "no such trace"),
        ({"unexpected": 1}, 422, "unexpected"),
    ],
)
def test_bad_comments_are_refused_with_a_clear_message(
    proj: Project, change: dict[str, object], status: int, message: str
) -> None:
    response = proj.comment(**{"body": "ok", **change})  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert proj.comments().json()["items"] == []


def test_the_longest_body_is_accepted(proj: Project) -> None:
    response = proj.comment("y" * BODY_MAX_CHARS)
    assert response.status_code == 201, response.text
    assert len(proj.comments().json()["items"][0]["body"]) == BODY_MAX_CHARS


def test_listing_validates_the_target(api: Api, proj: Project) -> None:
    assert proj.comments(target_kind="version").status_code == 422
    assert proj.comments(target_id="zz").status_code == 422
    assert proj.comments(target_id="f" * 32).status_code == 404
    assert proj.comments(cursor="bm90LWEtY3Vyc29y").status_code == 400


def test_roles_viewer_reads_ingest_does_not_and_only_writers_write(proj: Project) -> None:
    assert proj.comment("by viewer", role="viewer").status_code == 403
    assert proj.comment("by ingest", role="ingest").status_code == 403
    assert proj.comments(role="ingest").status_code == 403
    assert proj.comment("by admin", role="admin").status_code == 201
    assert [c["body"] for c in proj.comments(role="viewer").json()["items"]] == ["by admin"]


def test_only_the_author_edits(api: Api, proj: Project) -> None:
    created = proj.comment("first draft").json()
    url = f"/api/v1/comments/{created['id']}"
    for stranger in (proj.header("member"), proj.auth["admin"]):
        refused = api.client.patch(url, json={"body": "hijacked"}, headers=stranger)
        assert refused.status_code == 403, refused.text
    assert api.client.patch(url, json={"body": "edited"}, headers=proj.auth["viewer"]).status_code == 403
    assert api.client.patch(url, json={"body": " "}, headers=proj.auth["member"]).status_code == 422
    edited = api.client.patch(url, json={"body": "second draft"}, headers=proj.auth["member"])
    assert edited.status_code == 200, edited.text
    assert edited.json()["body"] == "second draft"
    assert edited.json()["edited_at"] is not None
    assert edited.json()["created_at"] == created["created_at"]
    [listed] = proj.comments().json()["items"]
    assert (listed["body"], listed["edited_at"]) == ("second draft", edited.json()["edited_at"])


def test_the_author_or_an_admin_deletes_and_the_body_is_gone(api: Api, proj: Project) -> None:
    by_member = proj.comment("secret pasted by mistake").json()
    kept = proj.comment("kept").json()
    url = f"/api/v1/comments/{by_member['id']}"
    assert api.client.delete(url, headers=proj.header("member")).status_code == 403
    assert api.client.delete(url, headers=proj.auth["viewer"]).status_code == 403
    assert api.client.delete(url, headers=proj.auth["admin"]).status_code == 204
    assert api.client.delete(url, headers=proj.auth["admin"]).status_code == 404
    assert api.client.patch(url, json={"body": "back"}, headers=proj.auth["member"]).status_code == 404
    assert [c["id"] for c in proj.comments().json()["items"]] == [kept["id"]]
    own = api.client.delete(f"/api/v1/comments/{kept['id']}", headers=proj.auth["member"])
    assert own.status_code == 204
    assert proj.comments().json()["items"] == []
    activity = api.client.get("/api/v1/activity", headers=proj.auth["viewer"]).text
    assert "secret pasted" not in activity


def test_comments_page_oldest_first(proj: Project) -> None:
    bodies = [f"c{i}" for i in range(5)]
    for body in bodies:
        assert proj.comment(body).status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = proj.comments(**params).json()
        seen += [c["body"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == bodies
    assert pages == 3
    assert proj.comments(limit=201).status_code == 422


def test_counts_per_trace_leave_out_deleted_comments(api: Api, proj: Project) -> None:
    first = proj.comment("one").json()
    proj.comment("two")
    repo = api.app.state.services.comments
    assert repo.counts(proj.id, "trace", [proj.trace.upper(), "f" * 32]) == {proj.trace: 2}
    api.client.delete(f"/api/v1/comments/{first['id']}", headers=proj.auth["member"])
    assert repo.counts(proj.id, "trace", [proj.trace]) == {proj.trace: 1}
    assert repo.counts(proj.id + 10_000, "trace", [proj.trace]) == {}


def test_a_named_key_comments_under_its_name(api: Api, proj: Project) -> None:
    made = api.client.post(
        "/api/v1/keys", json={"role": "member", "name": "ci-bot"}, headers=proj.auth["admin"]
    )
    assert made.status_code == 201, made.text
    bot = {"Authorization": f"Bearer {made.json()['key']}"}
    payload = {"target_kind": "trace", "target_id": proj.trace, "body": "nightly run flagged this"}
    response = api.client.post("/api/v1/comments", json=payload, headers=bot)
    assert response.status_code == 201, response.text
    assert response.json()["author_name"] == "ci-bot"
    [entry] = api.client.get("/api/v1/activity", headers=proj.auth["viewer"]).json()["items"]
    assert (entry["actor"], entry["verb"]) == ("ci-bot", "commented")
