"""API keys for tests: each test makes its own project, which is how tenants are isolated."""

from __future__ import annotations

import uuid

from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository


def new_key(database_url: str, role: str = "member", project: str | None = None) -> str:
    """A key for a fresh (or the named) project."""
    engine = make_engine(database_url)
    try:
        return ProjectRepository(engine).create_key(project or f"p-{uuid.uuid4().hex[:10]}", role)
    finally:
        engine.dispose()
