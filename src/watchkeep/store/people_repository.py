"""People: users, organisations, memberships and who may open which project.

A user's role in a project is its project membership's role when it has one, else its
organisation membership's role in the project's organisation (``projects.organisation_id``);
every tenant look-up takes the user's id, so nobody sees a project of an organisation it
is not in. Console sessions and invitations are in ``store.people_tokens``; this class
exposes them too, so callers hold one repository. Passwords arrive here already hashed
(``security.passwords``): the store never sees a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from watchkeep.store.clock import now_ns
from watchkeep.store.people_grants import higher_role, set_membership, set_project_membership
from watchkeep.store.people_tokens import PeopleTokens, SessionUser, User
from watchkeep.store.tables import memberships, organisations, project_memberships, projects, users

__all__ = [
    "DEFAULT_ORGANISATION",
    "Credentials",
    "LastOwner",
    "Member",
    "Organisation",
    "OrganisationExists",
    "PeopleRepository",
    "ProjectAccess",
    "SessionUser",
    "User",
    "UserExists",
    "higher_role",
    "normalise_email",
    "valid_email",
]

DEFAULT_ORGANISATION = "default"
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class UserExists(Exception):
    """A user with that e-mail address exists already."""


class OrganisationExists(Exception):
    """An organisation of that name exists already."""


class LastOwner(Exception):
    """The change would leave an organisation without an owner."""

    def __init__(self) -> None:
        super().__init__("an organisation keeps at least one owner: make someone else owner first")
        self.message = str(self)


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    """A project a user may open, with the user's effective role in it."""

    project_id: int
    project_name: str
    organisation_id: int
    organisation_name: str
    role: str


@dataclass(frozen=True, slots=True)
class Organisation:
    """A group of people and projects."""

    id: int
    name: str
    created_at_unix_nano: int


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a login checks of a user."""

    user: User
    password_hash: str | None
    disabled: bool
    failed_logins: int
    locked_until_unix_nano: int | None


@dataclass(frozen=True, slots=True)
class Member:
    """A user as listed in an organisation or project, with its (effective) role."""

    user: User
    role: str | None
    disabled: bool
    locked_until_unix_nano: int | None = None


def normalise_email(email: str) -> str:
    """The stored form of an address: trimmed and lower-cased."""
    return email.strip().lower()


def valid_email(email: str) -> bool:
    """Whether ``email`` looks like an address (one @, a dotted domain, at most 320)."""
    return len(email) <= 320 and EMAIL.fullmatch(email) is not None


def _user(row: Row[Any]) -> User:
    return User(id=int(row.id), email=str(row.email), display_name=str(row.display_name))


class PeopleRepository(PeopleTokens):
    """Reads and writes of people; every tenant lookup takes the user's id."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)

    # --- organisations -----------------------------------------------------------------
    def create_organisation(self, name: str) -> Organisation:
        """A new organisation; ``OrganisationExists`` when the name is taken."""
        now = now_ns()
        try:
            with self._engine.begin() as conn:
                oid = conn.execute(
                    insert(organisations).values(name=name, created_at_unix_nano=now)
                ).inserted_primary_key
        except IntegrityError:
            raise OrganisationExists(name) from None
        assert oid is not None
        return Organisation(id=int(oid[0]), name=name, created_at_unix_nano=now)

    def organisation(self, name: str) -> Organisation | None:
        """The organisation called ``name``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(organisations).where(organisations.c.name == name)).first()
        return (
            None if row is None else Organisation(int(row.id), str(row.name), int(row.created_at_unix_nano))
        )

    def organisation_by_id(self, organisation_id: int) -> Organisation | None:
        """The organisation with ``organisation_id``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(organisations).where(organisations.c.id == organisation_id)).first()
        return (
            None if row is None else Organisation(int(row.id), str(row.name), int(row.created_at_unix_nano))
        )

    def organisations(self, limit: int = 1000) -> list[Organisation]:
        """Organisations by name (at most ``limit``)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(organisations).order_by(organisations.c.name).limit(limit)).all()
        return [Organisation(int(r.id), str(r.name), int(r.created_at_unix_nano)) for r in rows]

    def default_organisation(self) -> Organisation:
        """The ``default`` organisation, created on first need (projects made without one
        go there)."""
        found = self.organisation(DEFAULT_ORGANISATION)
        if found is not None:
            return found
        try:
            return self.create_organisation(DEFAULT_ORGANISATION)
        except OrganisationExists:  # created concurrently
            found = self.organisation(DEFAULT_ORGANISATION)
            assert found is not None
            return found

    # --- users -------------------------------------------------------------------------
    def create_user(self, email: str, display_name: str, password_hash: str | None) -> User:
        """A new user (e-mail stored lower-cased); ``UserExists`` when the address is taken."""
        email = normalise_email(email)
        try:
            with self._engine.begin() as conn:
                uid = conn.execute(
                    insert(users).values(
                        email=email,
                        display_name=display_name,
                        password_hash=password_hash,
                        created_at_unix_nano=now_ns(),
                        failed_logins=0,
                    )
                ).inserted_primary_key
        except IntegrityError:
            raise UserExists(email) from None
        assert uid is not None
        return User(id=int(uid[0]), email=email, display_name=display_name)

    def user_by_email(self, email: str) -> User | None:
        """The user with ``email`` (any case)."""
        found = self.credentials(email)
        return None if found is None else found.user

    def user_by_id(self, user_id: int) -> User | None:
        """The user with ``user_id``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def credentials(self, email: str) -> Credentials | None:
        """What a login needs to know of the user with ``email``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.email == normalise_email(email))).first()
        if row is None:
            return None
        return Credentials(
            user=_user(row),
            password_hash=row.password_hash,
            disabled=row.disabled_at_unix_nano is not None,
            failed_logins=int(row.failed_logins),
            locked_until_unix_nano=row.locked_until_unix_nano,
        )

    def users(self, limit: int = 10_000) -> list[Member]:
        """Every user by e-mail address (no role: see ``members``)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.email).limit(limit)).all()
        return [
            Member(_user(r), None, r.disabled_at_unix_nano is not None, r.locked_until_unix_nano)
            for r in rows
        ]

    def disable_user(self, user_id: int) -> bool:
        """Disable the account and end its sessions; False when there is no such user."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(users).where(users.c.id == user_id).values(disabled_at_unix_nano=now_ns())
            ).rowcount
        self.delete_user_sessions(user_id)
        return bool(done)

    def set_password_hash(self, user_id: int, password_hash: str) -> bool:
        """Store a new hash (the lock and failure count are cleared); False for no user."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, failed_logins=0, locked_until_unix_nano=None)
            ).rowcount
        return bool(done)

    # --- lockout -----------------------------------------------------------------------
    def record_failed_login(self, user_id: int, *, lock_after: int, lock_ns: int, now: int) -> None:
        """Count a failed login in one statement (concurrent failures all count); the
        ``lock_after``-th locks the account for ``lock_ns`` and starts the count afresh."""
        reached = users.c.failed_logins + 1 >= lock_after
        with self._engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(
                    failed_logins=case((reached, 0), else_=users.c.failed_logins + 1),
                    locked_until_unix_nano=case(
                        (reached, now + lock_ns), else_=users.c.locked_until_unix_nano
                    ),
                )
            )

    def record_login(self, user_id: int, now: int) -> None:
        """A successful login: the failure count and any lock are cleared."""
        with self._engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(failed_logins=0, locked_until_unix_nano=None, last_login_at_unix_nano=now)
            )

    def set_locked_until(self, user_id: int, locked_until_unix_nano: int | None) -> None:
        """Lock (or unlock, with None) an account until a time."""
        with self._engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(locked_until_unix_nano=locked_until_unix_nano)
            )

    # --- memberships -------------------------------------------------------------------
    def organisation_role(self, organisation_id: int, user_id: int) -> str | None:
        """The user's role in the organisation, None when it is no member."""
        with self._engine.connect() as conn:
            return conn.execute(
                select(memberships.c.role).where(
                    memberships.c.organisation_id == organisation_id, memberships.c.user_id == user_id
                )
            ).scalar()

    def add_member(self, organisation_id: int, user_id: int, role: str) -> None:
        """Give the user ``role`` in the organisation (an owner is only demoted while
        another owner remains: ``LastOwner``)."""
        with self._engine.begin() as conn:
            if role != "owner":
                self._guard_last_owner(conn, organisation_id, user_id)
            set_membership(conn, organisation_id, user_id, role)

    def remove_member(self, organisation_id: int, user_id: int) -> bool:
        """Remove the user from the organisation and from the organisation's projects (its
        other organisations are untouched); ``LastOwner`` for the last owner."""
        in_org = select(projects.c.id).where(projects.c.organisation_id == organisation_id)
        with self._engine.begin() as conn:
            self._guard_last_owner(conn, organisation_id, user_id)
            done = conn.execute(
                delete(memberships).where(
                    memberships.c.organisation_id == organisation_id, memberships.c.user_id == user_id
                )
            ).rowcount
            conn.execute(
                delete(project_memberships).where(
                    project_memberships.c.user_id == user_id, project_memberships.c.project_id.in_(in_org)
                )
            )
        return bool(done)

    @staticmethod
    def _guard_last_owner(conn: Connection, organisation_id: int, user_id: int) -> None:
        owners = conn.execute(
            select(memberships.c.user_id).where(
                memberships.c.organisation_id == organisation_id, memberships.c.role == "owner"
            )
        ).scalars()
        if list(owners) == [user_id]:
            raise LastOwner

    def set_project_role(self, project_id: int, user_id: int, role: str) -> None:
        """Give the user ``role`` in one project (over its organisation role)."""
        with self._engine.begin() as conn:
            set_project_membership(conn, project_id, user_id, role)

    def remove_project_role(self, project_id: int, user_id: int) -> bool:
        """Drop the user's project role (its organisation role applies again)."""
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    delete(project_memberships).where(
                        project_memberships.c.project_id == project_id,
                        project_memberships.c.user_id == user_id,
                    )
                ).rowcount
            )

    def members(self, organisation_id: int, limit: int = 10_000) -> list[Member]:
        """The organisation's members with their roles, by e-mail address."""
        query = (
            select(users, memberships.c.role)
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.organisation_id == organisation_id)
            .order_by(users.c.email)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Member(_user(r), str(r.role), r.disabled_at_unix_nano is not None, r.locked_until_unix_nano)
            for r in rows
        ]

    def project_members(self, project_id: int, limit: int = 10_000) -> list[Member]:
        """Who may open the project, with each one's effective role, by e-mail address."""
        org = memberships.alias("m")
        pm = project_memberships.alias("pm")
        project = select(projects.c.organisation_id).where(projects.c.id == project_id).scalar_subquery()
        query = (
            select(users, func.coalesce(pm.c.role, org.c.role).label("role"))
            .select_from(users)
            .outerjoin(org, and_(org.c.user_id == users.c.id, org.c.organisation_id == project))
            .outerjoin(pm, and_(pm.c.user_id == users.c.id, pm.c.project_id == project_id))
            .where(or_(org.c.id.is_not(None), pm.c.id.is_not(None)))
            .order_by(users.c.email)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Member(_user(r), str(r.role), r.disabled_at_unix_nano is not None, r.locked_until_unix_nano)
            for r in rows
        ]

    # --- access ------------------------------------------------------------------------
    def _access_query(self, user_id: int) -> Select[Any]:
        org = memberships.alias("m")
        pm = project_memberships.alias("pm")
        return (
            select(
                projects.c.id,
                projects.c.name,
                organisations.c.id.label("organisation_id"),
                organisations.c.name.label("organisation_name"),
                func.coalesce(pm.c.role, org.c.role).label("role"),
            )
            .join(organisations, organisations.c.id == projects.c.organisation_id)
            .outerjoin(
                org, and_(org.c.organisation_id == projects.c.organisation_id, org.c.user_id == user_id)
            )
            .outerjoin(pm, and_(pm.c.project_id == projects.c.id, pm.c.user_id == user_id))
            .where(or_(org.c.id.is_not(None), pm.c.id.is_not(None)))
        )

    @staticmethod
    def _project_access(row: Row[Any]) -> ProjectAccess:
        return ProjectAccess(
            project_id=int(row.id),
            project_name=str(row.name),
            organisation_id=int(row.organisation_id),
            organisation_name=str(row.organisation_name),
            role=str(row.role),
        )

    def projects_for(self, user_id: int) -> list[ProjectAccess]:
        """The projects ``user_id`` may open, by organisation then project name."""
        query = self._access_query(user_id).order_by(organisations.c.name, projects.c.name).limit(10_000)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._project_access(r) for r in rows]

    def access(self, user_id: int, project_name: str) -> ProjectAccess | None:
        """The user's access to ``project_name``; None when it has none."""
        query = self._access_query(user_id).where(projects.c.name == project_name)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._project_access(row)

    def project_organisation(self, project_name: str) -> tuple[int, int] | None:
        """``(project id, organisation id)`` of a project, for the operator's commands."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(projects.c.id, projects.c.organisation_id).where(projects.c.name == project_name)
            ).first()
        if row is None or row.organisation_id is None:
            return None
        return int(row.id), int(row.organisation_id)
