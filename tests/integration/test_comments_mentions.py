"""@mentions: only people who can open the project are mentioned; their feed and unread count."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete

from tests.support.apps import Api
from tests.support.comments import Project, new_project
from tests.support.people import add_membership, insert_organisation, insert_user
from watchkeep.store.comment_repository import MAX_MENTIONS, Author, CommentRepository, handles_in
from watchkeep.store.tables import project_memberships


@pytest.fixture
def proj(api: Api) -> Project:
    return new_project(api)


def person(
    proj: Project, *, organisation_id: int | None = None, project_id: int | None = None
) -> tuple[int, str]:
    """A user with a unique e-mail, a member of an organisation or a project (or of nothing)."""
    local = f"u{uuid.uuid4().hex[:10]}"
    user_id = insert_user(proj.engine, f"{local}@example.com")
    if organisation_id is not None or project_id is not None:
        add_membership(proj.engine, user_id, organisation_id=organisation_id, project_id=project_id)
    return user_id, local


def repo(proj: Project) -> CommentRepository:
    comments: CommentRepository = proj.api.app.state.services.comments
    return comments


def test_a_user_of_another_organisation_cannot_be_mentioned(proj: Project) -> None:
    elsewhere = insert_organisation(proj.engine)
    outsider, outsider_local = person(proj, organisation_id=elsewhere)
    nobody, nobody_local = person(proj)  # in no organisation at all
    text = f"ping @{outsider_local} and @{outsider_local}@example.com and @{nobody_local}"
    response = proj.comment(text)
    assert response.status_code == 201, response.text
    assert response.json()["mentions"] == []
    # stored as PII masking (on by default) leaves it: the address is masked, handles stay
    assert response.json()["body"] == text.replace(f"{outsider_local}@example.com", "[EMAIL]")
    assert repo(proj).mentions_for(outsider) == []
    assert repo(proj).unread_count(outsider) == 0
    assert repo(proj).mentions_for(nobody) == []


def test_members_are_mentioned_by_local_part_or_address_in_any_case(proj: Project) -> None:
    org_member, org_local = person(proj, organisation_id=proj.organisation_id)
    project_member, project_local = person(proj, project_id=proj.id)
    text = f"@{org_local.upper()}, please look; cc @{project_local}@Example.COM."
    response = proj.comment(text)
    assert response.status_code == 201, response.text
    mentioned = {m["user_id"]: m["display_name"] for m in response.json()["mentions"]}
    assert mentioned == {org_member: org_local, project_member: project_local}
    [item] = repo(proj).mentions_for(org_member)
    assert (item.project_id, item.project_name, item.comment_id) == (
        proj.id,
        proj.name,
        response.json()["id"],
    )
    assert (item.target_kind, item.target_id, item.read_at_unix_nano) == ("trace", proj.trace, None)
    # mentioned by address, though the stored text has the address masked (PII is on by default)
    assert item.excerpt == text.replace(f"{project_local}@Example.COM", "[EMAIL]")
    assert repo(proj).unread_count(project_member) == 1
    listed = proj.comments().json()["items"][0]["mentions"]
    assert {m["user_id"] for m in listed} == {org_member, project_member}


def test_disabled_users_ambiguous_handles_and_e_mail_lookalikes_are_not_mentioned(proj: Project) -> None:
    disabled_local = f"d{uuid.uuid4().hex[:9]}"
    disabled = insert_user(proj.engine, f"{disabled_local}@example.com", disabled=True)
    add_membership(proj.engine, disabled, organisation_id=proj.organisation_id)
    local = f"twin{uuid.uuid4().hex[:8]}"
    twins = [insert_user(proj.engine, f"{local}@{domain}.example") for domain in ("a", "b")]
    for twin in twins:
        add_membership(proj.engine, twin, project_id=proj.id)
    response = proj.comment(f"@{disabled_local} @{local} x@{local} email{local}@a.example")
    assert response.status_code == 201, response.text
    # disabled; ambiguous; not a handle (no @ before it); an address, not a handle
    assert response.json()["mentions"] == []
    exact = proj.comment(f"@{local}@b.example")
    assert [m["user_id"] for m in exact.json()["mentions"]] == [twins[1]]
    assert repo(proj).mentions_for(disabled) == []


def test_feed_unread_count_and_mark_read(proj: Project) -> None:
    reader, local = person(proj, organisation_id=proj.organisation_id)
    other, other_local = person(proj, organisation_id=proj.organisation_id)
    ids = [proj.comment(f"{n} @{local}").json()["id"] for n in range(3)]
    proj.comment(f"@{other_local}")
    feed = repo(proj).mentions_for(reader)
    assert [m.comment_id for m in feed] == ids[::-1]  # newest first
    assert repo(proj).unread_count(reader) == 3
    older = repo(proj).mentions_for(reader, limit=2)
    assert [m.comment_id for m in repo(proj).mentions_for(reader, before_id=older[-1].id)] == ids[:1]
    other_mention = repo(proj).mentions_for(other)[0].id
    assert repo(proj).mark_read(reader, [other_mention]) == 0  # not the reader's: nothing changes
    assert repo(proj).unread_count(other) == 1
    assert repo(proj).mark_read(reader, [feed[0].id]) == 1
    assert repo(proj).unread_count(reader) == 2
    assert [m.comment_id for m in repo(proj).mentions_for(reader, unread_only=True)] == ids[1::-1]
    assert repo(proj).mark_read(reader) == 2
    assert repo(proj).unread_count(reader) == 0
    assert all(m.read_at_unix_nano is not None for m in repo(proj).mentions_for(reader))


def test_the_feed_spans_projects_the_user_sees_and_drops_lost_access(api: Api, proj: Project) -> None:
    second = new_project(api)
    user, local = person(proj, project_id=proj.id)
    add_membership(proj.engine, user, project_id=second.id)
    first_id = proj.comment(f"@{local} here").json()["id"]
    second_id = second.comment(f"@{local} there").json()["id"]
    assert [m.comment_id for m in repo(proj).mentions_for(user)] == [second_id, first_id]
    with proj.engine.begin() as conn:
        conn.execute(
            delete(project_memberships).where(
                project_memberships.c.user_id == user, project_memberships.c.project_id == second.id
            )
        )
    assert [m.project_id for m in repo(proj).mentions_for(user)] == [proj.id]
    assert repo(proj).unread_count(user) == 1


def test_editing_re_resolves_and_deleting_removes_from_the_feed(api: Api, proj: Project) -> None:
    first, first_local = person(proj, organisation_id=proj.organisation_id)
    second, second_local = person(proj, organisation_id=proj.organisation_id)
    created = proj.comment(f"@{first_local}").json()
    url = f"/api/v1/comments/{created['id']}"
    edited = api.client.patch(url, json={"body": f"@{second_local} instead"}, headers=proj.auth["member"])
    assert [m["user_id"] for m in edited.json()["mentions"]] == [second]
    assert repo(proj).mentions_for(first) == []
    assert repo(proj).unread_count(second) == 1
    assert api.client.delete(url, headers=proj.auth["member"]).status_code == 204
    assert repo(proj).mentions_for(second) == []
    assert repo(proj).unread_count(second) == 0


def test_a_user_author_does_not_mention_itself(proj: Project) -> None:
    me, local = person(proj, organisation_id=proj.organisation_id)
    author = Author(name=local, user_id=me)
    comment = repo(proj).add(proj.id, author, "trace", proj.trace, f"note to self @{local}")
    assert comment.mentions == []
    assert comment.author_user_id == me
    assert proj.comments().json()["items"][0]["author_name"] == local


def test_handles_are_bounded_and_deduplicated() -> None:
    body = " ".join(f"@h{i} @H{i}" for i in range(MAX_MENTIONS + 10))
    handles = handles_in(body)
    assert len(handles) == MAX_MENTIONS
    assert handles[:2] == ["h0", "h1"]
    assert handles_in("mail me: a@b.example, or @Ann.") == ["ann"]
