"""Logging people in and managing who may do what: argon2id passwords, lockout, sessions,
memberships and invitations.

A refused login always says the same thing, whether the address is unknown, the password
wrong, or the account disabled or locked, and it costs the same time (a password is
verified in every case), so the form tells an attacker nothing about which accounts exist.
Role changes follow ``security.authz``: one needs ``members:write``, may grant only a role
whose permissions it holds itself (so only owners make owners), may not touch someone whose
role it could not grant, and no organisation loses its last owner. ``actor=None`` is the
operator at the command line, who may do anything.
"""

from __future__ import annotations

from collections.abc import Callable

from watchkeep.config import Settings
from watchkeep.security import passwords
from watchkeep.security.authz import Permission, UserRole, may_grant, permissions_of
from watchkeep.store.clock import now_ns
from watchkeep.store.people_repository import (
    Organisation,
    PeopleRepository,
    ProjectAccess,
    SessionUser,
    User,
    UserExists,
    normalise_email,
    valid_email,
)
from watchkeep.store.people_tokens import Invitation, InvitationInvalid

REFUSAL = "that e-mail address and password do not match an account that may log in"
MINUTE_NS = 60 * 10**9
HOUR_NS = 3600 * 10**9

__all__ = [
    "REFUSAL",
    "InvitationInvalid",
    "LoginRefused",
    "NotAllowed",
    "PasswordRejected",
    "PeopleService",
    "UserExists",
]


class LoginRefused(Exception):
    """A login that did not succeed; ``message`` is safe to show (it never says whether
    the e-mail address exists)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PasswordRejected(ValueError):
    """A password (or another field of a new account) the policy refuses; ``problems``
    are the messages to show."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.message = str(self)


class NotAllowed(Exception):
    """The acting user may not make this change; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PeopleService:
    """The console's use cases about people."""

    def __init__(
        self,
        repository: PeopleRepository,
        *,
        session_hours: float = 12.0,
        lockout_after: int = 5,
        lockout_minutes: float = 15.0,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self.repository = repository
        self.session_ns = int(session_hours * HOUR_NS)
        self.lockout_after = lockout_after
        self.lockout_ns = int(lockout_minutes * MINUTE_NS)
        self._clock = clock

    @classmethod
    def from_settings(cls, repository: PeopleRepository, settings: Settings) -> PeopleService:
        """The service with the settings' session length and lockout."""
        return cls(
            repository,
            session_hours=settings.console_session_hours,
            lockout_after=settings.login_lockout_after,
            lockout_minutes=settings.login_lockout_minutes,
        )

    # --- sessions ----------------------------------------------------------------------
    def session_user(self, token: str) -> SessionUser | None:
        """The user behind a session cookie's token, or None."""
        return self.repository.session_user(token, now=self._clock())

    def projects_for(self, user_id: int) -> list[ProjectAccess]:
        """The projects the user may open."""
        return self.repository.projects_for(user_id)

    def access(self, user_id: int, project_name: str) -> ProjectAccess | None:
        """The user's access to a project, or None."""
        return self.repository.access(user_id, project_name)

    def login(
        self, email: str, password: str, *, user_agent: str | None, address: str | None
    ) -> tuple[str, SessionUser]:
        """A new session (its secret token and its user); ``LoginRefused`` otherwise."""
        now = self._clock()
        found = self.repository.credentials(email) if len(email) <= 320 else None
        if found is None or found.password_hash is None:
            passwords.dummy_verify(password)
            raise LoginRefused(REFUSAL)
        matches = passwords.verify_password(found.password_hash, password)
        locked = found.locked_until_unix_nano is not None and found.locked_until_unix_nano > now
        if found.disabled or locked:  # the right password does not open a locked account
            raise LoginRefused(REFUSAL)
        if not matches:
            self.repository.record_failed_login(
                found.user.id, lock_after=self.lockout_after, lock_ns=self.lockout_ns, now=now
            )
            raise LoginRefused(REFUSAL)
        if passwords.needs_rehash(found.password_hash):
            self.repository.set_password_hash(found.user.id, passwords.hash_password(password))
        self.repository.record_login(found.user.id, now)
        self.repository.purge_expired_sessions(now)
        return self.repository.create_session(
            found.user, lifetime_ns=self.session_ns, user_agent=user_agent, address=address, now=now
        )

    def logout(self, token: str) -> None:
        """End the session of ``token``."""
        self.repository.delete_session(token)

    def logout_everywhere(self, user_id: int) -> int:
        """End every session of the user; how many ended."""
        return self.repository.delete_user_sessions(user_id)

    # --- accounts ----------------------------------------------------------------------
    @staticmethod
    def check_new_account(email: str, password: str) -> None:
        """``PasswordRejected`` with every problem of a new account's address and password."""
        problems = [] if valid_email(normalise_email(email)) else ["enter a valid e-mail address"]
        problems += passwords.password_problems(password, email)
        if problems:
            raise PasswordRejected(problems)

    def create_user(self, email: str, display_name: str, password: str) -> User:
        """A new account with a policy-checked password; ``PasswordRejected`` or
        ``UserExists`` otherwise."""
        self.check_new_account(email, password)
        name = display_name.strip()[:200] or normalise_email(email).partition("@")[0]
        return self.repository.create_user(email, name, passwords.hash_password(password))

    def set_password(self, user_id: int, password: str) -> None:
        """Replace the user's password (policy-checked) and end all its sessions."""
        user = self.repository.user_by_id(user_id)
        if user is None:
            raise LookupError(user_id)
        problems = passwords.password_problems(password, user.email)
        if problems:
            raise PasswordRejected(problems)
        self.repository.set_password_hash(user_id, passwords.hash_password(password))
        self.repository.delete_user_sessions(user_id)

    def disable_user(self, user_id: int) -> bool:
        """Disable the account (its sessions end, its logins are refused)."""
        return self.repository.disable_user(user_id)

    # --- roles -------------------------------------------------------------------------
    def _check_grant(self, actor_role: str | None, granted: str, current: str | None) -> None:
        """Refuse unless ``actor_role`` may manage members, grant ``granted`` and take away
        ``current``; None is the operator."""
        if granted not in {r.value for r in UserRole}:
            raise NotAllowed(f"unknown role {granted!r}: use owner, admin, member or viewer")
        if actor_role is None:
            return
        if Permission.MEMBERS_WRITE not in permissions_of(actor_role):
            raise NotAllowed("only admins and owners manage members")
        for role in (granted, current):
            if role is not None and not may_grant(actor_role, role):
                raise NotAllowed(f"a {actor_role} cannot grant or change the {role} role")

    def _actor_role(self, actor: int | None, organisation_id: int) -> str | None:
        if actor is None:
            return None
        role = self.repository.organisation_role(organisation_id, actor)
        if role is None:
            raise NotAllowed("you are not a member of this organisation")
        return role

    def set_role(self, actor: int | None, organisation_id: int, user_id: int, role: str) -> None:
        """Add ``user_id`` to the organisation or change its role there; ``LastOwner``
        when that would demote the last owner."""
        actor_role = self._actor_role(actor, organisation_id)
        current = self.repository.organisation_role(organisation_id, user_id)
        self._check_grant(actor_role, role, current)
        self.repository.add_member(organisation_id, user_id, role)

    def remove_member(self, actor: int | None, organisation_id: int, user_id: int) -> bool:
        """Remove a member from this organisation (and its projects) only; anyone may
        leave, except the last owner."""
        current = self.repository.organisation_role(organisation_id, user_id)
        if actor != user_id:
            actor_role = self._actor_role(actor, organisation_id)
            self._check_grant(actor_role, current or UserRole.VIEWER, None)
        return self.repository.remove_member(organisation_id, user_id)

    def set_project_role(self, actor: int | None, project_name: str, user_id: int, role: str | None) -> None:
        """Give ``user_id`` ``role`` in one project (None: drop the override)."""
        target = self.repository.project_organisation(project_name)
        if target is None:
            raise LookupError(project_name)
        project_id, _org = target
        current = self.repository.access(user_id, project_name)
        actor_role = None
        if actor is not None:
            access = self.repository.access(actor, project_name)
            if access is None:
                raise NotAllowed("you have no access to this project")
            actor_role = access.role
        self._check_grant(actor_role, role or UserRole.VIEWER, None if current is None else current.role)
        if role is None:
            self.repository.remove_project_role(project_id, user_id)
        else:
            self.repository.set_project_role(project_id, user_id, role)

    # --- invitations -------------------------------------------------------------------
    def invite(
        self, actor: int | None, organisation: Organisation, email: str, role: str, project: str | None = None
    ) -> tuple[str, Invitation]:
        """An invitation (its token, returned once): the inviter needs ``members:write``
        where it invites to and may not invite above its own role."""
        if not valid_email(normalise_email(email)):
            raise PasswordRejected(["enter a valid e-mail address"])
        project_id = None
        if project is not None:
            target = self.repository.project_organisation(project)
            if target is None or target[1] != organisation.id:
                raise LookupError(f"no project {project!r} in organisation {organisation.name!r}")
            project_id = target[0]
        actor_role = None
        if actor is not None:
            access = None if project is None else self.repository.access(actor, project)
            actor_role = access.role if access is not None else self._actor_role(actor, organisation.id)
        self._check_grant(actor_role, role, None)
        return self.repository.create_invitation(
            organisation.id, normalise_email(email), role, project_id=project_id, invited_by_user_id=actor
        )

    def accept_invitation(
        self,
        token: str,
        *,
        user_id: int | None = None,
        display_name: str = "",
        password: str = "",
    ) -> User:
        """Use an invitation: a logged-in ``user_id`` just gains the role; otherwise a new
        account is made for the invited address with ``display_name`` and ``password``."""
        now = self._clock()
        if user_id is not None:
            user = self.repository.user_by_id(user_id)
            if user is None:
                raise InvitationInvalid("log in again to accept this invitation")
            self.repository.accept_invitation(token, user, now)
            return user
        found = self.repository.pending_invitation(token, now)
        if found is None:
            raise InvitationInvalid("this invitation is unknown, used, revoked or expired")
        if self.repository.user_by_email(found.email) is not None:
            raise InvitationInvalid(f"an account for {found.email} exists: log in to accept this invitation")
        user = self.create_user(found.email, display_name, password)
        self.repository.accept_invitation(token, user, now)
        return user
