"""Console sessions for tests: a user with a role in a project, already logged in.

Rows are written straight to the tables (a session is a random token whose SHA-256 the
store keeps), so page tests do not depend on the login form; the login form has its own
tests. ``ConsoleUser.client`` wraps a TestClient with the session cookie and the CSRF
token every post needs.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from tests.support.people import add_membership
from watchkeep.store.engine import make_engine
from watchkeep.store.key_material import key_prefix
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.tables import projects, user_sessions, users

PASSWORD = "correct horse battery staple"
_HASH = PasswordHasher().hash(PASSWORD)


@dataclass
class ConsoleUser:
    """A logged-in user of one project."""

    user_id: int
    email: str
    project: str
    token: str
    csrf: str

    def use(self, client: TestClient) -> TestClient:
        """``client`` carrying this user's session cookie (and no other)."""
        client.cookies.clear()
        client.cookies.set("wk_session", self.token)
        return client

    def get(self, client: TestClient, path: str, **kwargs: Any) -> Any:
        return self.use(client).get(path, follow_redirects=False, **kwargs)

    def post(self, client: TestClient, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """A form post with the CSRF token (as a browser on this origin sends it)."""
        return self.use(client).post(
            path,
            data={"csrf_token": self.csrf, **(data or {})},
            follow_redirects=False,
            **kwargs,
        )


def project_of(database_url: str, key: str) -> str:
    """The name of the project an API key belongs to."""
    engine = make_engine(database_url)
    try:
        stored = ProjectRepository(engine).lookup_key(key_prefix(key))
        assert stored is not None
        return stored.project_name
    finally:
        engine.dispose()


def console_user(
    database_url: str, project: str, role: str = "member", email: str | None = None
) -> ConsoleUser:
    """A user with ``role`` in ``project`` (a project membership) and a live session."""
    engine = make_engine(database_url)
    now = time.time_ns()
    email = email or f"u-{uuid.uuid4().hex[:10]}@example.com"
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    try:
        with engine.connect() as conn:
            project_id = conn.execute(select(projects.c.id).where(projects.c.name == project)).scalar_one()
        with engine.begin() as conn:
            inserted = conn.execute(
                insert(users).values(
                    email=email.lower(),
                    display_name=email.split("@")[0],
                    password_hash=_HASH,
                    created_at_unix_nano=now,
                    failed_logins=0,
                )
            ).inserted_primary_key
            assert inserted is not None
            user_id = int(inserted[0])
            conn.execute(
                insert(user_sessions).values(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    user_id=user_id,
                    csrf_token=csrf,
                    created_at_unix_nano=now,
                    last_seen_at_unix_nano=now,
                    expires_at_unix_nano=now + 3600 * 1_000_000_000,
                )
            )
        add_membership(engine, user_id, project_id=project_id, role=role)
    finally:
        engine.dispose()
    return ConsoleUser(user_id, email.lower(), project, token, csrf)
