"""Repository for projects and their API keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from watchkeep.store.clock import now_ns
from watchkeep.store.key_material import StoredKey, new_key
from watchkeep.store.tables import api_keys, projects


@dataclass(frozen=True, slots=True)
class Project:
    """A tenant: every span, score and key belongs to exactly one."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed to administrators (never the secret)."""

    id: int
    project: str
    prefix: str
    role: str
    name: str | None
    created_at_unix_nano: int
    revoked: bool


class ProjectRepository:
    """Creates projects and keys, and answers key look-ups for authentication."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get_or_create(self, name: str) -> Project:
        """The project called ``name``, created if it does not exist yet."""
        with self._engine.begin() as conn:
            row = conn.execute(select(projects.c.id).where(projects.c.name == name)).first()
            if row is not None:
                return Project(id=int(row.id), name=name)
        try:
            with self._engine.begin() as conn:
                pid = conn.execute(
                    insert(projects).values(name=name, created_at_unix_nano=now_ns())
                ).inserted_primary_key
                assert pid is not None
                return Project(id=int(pid[0]), name=name)
        except IntegrityError:  # created concurrently
            with self._engine.begin() as conn:
                found = conn.execute(select(projects.c.id).where(projects.c.name == name)).one()
                return Project(id=int(found.id), name=name)

    def create_key(self, project_name: str, role: str, name: str | None = None) -> str:
        """A new key for ``project_name`` (created if needed); the secret is returned once."""
        project = self.get_or_create(project_name)
        key, prefix, digest = new_key()
        with self._engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    project_id=project.id,
                    prefix=prefix,
                    key_hash=digest,
                    role=role,
                    name=name,
                    created_at_unix_nano=now_ns(),
                )
            )
        return key

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
        )

    def list_keys(self, project_name: str | None = None) -> list[KeyInfo]:
        """Keys, optionally of one project, newest first."""
        query = (
            select(api_keys, projects.c.name.label("project"))
            .join(projects, projects.c.id == api_keys.c.project_id)
            .order_by(api_keys.c.id.desc())
        )
        if project_name is not None:
            query = query.where(projects.c.name == project_name)
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
            )
            for r in rows
        ]

    def revoke_key(self, prefix: str) -> bool:
        """Revoke the key with ``prefix``; False when there is none."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(api_keys)
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at_unix_nano.is_(None))
                .values(revoked_at_unix_nano=now_ns())
            )
        return result.rowcount > 0
