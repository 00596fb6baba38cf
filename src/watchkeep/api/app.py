"""The FastAPI app factory: builds the services for one Settings and wires the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeep import __version__
from watchkeep.api.body_limit import RestBodyLimit
from watchkeep.api.errors import install_error_handlers
from watchkeep.api.middleware import HttpMetrics, ObservabilityMiddleware
from watchkeep.api.openapi import document_common_errors
from watchkeep.api.routes import (
    alerts,
    drift,
    evaluators,
    gateway_routes,
    health,
    metrics_api,
    monitors,
    otlp,
    quality,
    scores,
    traces,
)
from watchkeep.api.services import Services
from watchkeep.config import Settings
from watchkeep.gateway import web as gateway_web
from watchkeep.gateway.service import Gateway
from watchkeep.ingest.decode_pool import DecodePool, default_workers
from watchkeep.ingest.metrics import IngestMetrics
from watchkeep.ingest.service import IngestService
from watchkeep.ingest.writer import GroupCommitWriter
from watchkeep.monitor.quota import PerMinute
from watchkeep.monitor.service import build_monitoring
from watchkeep.security.egress import AddressPolicy
from watchkeep.security.keys import KeyVerifier
from watchkeep.store.engine import make_engine
from watchkeep.store.maintenance import StoreMaintenance
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.route_repository import RouteRepository
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
        SpanWriter(engine, sqlite_cache_mib=settings.sqlite_writer_cache_mib),
        ingest_metrics,
        max_queued_spans=settings.ingest_queue_max_spans,
        max_commit_spans=settings.ingest_commit_max_spans,
    )
    monitoring = build_monitoring(
        engine,
        registry,
        role=settings.process_role,
        tick=settings.worker_tick_seconds,
        resource_every=settings.resource_sample_seconds,
        max_label_values=settings.metrics_max_label_values,
        egress=AddressPolicy.from_strings(settings.egress_allow_networks),
        smtp_verify_tls=settings.smtp_verify_tls,
    )
    return Services(
        settings=settings,
        engine=engine,
        registry=registry,
        projects=projects,
        keys=KeyVerifier(projects.lookup_key, ttl=settings.key_cache_seconds),
        writer=writer,
        ingest=IngestService(
            writer,
            DecodePool(workers, settings.prices_file),
            ingest_metrics,
            observer=monitoring.telemetry.observe_spans,
        ),
        traces=TraceQueries(engine),
        scores=ScoreRepository(engine),
        monitoring=monitoring,
        gateway=(
            Gateway(settings, writer, registry, RouteRepository(engine)) if settings.gateway_enabled else None
        ),
    )


class WatchkeepApp(FastAPI):
    """FastAPI behind a front chain of pure-ASGI layers (metrics, the gateway fast path).

    Layers added with ``add_middleware`` run inside FastAPI's own error and telemetry
    wrappers; the front chain runs before them, so the gateway's hot endpoints pay for
    none of that stack. Everything else reaches FastAPI unchanged.
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)


def create_app(settings: Settings | None = None, *, gateway_only: bool = False) -> FastAPI:
    """A complete watchkeep server app for ``settings`` (default: from the environment).

    ``gateway_only`` serves just the gateway (``watchkeep gateway``): the OpenAI routes, the
    routes API, probes and metrics, over the same services and database.
    """
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
        if svc.gateway is not None:
            await svc.gateway.open()
            app.state.gateway_auth = gateway_web.GatewayAuth(svc.keys)
        if settings.worker_enabled:
            svc.monitoring.worker.start()
        health.warn_if_exposed(settings)
        log.info(
            "watchkeep ready",
            extra={"database": svc.engine.url.render_as_string(hide_password=True)},
        )
        try:
            yield
        finally:
            if svc.gateway is not None:
                await svc.gateway.aclose()  # before the writer stops: its last traces go in
            svc.monitoring.worker.stop()
            svc.ingest.close()
            svc.writer.stop()
            upkeep.stop()
            svc.engine.dispose()

    app = WatchkeepApp(
        title="watchkeep",
        version=__version__,
        summary="Maintain and monitor LLMs in production.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.state.evaluate_now_limit = PerMinute(settings.evaluate_now_per_minute)
    framework: ASGIApp = RestBodyLimit(partial(FastAPI.__call__, app), settings.rest_max_body_bytes)
    if settings.gateway_enabled or gateway_only:
        framework = gateway_web.GatewayFastPath(framework, root=app)
    app.front = ObservabilityMiddleware(framework, metrics=HttpMetrics(registry))
    if not gateway_only:
        for module in (otlp, traces, scores):
            app.include_router(module.router)
        for module in (metrics_api, quality, drift, evaluators, monitors, alerts):
            app.include_router(module.router)
    if settings.gateway_enabled or gateway_only:
        app.include_router(gateway_web.router)
        app.include_router(gateway_routes.router)
    app.include_router(health.router)
    document_common_errors(app)
    return app
