"""Set-up for the datasets and eval-runs API tests: a key's project and stored runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.eval_results import run_of
from tests.support.people import project_of_key
from tests.support.tenant import unique
from watchkeep.evals.run_repository import RunInfo
from watchkeep.store.engine import make_engine


def project_id_of(database_url: str, key: str) -> int:
    """The project id of an API key."""
    engine = make_engine(database_url)
    try:
        return project_of_key(engine, key)[0]
    finally:
        engine.dispose()


def stored_run(
    app: FastAPI, project_id: int, outcomes: Sequence[bool], *, name: str = "run", seed: int = 7
) -> RunInfo:
    """A completed run of ``outcomes`` (item ``i`` passed or not), written by the repository
    the runner uses."""
    repo = app.state.services.eval_runs
    run = repo.create_run(
        project_id,
        name=name,
        dataset_version_id=None,
        target={"kind": "python", "name": "t"},
        target_version="t@1",
        config={"name": name},
        config_hash=f"{name}-{seed}-{len(outcomes)}",
        seed=seed,
        cases_total=len(outcomes),
    )
    repo.add_results(project_id, run.id, run_of(outcomes))
    finished: RunInfo = repo.finish_run(project_id, run.id, status="completed", aggregates={"pass_rate": 0.5})
    return finished


class Stage(Protocol):
    """What the authorization matrix's tenant offers: its app client and admin headers."""

    client: TestClient
    admin: dict[str, str]

    def make(self, method: str, url: str, **kwargs: Any) -> Any: ...

    def trace(self) -> str: ...


def stage_dataset(t: Stage) -> str:
    """A fresh one-version dataset of the tenant's project, made by its admin key."""
    name = unique("ds")
    t.make("POST", f"/api/v1/datasets/{name}/versions", json={"items": [{"id": "a", "input": "hi"}]})
    return name


def stage_run(t: Stage) -> int:
    """A stored run of the tenant's project."""
    app: FastAPI = t.client.app  # type: ignore[assignment]
    key = t.admin["Authorization"].removeprefix("Bearer ")
    project_id = project_of_key(app.state.services.engine, key)[0]
    return stored_run(app, project_id, [True, False], name=unique("run")).id


def stage_feedback(t: Stage) -> dict[str, Any]:
    """A from-feedback body whose score name labels the tenant's trace."""
    name = unique("fb")
    t.make("POST", "/api/v1/scores", json={"name": name, "value": "x", "label": "y", "trace_id": t.trace()})
    return {"score_name": name}
