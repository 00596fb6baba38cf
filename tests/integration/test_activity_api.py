"""The activity feed: what comments record, order, cursor, filters, bounds and tenants."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.apps import Api
from tests.support.comments import Project, new_project
from watchkeep.store.activity_repository import MAX_PAGE, ActivityRepository


@pytest.fixture
def proj(api: Api) -> Project:
    return new_project(api)


def feed(proj: Project, role: str = "viewer", **params: Any) -> dict[str, Any]:
    response = proj.api.client.get("/api/v1/activity", params=params, headers=proj.auth[role])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def activity(proj: Project) -> ActivityRepository:
    repo: ActivityRepository = proj.api.app.state.services.activity
    return repo


def test_another_project_sees_none_of_this_projects_activity(api: Api, proj: Project) -> None:
    proj.comment("private remark")
    activity(proj).record(
        proj.id, actor="ann", actor_user_id=None, verb="labelled", target_kind="trace", target_id=proj.trace,
        summary="labelled good",
    )  # fmt: skip
    assert len(feed(proj)["items"]) == 2
    other = new_project(api)
    assert feed(other, role="admin") == {"items": [], "next_before_id": None}
    assert feed(other, role="admin", before_id=10**12)["items"] == []
    ingest = api.client.get("/api/v1/activity", headers=proj.auth["ingest"])
    assert ingest.status_code == 403


def test_comments_record_commented_edited_and_deleted_newest_first(api: Api, proj: Project) -> None:
    created = proj.comment("first words").json()
    url = f"/api/v1/comments/{created['id']}"
    api.client.patch(url, json={"body": "better words"}, headers=proj.auth["member"])
    api.client.delete(url, headers=proj.auth["admin"])
    items = feed(proj)["items"]
    assert [e["verb"] for e in items] == ["deleted", "edited", "commented"]
    assert {(e["target_kind"], e["target_id"]) for e in items} == {("trace", proj.trace)}
    assert items[0]["actor"] != items[1]["actor"] == items[2]["actor"] == created["author_name"]
    # once deleted, no entry repeats the comment's words
    assert {e["summary"] for e in items} == {f"comment #{created['id']}: (deleted)"}
    assert all(e["created_at"] for e in items)


def test_an_edit_restates_the_earlier_entries_of_that_comment_only(api: Api, proj: Project) -> None:
    one = proj.comment("one").json()
    two = proj.comment("two").json()
    api.client.patch(f"/api/v1/comments/{one['id']}", json={"body": "uno"}, headers=proj.auth["member"])
    summaries = [e["summary"] for e in feed(proj)["items"]]
    assert summaries == [
        f"comment #{one['id']}: uno",
        f"comment #{two['id']}: two",
        f"comment #{one['id']}: uno",
    ]


def test_cursor_and_filters(proj: Project) -> None:
    repo = activity(proj)
    for n in range(7):
        verb = ("labelled", "silenced", "edited")[n % 3]
        actor = "ann" if n % 2 else "bob"
        repo.record(
            proj.id, actor=actor, actor_user_id=n, verb=verb, target_kind="monitor", target_id=str(n),
            summary=f"entry {n}",
        )  # fmt: skip
    pages: list[list[str]] = []
    before: int | None = None
    while True:
        cursor: dict[str, Any] = {"before_id": before} if before else {}
        page = feed(proj, limit=3, **cursor)
        pages.append([e["target_id"] for e in page["items"]])
        before = page["next_before_id"]
        if before is None:
            break
    assert pages == [["6", "5", "4"], ["3", "2", "1"], ["0"]]
    assert [e["target_id"] for e in feed(proj, verb="labelled")["items"]] == ["6", "3", "0"]
    both = feed(proj, verb=["labelled", "silenced"])["items"]
    assert [e["target_id"] for e in both] == ["6", "4", "3", "1", "0"]
    assert [e["target_id"] for e in feed(proj, actor="ann")["items"]] == ["5", "3", "1"]
    assert [e["target_id"] for e in feed(proj, actor="ann", verb="edited")["items"]] == ["5"]
    assert feed(proj, actor="nobody")["items"] == []
    by_user = repo.list(proj.id, actor_user_id=4).items
    assert [(e.actor_user_id, e.summary) for e in by_user] == [(4, "entry 4")]


def test_limits_are_bounded(proj: Project) -> None:
    client, auth = proj.api.client, proj.auth["viewer"]
    assert client.get("/api/v1/activity", params={"limit": MAX_PAGE + 1}, headers=auth).status_code == 422
    assert client.get("/api/v1/activity", params={"limit": 0}, headers=auth).status_code == 422
    too_many = [f"v{i}" for i in range(21)]
    assert client.get("/api/v1/activity", params={"verb": too_many}, headers=auth).status_code == 422
    assert client.get("/api/v1/activity", params={"verb": "x" * 33}, headers=auth).status_code == 422
    repo = activity(proj)
    for n in range(MAX_PAGE + 3):
        repo.record(
            proj.id, actor="bulk", actor_user_id=None, verb="ran", target_kind="job", target_id=str(n), summary=""
        )  # fmt: skip
    page = repo.list(proj.id, limit=10_000)
    assert len(page.items) == MAX_PAGE
    assert page.next_before_id == page.items[-1].id


def test_record_cuts_long_values_and_drops_nul(proj: Project) -> None:
    activity(proj).record(
        proj.id, actor="a" * 300, actor_user_id=None, verb="v" * 40, target_kind="k" * 40,
        target_id="t\x00" * 100, summary="s\x00" * 600,
    )  # fmt: skip
    [entry] = feed(proj)["items"]
    assert (len(entry["actor"]), len(entry["verb"]), len(entry["target_kind"])) == (200, 32, 32)
    assert entry["target_id"] == "t" * 100
    assert entry["summary"] == "s" * 500
