"""Project settings, Members tab: who may open the project, invitations, roles.

Every member may see who else is in the project; only ``members:write`` (admins, owners)
sees and may use the controls. All changes go through ``PeopleService`` and its rules
(``may_grant``: nobody grants or touches a role above its own; an organisation keeps its
last owner). A posted user id must be one of this project's people and an invitation id
one of this project's (or its organisation-wide) invitations, so nothing outside the
project can be reached by guessing ids. An invitation's link is shown once, on the page
that answers its creation; only its digest is stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, field_validator

from watchkeep.security.authz import Permission, UserRole, may_grant
from watchkeep.security.people import NotAllowed, PasswordRejected
from watchkeep.store.people_repository import LastOwner, Member, normalise_email, valid_email
from watchkeep.store.people_tokens import Invitation
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render

router = APIRouter(include_in_schema=False)
NAV = NavItem("Settings", "settings/members", Permission.TRACES_READ)
READ = Depends(page(Permission.TRACES_READ))
WRITE = Depends(page(Permission.MEMBERS_WRITE))
MAX_LISTED = 1000  # people and invitations shown (an organisation of more is not a console page)
Scope = Literal["project", "organisation"]


class InviteIn(BaseModel):
    """The invitation form."""

    email: str = Field(max_length=320)
    role: UserRole
    scope: Scope = "project"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not valid_email(normalise_email(value)):
            raise ValueError("enter a valid e-mail address")
        return normalise_email(value)


class RoleIn(BaseModel):
    """The change-role form of one member."""

    role: UserRole
    scope: Scope = "project"


def grantable(console: Console) -> list[str]:
    """The roles the user may give in this project (an admin never makes an owner)."""
    return [r.value for r in UserRole if may_grant(console.project.role, r.value)]


def _people(console: Console) -> tuple[list[dict[str, Any]], dict[int, Member]]:
    """The project's people: each with its organisation role and its project role (when
    that differs from, or replaces, the organisation's); and the organisation's members."""
    repo = console.services.people.repository
    in_org = {m.user.id: m for m in repo.members(console.project.organisation_id, limit=MAX_LISTED)}
    rows = []
    for member in repo.project_members(console.project.project_id, limit=MAX_LISTED):
        org = in_org.get(member.user.id)
        org_role = org.role if org is not None else None
        rows.append(
            {
                "member": member,
                "organisation_role": org_role,
                "project_role": member.role if member.role != org_role else None,
            }
        )
    return rows, in_org


def _invitations(console: Console) -> list[Invitation]:
    """Pending invitations to this project or to its whole organisation."""
    pending = console.services.people.repository.pending_invitations(
        console.project.organisation_id, limit=MAX_LISTED
    )
    return [i for i in pending if i.project_id in (None, console.project.project_id)]


def _render(
    console: Console,
    *,
    form: Form | None = None,
    error: str = "",
    notice: str = "",
    invitation_url: str = "",
    status: int = 200,
) -> HTMLResponse:
    rows, _ = _people(console)
    return render(
        console,
        "settings/members.html",
        status=status,
        rows=rows,
        invitations=_invitations(console),
        roles=grantable(console),
        form=form,
        error=error,
        notice=notice,
        invitation_url=invitation_url,
        tab="members",
    )


@router.get("/p/{project}/settings", response_class=HTMLResponse)
def settings_home(console: Annotated[Console, READ]) -> Response:
    """The settings section opens on its Members tab."""
    return RedirectResponse(console.url("settings/members"), status_code=303)


@router.get("/p/{project}/settings/members", response_class=HTMLResponse)
def members(console: Annotated[Console, READ]) -> HTMLResponse:
    """The project's people and pending invitations (controls for ``members:write``)."""
    return _render(console)


@router.post("/p/{project}/settings/members/invite", response_class=HTMLResponse)
def invite(console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)]) -> HTMLResponse:
    """Invite someone to this project (or its organisation); the link is shown this once."""
    data = form.validate(InviteIn)
    if data is None:
        return _render(console, form=form, status=400)
    svc = console.services
    organisation = svc.people.repository.organisation_by_id(console.project.organisation_id)
    assert organisation is not None  # the project's organisation exists (a foreign key)
    project = console.project.project_name if data.scope == "project" else None
    try:
        token, invitation = svc.people.invite(
            console.session.user.id, organisation, data.email, data.role.value, project
        )
    except NotAllowed as exc:
        return _render(console, form=form, error=f"Not invited: {exc.message}.", status=403)
    except PasswordRejected as exc:
        form.fail("email", exc.message)
        return _render(console, form=form, status=400)
    where = f"project {console.project.project_name}" if project else f"organisation {organisation.name}"
    record_change(
        console,
        "invited",
        "invitation",
        str(invitation.id),
        f"invited {invitation.email} as {invitation.role} in {where}",
    )
    url = str(console.request.base_url).rstrip("/") + f"/invite/{token}"
    return _render(console, notice=f"Invitation for {invitation.email} created.", invitation_url=url)


@router.post("/p/{project}/settings/members/invitations/{invitation_id}/revoke", response_class=HTMLResponse)
def revoke_invitation(
    console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)], invitation_id: int
) -> Response:
    """Revoke a pending invitation of this project (or of its organisation)."""
    found = next((i for i in _invitations(console) if i.id == invitation_id), None)
    if found is None:
        raise ConsoleRefusal(404, "There is no such pending invitation in this project.")
    actor_role = _actor_role(console, "project" if found.project_id is not None else "organisation")
    if actor_role is None or not may_grant(actor_role, found.role):
        return _render(console, error=f"You cannot revoke an invitation as {found.role}.", status=403)
    console.services.people.repository.revoke_invitation(console.project.organisation_id, found.id)
    record_change(console, "revoked", "invitation", str(found.id), f"revoked the invitation of {found.email}")
    return RedirectResponse(console.url("settings/members"), status_code=303)


@router.post("/p/{project}/settings/members/{user_id}/role", response_class=HTMLResponse)
def change_role(
    console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)], user_id: int
) -> Response:
    """Change a member's role in this project, or in the whole organisation."""
    rows, in_org = _people(console)
    target = _target(rows, user_id)
    data = form.validate(RoleIn)
    if data is None:
        return _render(console, form=form, status=400)
    if data.scope == "organisation" and user_id not in in_org:
        return _render(
            console, error=f"{target.user.email} is not in the organisation: give a project role.", status=400
        )
    people = console.services.people
    try:
        if data.scope == "organisation":
            people.set_role(
                console.session.user.id, console.project.organisation_id, user_id, data.role.value
            )
        else:
            people.set_project_role(
                console.session.user.id, console.project.project_name, user_id, data.role.value
            )
    except NotAllowed as exc:
        return _render(console, error=f"Role not changed: {exc.message}.", status=403)
    except LastOwner as exc:
        return _render(console, error=f"Role not changed: {exc.message}.", status=400)
    where = "the organisation" if data.scope == "organisation" else "this project"
    summary = f"made {target.user.email} {data.role.value} in {where}"
    record_change(console, "role changed", "member", str(user_id), summary)
    return RedirectResponse(console.url("settings/members"), status_code=303)


@router.post("/p/{project}/settings/members/{user_id}/remove", response_class=HTMLResponse)
def remove(
    console: Annotated[Console, WRITE], form: Annotated[Form, Depends(posted)], user_id: int
) -> Response:
    """Remove a member: from the organisation (and its projects) when it is in it, else
    its role in this project."""
    rows, in_org = _people(console)
    target = _target(rows, user_id)
    people = console.services.people
    try:
        if user_id in in_org:
            people.remove_member(console.session.user.id, console.project.organisation_id, user_id)
            summary = f"removed {target.user.email} from the organisation"
        else:
            people.set_project_role(console.session.user.id, console.project.project_name, user_id, None)
            summary = f"removed {target.user.email} from this project"
    except NotAllowed as exc:
        return _render(console, error=f"Not removed: {exc.message}.", status=403)
    except LastOwner as exc:
        return _render(console, error=f"Not removed: {exc.message}.", status=400)
    record_change(console, "removed", "member", str(user_id), summary)
    if user_id == console.session.user.id:
        return RedirectResponse("/", status_code=303)
    return RedirectResponse(console.url("settings/members"), status_code=303)


def _target(rows: list[dict[str, Any]], user_id: int) -> Member:
    """The project's member ``user_id``; 404 for anyone else (another tenant's user)."""
    for row in rows:
        member: Member = row["member"]
        if member.user.id == user_id:
            return member
    raise ConsoleRefusal(404, "There is no such person in this project.")


def _actor_role(console: Console, scope: Scope) -> str | None:
    """The user's role where a change applies: this project, or the organisation."""
    if scope == "project":
        return console.project.role
    repo = console.services.people.repository
    return repo.organisation_role(console.project.organisation_id, console.session.user.id)


# The activity feed's verbs as audit actions (security.audit).
_AUDIT_ACTIONS = {
    "key created": "key.create",
    "key revoked": "key.revoke",
    "invited": "invitation.create",
    "revoked": "invitation.revoke",
    "role changed": "member.role",
    "removed": "member.remove",
}


def record_change(console: Console, verb: str, kind: str, target_id: str, summary: str) -> None:
    """One entry of the project's activity feed under the acting person."""
    console.services.activity.record(
        console.project.project_id,
        actor=console.actor,
        actor_user_id=console.session.user.id,
        verb=verb,
        target_kind=kind,
        target_id=target_id,
        summary=summary,
    )
    console.services.audit.record(
        actor=f"user:{console.session.user.email}",
        action=_AUDIT_ACTIONS.get(verb, f"{kind}.{verb.replace(' ', '_')}"),
        project_id=console.project.project_id,
        target=f"{kind}:{target_id}",
        detail=summary,
    )
