"""The FastAPI app factory: builds the services for one Settings and wires the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from watchkeep import __version__
from watchkeep.api.errors import install_error_handlers
from watchkeep.api.middleware import HttpMetrics, ObservabilityMiddleware
from watchkeep.api.routes import health, otlp, scores, traces
from watchkeep.api.services import Services
from watchkeep.config import Settings
from watchkeep.ingest.decode_pool import DecodePool, default_workers
from watchkeep.ingest.metrics import IngestMetrics
from watchkeep.ingest.service import IngestService
from watchkeep.ingest.writer import GroupCommitWriter
from watchkeep.security.keys import KeyVerifier
from watchkeep.store.engine import make_engine
from watchkeep.store.maintenance import StoreMaintenance
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.score_repository import ScoreRepository
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.trace_queries import TraceQueries

log = logging.getLogger(__name__)


def build_services(settings: Settings, registry: CollectorRegistry) -> Services:
    """Every long-lived object of a server, wired together (nothing started yet)."""
    url = settings.resolved_database_url()
    engine = make_engine(url, sqlite_synchronous=settings.sqlite_synchronous)
    if settings.upgrade_on_start:
        upgrade(engine)
    projects = ProjectRepository(engine)
    workers = settings.ingest_decode_workers
    if workers is None:
        workers = default_workers()
    ingest_metrics = IngestMetrics(registry)
    writer = GroupCommitWriter(
        SpanWriter(engine),
        ingest_metrics,
        max_queued_spans=settings.ingest_queue_max_spans,
        max_commit_spans=settings.ingest_commit_max_spans,
    )
    return Services(
        settings=settings,
        engine=engine,
        registry=registry,
        projects=projects,
        keys=KeyVerifier(projects.lookup_key, ttl=settings.key_cache_seconds),
        writer=writer,
        ingest=IngestService(writer, DecodePool(workers, settings.prices_file), ingest_metrics),
        traces=TraceQueries(engine),
        scores=ScoreRepository(engine),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """A complete watchkeep server app for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = build_services(settings, registry)
        app.state.services = svc
        upkeep = StoreMaintenance(svc.engine)
        upkeep.start()
        svc.writer.start()
        log.info(
            "watchkeep ready",
            extra={"database": svc.engine.url.render_as_string(hide_password=True)},
        )
        try:
            yield
        finally:
            svc.ingest.close()
            svc.writer.stop()
            upkeep.stop()
            svc.engine.dispose()

    app = FastAPI(
        title="watchkeep",
        version=__version__,
        summary="Maintain and monitor LLMs in production.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(ObservabilityMiddleware, metrics=HttpMetrics(registry))
    for module in (otlp, traces, scores, health):
        app.include_router(module.router)
    return app
