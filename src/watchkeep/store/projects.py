"""Repository for projects and their API keys.

Keys are minted here (only their prefix and digest are stored) by the CLI, a project
admin through ``/api/v1/keys`` or the operator through ``/api/v1/projects``. Every
look-up that serves a tenant takes the project's id, so one project never reads or
revokes another's keys. A key's state is derived, never stored: revoked when it has a
revocation time, expired when its expiry is past, active otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, Engine, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from watchkeep.store.clock import now_ns
from watchkeep.store.key_material import StoredKey, new_key
from watchkeep.store.people_repository import PeopleRepository
from watchkeep.store.tables import api_keys, projects

# Names the API and ``watchkeep projects create`` accept: they appear in URLs and labels.
PROJECT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
KeyState = Literal["active", "revoked", "expired"]


class ProjectExists(Exception):
    """A project of that name exists already."""


class KeyQuotaExceeded(Exception):
    """The project holds as many active keys as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the project already has {limit} active keys (the limit); revoke some first")
        self.message = str(self)


def valid_project_name(name: str) -> bool:
    """Whether ``name`` is one the API and the CLI create projects under."""
    return re.fullmatch(PROJECT_NAME, name) is not None


def key_state(revoked_at: int | None, expires_at: int | None, now: int) -> KeyState:
    """What a key is at ``now``: revocation wins over expiry."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


@dataclass(frozen=True, slots=True)
class Project:
    """A tenant: every span, score and key belongs to exactly one."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    """A project as listed to the operator."""

    id: int
    name: str
    created_at_unix_nano: int
    keys: int
    active_keys: int


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed to administrators (never the secret, never its digest)."""

    id: int
    project: str
    prefix: str
    role: str
    name: str | None
    created_at_unix_nano: int
    revoked: bool
    expires_at_unix_nano: int | None = None
    revoked_at_unix_nano: int | None = None

    def state(self, now: int | None = None) -> KeyState:
        """Active, revoked or expired at ``now`` (default: the current time)."""
        return key_state(
            self.revoked_at_unix_nano, self.expires_at_unix_nano, now_ns() if now is None else now
        )


def _active(now: int) -> ColumnElement[bool]:
    return and_(
        api_keys.c.revoked_at_unix_nano.is_(None),
        or_(api_keys.c.expires_at_unix_nano.is_(None), api_keys.c.expires_at_unix_nano > now),
    )


class ProjectRepository:
    """Creates projects and keys, and answers key look-ups for authentication."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find(self, name: str) -> Project | None:
        """The project called ``name``, if there is one."""
        with self._engine.connect() as conn:
            row = conn.execute(select(projects.c.id).where(projects.c.name == name)).first()
        return None if row is None else Project(id=int(row.id), name=name)

    def create(self, name: str, organisation: str | None = None) -> Project:
        """A new project called ``name`` in ``organisation`` (default: the ``default``
        organisation, created on first need); ``ProjectExists`` if one has that name,
        ``LookupError`` when the organisation does not exist."""
        people = PeopleRepository(self._engine)
        org = people.default_organisation() if organisation is None else people.organisation(organisation)
        if org is None:
            raise LookupError(f"no organisation named {organisation!r}")
        try:
            with self._engine.begin() as conn:
                pid = conn.execute(
                    insert(projects).values(name=name, created_at_unix_nano=now_ns(), organisation_id=org.id)
                ).inserted_primary_key
        except IntegrityError:
            raise ProjectExists(name) from None
        assert pid is not None
        return Project(id=int(pid[0]), name=name)

    def get_or_create(self, name: str) -> Project:
        """The project called ``name``, created if it does not exist yet."""
        found = self.find(name)
        if found is not None:
            return found
        try:
            return self.create(name)
        except ProjectExists:  # created concurrently
            found = self.find(name)
            assert found is not None
            return found

    def list_projects(self, limit: int = 1000, after_id: int = 0) -> list[ProjectInfo]:
        """Projects by id (ascending, after ``after_id``), at most ``limit``, with key counts."""
        now = now_ns()
        counts = (
            select(
                api_keys.c.project_id,
                func.count().label("n_keys"),
                func.sum(case((_active(now), 1), else_=0)).label("active"),
            )
            .group_by(api_keys.c.project_id)
            .subquery()
        )
        query = (
            select(projects, counts.c.n_keys, counts.c.active)
            .outerjoin(counts, counts.c.project_id == projects.c.id)
            .where(projects.c.id > after_id)
            .order_by(projects.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            ProjectInfo(
                id=int(r.id),
                name=str(r.name),
                created_at_unix_nano=int(r.created_at_unix_nano),
                keys=int(r.n_keys or 0),
                active_keys=int(r.active or 0),
            )
            for r in rows
        ]

    def create_key(
        self, project_name: str, role: str, name: str | None = None, expires_at_unix_nano: int | None = None
    ) -> str:
        """A new key for ``project_name`` (created if needed); the secret is returned once."""
        key, _info = self.issue_key(self.get_or_create(project_name), role, name, expires_at_unix_nano)
        return key

    def issue_key(
        self,
        project: Project,
        role: str,
        name: str | None = None,
        expires_at_unix_nano: int | None = None,
        *,
        max_active: int | None = None,
    ) -> tuple[str, KeyInfo]:
        """A new key of ``project`` as ``(secret, info)``; the secret is not kept.

        With ``max_active``, ``KeyQuotaExceeded`` when the project already holds that many
        active keys (counted in the same transaction as the insert)."""
        key, prefix, digest = new_key()
        now = now_ns()
        with self._engine.begin() as conn:
            if max_active is not None:
                active = conn.execute(
                    select(func.count())
                    .select_from(api_keys)
                    .where(api_keys.c.project_id == project.id, _active(now))
                ).scalar_one()
                if active >= max_active:
                    raise KeyQuotaExceeded(max_active)
            kid = conn.execute(
                insert(api_keys).values(
                    project_id=project.id,
                    prefix=prefix,
                    key_hash=digest,
                    role=role,
                    name=name,
                    created_at_unix_nano=now,
                    expires_at_unix_nano=expires_at_unix_nano,
                )
            ).inserted_primary_key
        assert kid is not None
        info = KeyInfo(
            id=int(kid[0]),
            project=project.name,
            prefix=prefix,
            role=role,
            name=name,
            created_at_unix_nano=now,
            revoked=False,
            expires_at_unix_nano=expires_at_unix_nano,
        )
        return key, info

    def lookup_key(self, prefix: str) -> StoredKey | None:
        """The stored key with ``prefix``, for verification."""
        query = (
            select(
                api_keys.c.id,
                api_keys.c.project_id,
                projects.c.name,
                api_keys.c.key_hash,
                api_keys.c.role,
                api_keys.c.revoked_at_unix_nano,
                api_keys.c.expires_at_unix_nano,
            )
            .join(projects, projects.c.id == api_keys.c.project_id)
            .where(api_keys.c.prefix == prefix)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredKey(
            key_id=int(row.id),
            project_id=int(row.project_id),
            project_name=str(row.name),
            key_hash=str(row.key_hash),
            role=str(row.role),
            revoked=row.revoked_at_unix_nano is not None,
            expires_at_unix_nano=row.expires_at_unix_nano,
        )

    def list_keys(
        self,
        project_name: str | None = None,
        *,
        project_id: int | None = None,
        limit: int | None = None,
        before_id: int | None = None,
    ) -> list[KeyInfo]:
        """Keys, optionally of one project (by name or id), newest first, optionally paged."""
        query = (
            select(api_keys, projects.c.name.label("project"))
            .join(projects, projects.c.id == api_keys.c.project_id)
            .order_by(api_keys.c.id.desc())
        )
        if project_name is not None:
            query = query.where(projects.c.name == project_name)
        if project_id is not None:
            query = query.where(api_keys.c.project_id == project_id)
        if before_id is not None:
            query = query.where(api_keys.c.id < before_id)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            KeyInfo(
                id=int(r.id),
                project=str(r.project),
                prefix=str(r.prefix),
                role=str(r.role),
                name=r.name,
                created_at_unix_nano=int(r.created_at_unix_nano),
                revoked=r.revoked_at_unix_nano is not None,
                expires_at_unix_nano=r.expires_at_unix_nano,
                revoked_at_unix_nano=r.revoked_at_unix_nano,
            )
            for r in rows
        ]

    def revoke_key(self, prefix: str, project_id: int | None = None) -> bool:
        """Revoke the key with ``prefix`` (only within ``project_id`` when given); False when
        there is no such unrevoked key."""
        where = [api_keys.c.prefix == prefix, api_keys.c.revoked_at_unix_nano.is_(None)]
        if project_id is not None:
            where.append(api_keys.c.project_id == project_id)
        with self._engine.begin() as conn:
            result = conn.execute(update(api_keys).where(*where).values(revoked_at_unix_nano=now_ns()))
        return result.rowcount > 0
