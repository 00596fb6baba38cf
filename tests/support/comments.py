"""A project with a stored trace and a key of every role, for the comments and activity tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from tests.support.apps import Api
from tests.support.keys import new_key
from tests.support.people import project_of_key
from tests.support.tenant import seed_trace, unique

ROLES = ("admin", "member", "ingest", "viewer")


@dataclass
class Project:
    """One project of the shared app: its keys' headers by role, its trace and ids."""

    api: Api
    name: str
    auth: dict[str, dict[str, str]]
    trace: str
    id: int
    organisation_id: int

    @property
    def engine(self) -> Engine:
        engine: Engine = self.api.app.state.services.engine
        return engine

    def header(self, role: str = "member") -> dict[str, str]:
        """A fresh key of ``role`` (another author than the project's first key of it)."""
        return {"Authorization": f"Bearer {new_key(self.api.database_url, role, self.name)}"}

    def comment(self, body: str, role: str = "member", **extra: Any) -> Any:
        payload = {"target_kind": "trace", "target_id": self.trace, "body": body, **extra}
        return self.api.client.post("/api/v1/comments", json=payload, headers=self.auth[role])

    def comments(self, role: str = "viewer", **params: Any) -> Any:
        query = {"target_kind": "trace", "target_id": self.trace, **params}
        return self.api.client.get("/api/v1/comments", params=query, headers=self.auth[role])


def new_project(api: Api) -> Project:
    """A fresh project (in the ``default`` organisation) holding one stored trace."""
    name = unique("cm")
    keys = {role: new_key(api.database_url, role, name) for role in ROLES}
    auth = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    trace = seed_trace(api.client, auth["admin"])[0][0]
    project_id, organisation_id = project_of_key(api.app.state.services.engine, keys["admin"])
    return Project(api, name, auth, trace, project_id, organisation_id)
