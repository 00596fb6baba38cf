"""``watchkeep users ...`` and ``watchkeep orgs ...``: the operator's commands for people.

They work on the database of the settings (like ``keys`` and ``projects``), as the
operator: no role check applies, so the first owner can be made here. Passwords come from
stdin (``--password-stdin``), a twice-typed prompt on a terminal, or are generated and
printed once; invitation and generated secrets are printed once and never stored.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from watchkeep.cli.audit_commands import record_cli
from watchkeep.config import Settings
from watchkeep.security.authz import UserRole

if TYPE_CHECKING:
    from watchkeep.security.people import PeopleService
    from watchkeep.store.people_repository import Organisation, User

users_app = typer.Typer(help="Console users: accounts, roles, passwords, invitations.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organisations (groups of people and projects).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (its first line).")
]
Email = Annotated[str, typer.Argument(help="The user's e-mail address.")]
Org = Annotated[str, typer.Option("--org", help="Organisation name.")]


def _service() -> PeopleService:
    from watchkeep.security.people import PeopleService
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade
    from watchkeep.store.people_repository import PeopleRepository

    settings = Settings()
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return PeopleService.from_settings(PeopleRepository(engine), settings)


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The new password and whether it was generated (and so must be printed)."""
    from watchkeep.security.passwords import generate_password

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True)), False
    return generate_password(), True


def _organisation(service: PeopleService, name: str) -> Organisation:
    repo = service.repository
    found = repo.default_organisation() if name == "default" else repo.organisation(name)
    if found is None:
        raise _fail(f"no organisation named {name!r} (watchkeep orgs create {name})")
    return found


def _user(service: PeopleService, email: str) -> User:
    found = service.repository.user_by_email(email)
    if found is None:
        raise _fail(f"no user {email!r}")
    return found


@users_app.command("create")
def users_create(
    email: Email,
    name: Annotated[str, typer.Option("--name", help="Display name (default: the address's name).")] = "",
    org: Annotated[
        str | None, typer.Option("--org", help="Organisation (default: the project's, else 'default').")
    ] = None,
    role: Annotated[
        UserRole | None,
        typer.Option(
            "--role",
            help="Role in the organisation (or --project); default: owner of an "
            "organisation without one, else member.",
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Grant the role in this project only.")
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a console user with a role in an organisation or one of its projects."""
    from watchkeep.security.people import PasswordRejected, UserExists

    service = _service()
    organisation = _organisation(service, org or "default")
    if project is not None:
        target = service.repository.project_organisation(project)
        if target is None or (org is not None and target[1] != organisation.id):
            raise _fail(f"no project {project!r} in organisation {org or 'any'!r}")
        organisation = service.repository.organisation_by_id(target[1]) or organisation
    if role is None:
        owners = [m for m in service.repository.members(organisation.id) if m.role == UserRole.OWNER]
        role = UserRole.MEMBER if owners or project else UserRole.OWNER
    password, generated = _password(password_stdin)
    try:
        user = service.create_user(email, name, password)
    except PasswordRejected as exc:
        raise _fail("\n".join(exc.problems)) from None
    except UserExists:
        raise _fail(f"a user {email.strip().lower()!r} exists") from None
    if project is None:
        service.set_role(None, organisation.id, user.id, role.value)
    else:
        service.set_project_role(None, project, user.id, role.value)
    where = f"project {project!r}" if project else f"organisation {organisation.name!r}"
    record_cli("user.create", f"user:{user.email}", after={"role": role.value, "where": where})
    typer.echo(f"created user {user.email} ({role.value} in {where})", err=True)
    if generated:
        typer.echo("its generated password; store it now (it is not shown again):", err=True)
        typer.echo(password)


@users_app.command("list")
def users_list(
    org: Annotated[str | None, typer.Option("--org", help="Only members of this organisation.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """List users: e-mail, name, role (with --org) and state (active, disabled)."""
    service = _service()
    members = (
        service.repository.users()
        if org is None
        else service.repository.members(_organisation(service, org).id)
    )
    rows = [
        {
            "email": m.user.email,
            "name": m.user.display_name,
            "role": m.role,
            "state": "disabled" if m.disabled else "active",
        }
        for m in members
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        role = f"  {r['role']}" if r["role"] else ""
        typer.echo(f"{r['email']}  {r['name']}{role}  {r['state']}")


@users_app.command("disable")
def users_disable(email: Email) -> None:
    """Disable an account: its sessions end and it can no longer log in."""
    service = _service()
    service.disable_user(_user(service, email).id)
    record_cli("user.disable", f"user:{email.strip().lower()}")
    typer.echo(f"disabled {email.strip().lower()}")


@users_app.command("set-password")
def users_set_password(email: Email, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password (clears a lockout and ends the user's sessions)."""
    from watchkeep.security.people import PasswordRejected

    service = _service()
    user = _user(service, email)
    password, generated = _password(password_stdin)
    try:
        service.set_password(user.id, password)
    except PasswordRejected as exc:
        raise _fail("\n".join(exc.problems)) from None
    record_cli("user.set_password", f"user:{user.email}")
    typer.echo(f"password set for {user.email}; its sessions ended", err=True)
    if generated:
        typer.echo("the generated password; store it now (it is not shown again):", err=True)
        typer.echo(password)


@users_app.command("logout")
def users_logout(email: Email) -> None:
    """End every console session of a user (logout everywhere)."""
    service = _service()
    ended = service.logout_everywhere(_user(service, email).id)
    record_cli("session.logout_everywhere", f"user:{email.strip().lower()}")
    typer.echo(f"ended {ended} session(s) of {email.strip().lower()}")


@users_app.command("invite")
def users_invite(
    email: Email,
    org: Org,
    role: Annotated[UserRole, typer.Option("--role", help="The role the invitation grants.")],
    project: Annotated[
        str | None, typer.Option("--project", help="Grant the role in this project only.")
    ] = None,
    base_url: Annotated[
        str, typer.Option("--base-url", help="The console's address.")
    ] = "http://127.0.0.1:8700",
) -> None:
    """Invite someone; the invitation URL (valid 7 days, single use) is printed once."""
    from watchkeep.security.people import PasswordRejected

    service = _service()
    organisation = _organisation(service, org)
    try:
        token, invitation = service.invite(None, organisation, email, role.value, project)
    except (LookupError, PasswordRejected) as exc:
        raise _fail(getattr(exc, "message", None) or str(exc.args[0])) from None
    where = f"project {project!r}" if project else f"organisation {organisation.name!r}"
    typer.echo(f"invited {invitation.email} as {role.value} in {where}; send them this link:", err=True)
    typer.echo(f"{base_url.rstrip('/')}/invite/{token}")


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Argument(help="The organisation's name (1-200 characters).")],
) -> None:
    """Create an organisation."""
    from watchkeep.store.people_repository import OrganisationExists

    name = name.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise typer.BadParameter("use 1 to 200 printable characters", param_hint="NAME")
    try:
        made = _service().repository.create_organisation(name)
    except OrganisationExists:
        raise _fail(f"an organisation named {name!r} exists") from None
    typer.echo(f"created organisation {made.name!r} (id {made.id})")


@orgs_app.command("list")
def orgs_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """List organisations with their member counts."""
    repo = _service().repository
    rows = [{"name": o.name, "id": o.id, "members": len(repo.members(o.id))} for o in repo.organisations()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['name']}  id={r['id']}  members {r['members']}")
