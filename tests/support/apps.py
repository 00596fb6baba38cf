"""An in-process app under test (FastAPI's TestClient), as the ``api`` fixture yields it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.keys import new_key


@dataclass
class Api:
    """An app under test with a key of a fresh project."""

    app: FastAPI
    client: TestClient
    key: str
    database_url: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def key_for(self, role: str = "member", project: str | None = None) -> str:
        return new_key(self.database_url, role, project)
