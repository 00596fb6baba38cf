"""The canary worker's automatic alias moves land in the audit log (both databases)."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.integration.registry.test_canary_worker_store import _looks, _project, _start
from watchkeep.registry.canary import CanaryPolicy, MetricRule
from watchkeep.registry.canary_repository import CanaryRepository
from watchkeep.registry.canary_worker import CanaryWorker
from watchkeep.registry.repository import RegistryRepository
from watchkeep.security.audit import AuditLog
from watchkeep.store.engine import make_engine


def test_an_automatic_rollback_is_audited(database_url: str) -> None:
    engine: Engine = make_engine(database_url)
    try:
        project = _project(engine)
        registry = RegistryRepository(engine)
        for i in range(2):
            registry.register_model(project, "m", backend="mock", params={"temperature": i / 10})
        registry.move_alias(project, "model", "m", "production", 1, actor="t")
        registry.move_alias(project, "model", "m", "canary", 2, actor="t")
        repo, log = CanaryRepository(engine), AuditLog(engine)
        worker = CanaryWorker(engine, registry, repo, interval_s=0, audit=log)
        canary = _start(
            repo, project, CanaryPolicy((MetricRule("error_rate", tolerance=0.02),), min_samples=100)
        )
        assert _looks(engine, worker, canary, project, 30, cand_errors=20)[-1] == "rollback"
        (entry,) = log.entries(project_id=project)
        assert (entry.actor, entry.action, entry.target) == (
            "canary-worker",
            "alias.auto_rollback",
            "model:m@canary",
        )
        assert entry.after == {"version": 1, "canary": canary.id}
        assert entry.detail is not None
        assert "error_rate" in entry.detail
    finally:
        engine.dispose()
