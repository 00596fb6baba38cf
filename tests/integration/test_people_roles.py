"""Who may open what: effective roles, tenant isolation, role changes and invitations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.people import PASSWORD, People, people_on
from watchkeep.security.people import InvitationInvalid, NotAllowed, PasswordRejected
from watchkeep.store.people_repository import LastOwner


@pytest.fixture
def people(database_url: str) -> Iterator[People]:
    with people_on(database_url) as made:
        yield made


def test_a_user_of_one_organisation_sees_no_project_of_another(people: People) -> None:
    org_a, org_b = people.organisation("a"), people.organisation("b")
    pa, pb = people.project(org_a), people.project(org_b)
    alice = people.user("alice")
    people.service.set_role(None, org_a.id, alice.id, "owner")
    assert people.service.access(alice.id, pb.name) is None  # the attack first
    assert [p.project_name for p in people.service.projects_for(alice.id)] == [pa.name]
    access = people.service.access(alice.id, pa.name)
    assert access is not None
    assert (access.role, access.organisation_name) == ("owner", org_a.name)
    # An org-B owner cannot act on org A's members either.
    bob = people.user("bob")
    people.service.set_role(None, org_b.id, bob.id, "owner")
    with pytest.raises(NotAllowed):
        people.service.set_role(bob.id, org_a.id, alice.id, "viewer")
    with pytest.raises(NotAllowed):
        people.service.invite(bob.id, org_a, "someone@example.com", "viewer")
    with pytest.raises(NotAllowed):
        people.service.set_project_role(bob.id, pa.name, bob.id, "owner")
    assert people.service.access(bob.id, pa.name) is None


def test_a_project_role_overrides_the_organisation_role(people: People) -> None:
    org = people.organisation()
    first, second = people.project(org, "a"), people.project(org, "b")
    user = people.user()
    people.service.set_role(None, org.id, user.id, "member")
    people.service.set_project_role(None, second.name, user.id, "viewer")
    roles = {p.project_name: p.role for p in people.service.projects_for(user.id)}
    assert roles == {first.name: "member", second.name: "viewer"}
    members = {m.user.id: m.role for m in people.repo.project_members(second.id)}
    assert members[user.id] == "viewer"
    people.service.set_project_role(None, second.name, user.id, None)
    assert people.service.access(user.id, second.name).role == "member"  # type: ignore[union-attr]
    # A project role alone opens that project and no other of the organisation.
    guest = people.user("guest")
    people.service.set_project_role(None, first.name, guest.id, "viewer")
    assert [(p.project_name, p.role) for p in people.service.projects_for(guest.id)] == [
        (first.name, "viewer")
    ]


def test_grant_rules_follow_permissions(people: People) -> None:
    org = people.organisation()
    owner, admin, member, target = (
        people.user("own"),
        people.user("adm"),
        people.user("mem"),
        people.user("t"),
    )
    for user, role in ((owner, "owner"), (admin, "admin"), (member, "member"), (target, "viewer")):
        people.service.set_role(None, org.id, user.id, role)
    with pytest.raises(NotAllowed, match="cannot grant"):
        people.service.set_role(admin.id, org.id, target.id, "owner")  # an admin cannot make owners
    with pytest.raises(NotAllowed, match="cannot grant"):
        people.service.set_role(admin.id, org.id, owner.id, "viewer")  # nor demote one
    with pytest.raises(NotAllowed, match="cannot grant"):
        people.service.remove_member(admin.id, org.id, owner.id)
    with pytest.raises(NotAllowed, match="admins and owners"):
        people.service.set_role(member.id, org.id, target.id, "viewer")
    with pytest.raises(NotAllowed, match="unknown role"):
        people.service.set_role(owner.id, org.id, target.id, "superuser")
    people.service.set_role(admin.id, org.id, target.id, "admin")
    people.service.set_role(owner.id, org.id, target.id, "owner")
    assert people.repo.organisation_role(org.id, target.id) == "owner"
    with pytest.raises(NotAllowed):
        people.service.invite(admin.id, org, "new@example.com", "owner")
    with pytest.raises(NotAllowed):
        people.service.invite(member.id, org, "new@example.com", "viewer")


def test_the_last_owner_stays_and_removal_ends_only_that_organisation(people: People) -> None:
    org, other = people.organisation(), people.organisation("other")
    project, other_project = people.project(org), people.project(other)
    owner, second = people.user("own"), people.user("two")
    people.service.set_role(None, org.id, owner.id, "owner")
    people.service.set_role(None, other.id, owner.id, "member")
    with pytest.raises(LastOwner):
        people.service.set_role(owner.id, org.id, owner.id, "admin")
    with pytest.raises(LastOwner):
        people.service.remove_member(owner.id, org.id, owner.id)
    with pytest.raises(LastOwner):
        people.service.remove_member(None, org.id, owner.id)  # not even the operator
    people.service.set_role(owner.id, org.id, second.id, "owner")
    people.service.set_project_role(None, project.name, owner.id, "admin")
    assert people.service.remove_member(second.id, org.id, owner.id)
    assert people.service.access(owner.id, project.name) is None  # its project role went too
    assert people.service.access(owner.id, other_project.name).role == "member"  # type: ignore[union-attr]
    with pytest.raises(LastOwner):
        people.service.set_role(second.id, org.id, second.id, "viewer")


def test_an_invitation_makes_an_account_once(people: People) -> None:
    org = people.organisation()
    project = people.project(org)
    inviter = people.user("inviter")
    people.service.set_role(None, org.id, inviter.id, "admin")
    token, invitation = people.service.invite(inviter.id, org, "New.Person@Example.com", "member")
    assert invitation.email == "new.person@example.com"
    assert [i.id for i in people.repo.pending_invitations(org.id)] == [invitation.id]
    with pytest.raises(PasswordRejected):
        people.service.accept_invitation(token, display_name="New", password="short")
    user = people.service.accept_invitation(token, display_name="New", password=PASSWORD)
    assert user.email == "new.person@example.com"
    assert people.service.access(user.id, project.name).role == "member"  # type: ignore[union-attr]
    assert people.repo.pending_invitations(org.id) == []
    with pytest.raises(InvitationInvalid):
        people.service.accept_invitation(token, display_name="Again", password=PASSWORD + "!")
    with pytest.raises(InvitationInvalid):
        people.service.accept_invitation(token, user_id=user.id)
    people.service.login(user.email, PASSWORD, user_agent=None, address=None)


def test_an_existing_user_accepts_for_their_own_address_only(people: People) -> None:
    org = people.organisation()
    project = people.project(org)
    invited, stranger = people.user("inv"), people.user("str")
    token, _ = people.service.invite(None, org, invited.email, "viewer", project.name)
    with pytest.raises(InvitationInvalid, match="log in as"):
        people.service.accept_invitation(token, user_id=stranger.id)
    with pytest.raises(InvitationInvalid, match="exists"):  # no second account for that address
        people.service.accept_invitation(token, display_name="Dup", password=PASSWORD)
    people.service.accept_invitation(token, user_id=invited.id)
    assert people.service.access(invited.id, project.name).role == "viewer"  # type: ignore[union-attr]
    assert people.service.access(stranger.id, project.name) is None
    # An invitation never lowers a role the user already has.
    people.service.set_role(None, org.id, invited.id, "admin")
    lower, _ = people.service.invite(None, org, invited.email, "viewer")
    people.service.accept_invitation(lower, user_id=invited.id)
    assert people.repo.organisation_role(org.id, invited.id) == "admin"


def test_expired_and_revoked_invitations_are_refused(people: People) -> None:
    org = people.organisation()
    expired, _ = people.repo.create_invitation(
        org.id, "late@example.com", "member", now=people.clock.now - 8 * 86400 * 10**9
    )
    with pytest.raises(InvitationInvalid):
        people.service.accept_invitation(expired, display_name="Late", password=PASSWORD)
    revoked, invitation = people.service.invite(None, org, "gone@example.com", "member")
    other = people.organisation("other")
    assert not people.repo.revoke_invitation(other.id, invitation.id)  # scoped to its organisation
    assert people.repo.revoke_invitation(org.id, invitation.id)
    with pytest.raises(InvitationInvalid):
        people.service.accept_invitation(revoked, display_name="Gone", password=PASSWORD)
    assert people.repo.user_by_email("gone@example.com") is None
    with pytest.raises(LookupError):
        people.service.invite(None, other, "x@example.com", "member", people.project(org).name)
