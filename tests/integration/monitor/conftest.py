"""Fixtures of the monitoring integration tests: an app whose worker the test drives."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.conftest import new_key

from watchkeep.api.app import create_app
from watchkeep.api.services import Services
from watchkeep.config import Settings
from watchkeep.monitor.synthetic import Traffic, generate, write
from watchkeep.store.projects import ProjectRepository

NS = 1_000_000_000


@dataclass
class MonitorApi:
    """An app (worker loop not started: tests call ``run_once``) and an admin key."""

    app: FastAPI
    client: TestClient
    key: str
    project_id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def services(self) -> Services:
        svc: Services = self.app.state.services
        return svc

    def fill(self, n: int, start_ns: int, end_ns: int, traffic: Traffic | None = None, seed: int = 0) -> None:
        """Store ``n`` generated LLM calls of this project in [start, end)."""
        write(
            self.services.engine, generate(self.project_id, n, start_ns, end_ns, traffic or Traffic(), seed)
        )


@pytest.fixture
def mon(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    quiet = settings.model_copy(update={"worker_enabled": False})
    app = create_app(quiet)
    project = f"mon-{uuid.uuid4().hex[:10]}"
    key = new_key(database_url, "admin", project)
    with TestClient(app) as client:
        svc: Services = app.state.services
        project_id = ProjectRepository(svc.engine).get_or_create(project).id
        yield MonitorApi(app, client, key, project_id)


@pytest.fixture
def filler(mon: MonitorApi) -> Callable[..., None]:
    return mon.fill
