"""People for tests: a service on a test database with a clock the test moves, and
users, organisations and projects with unique names (the database is shared)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, insert, select

from watchkeep.security.people import PeopleService
from watchkeep.store.engine import make_engine
from watchkeep.store.people_repository import Organisation, PeopleRepository, User
from watchkeep.store.projects import Project, ProjectRepository
from watchkeep.store.tables import api_keys, memberships, organisations, project_memberships, projects, users

PASSWORD = "correct horse battery staple"


@dataclass
class Clock:
    """A wall clock that only moves when told to."""

    now: int = field(default_factory=time.time_ns)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 10**9)


@dataclass
class People:
    """A service, its repository and projects repository, and the clock they run on."""

    service: PeopleService
    repo: PeopleRepository
    engine: Engine
    projects: ProjectRepository
    clock: Clock

    def user(self, prefix: str = "u", password: str = PASSWORD) -> User:
        return self.service.create_user(
            f"{prefix}-{uuid.uuid4().hex[:8]}@example.com", prefix.title(), password
        )

    def organisation(self, prefix: str = "org") -> Organisation:
        return self.repo.create_organisation(f"{prefix}-{uuid.uuid4().hex[:8]}")

    def project(self, organisation: Organisation, prefix: str = "p") -> Project:
        return self.projects.create(f"{prefix}-{uuid.uuid4().hex[:8]}", organisation.name)


@contextmanager
def people_on(
    database_url: str, *, lockout_after: int = 3, lockout_minutes: float = 10.0
) -> Iterator[People]:
    """A ``People`` on ``database_url`` (its engine disposed afterwards)."""
    engine = make_engine(database_url)
    clock = Clock()
    repo = PeopleRepository(engine)
    service = PeopleService(
        repo, session_hours=2.0, lockout_after=lockout_after, lockout_minutes=lockout_minutes, clock=clock
    )
    try:
        yield People(service, repo, engine, ProjectRepository(engine), clock)
    finally:
        engine.dispose()


# --- direct inserts (comments and mentions tests): no people service in the way ----------


def insert_user(engine: Engine, email: str, *, disabled: bool = False) -> int:
    """A user who cannot log in by password (display name: the e-mail's local part); its id."""
    now = time.time_ns()
    values = {"email": email.lower(), "display_name": email.split("@", 1)[0], "created_at_unix_nano": now}
    with engine.begin() as conn:
        key = conn.execute(
            insert(users).values(failed_logins=0, disabled_at_unix_nano=now if disabled else None, **values)
        ).inserted_primary_key
    assert key is not None
    return int(key[0])


def insert_organisation(engine: Engine) -> int:
    """A fresh, uniquely named organisation; its id."""
    name = f"org-{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        key = conn.execute(insert(organisations).values(name=name, created_at_unix_nano=time.time_ns()))
    assert key.inserted_primary_key is not None
    return int(key.inserted_primary_key[0])


def add_membership(
    engine: Engine,
    user_id: int,
    *,
    organisation_id: int | None = None,
    project_id: int | None = None,
    role: str = "member",
) -> None:
    """Make ``user_id`` a member of an organisation or (exactly one of the two) a project."""
    assert (organisation_id is None) != (project_id is None), "name an organisation or a project"
    values = {"user_id": user_id, "role": role, "created_at_unix_nano": time.time_ns()}
    with engine.begin() as conn:
        if organisation_id is not None:
            conn.execute(insert(memberships).values(organisation_id=organisation_id, **values))
        else:
            conn.execute(insert(project_memberships).values(project_id=project_id, **values))


def project_of_key(engine: Engine, key: str) -> tuple[int, int]:
    """The (project id, organisation id) of an API key."""
    query = (
        select(projects.c.id, projects.c.organisation_id)
        .join(api_keys, api_keys.c.project_id == projects.c.id)
        .where(api_keys.c.prefix == key[:15])
    )
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return int(row.id), int(row.organisation_id)
