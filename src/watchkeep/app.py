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
from watchkeep.api.body_limit import LargerCap, RestBodyLimit
from watchkeep.api.errors import install_error_handlers
from watchkeep.api.middleware import HttpMetrics, ObservabilityMiddleware
from watchkeep.api.openapi import document_common_errors
from watchkeep.api.otlp_grpc import serve_otlp_grpc
from watchkeep.api.routes import (
    activity,
    alerts,
    canaries,
    comments,
    datasets,
    drift,
    evals,
    evaluators,
    export,
    gateway_routes,
    health,
    keys,
    metrics_api,
    monitors,
    otlp,
    privacy,
    privacy_pii,
    projects,
    quality,
    registry,
    registry_promotion,
    scores,
    traces,
    usage,
)
from watchkeep.api.routes import annotations as annotation_routes
from watchkeep.api.routes import audit as audit_routes
from watchkeep.api.security_headers import secure_front, with_security_headers
from watchkeep.api.wiring import build_services, start_indexing, stop_indexing
from watchkeep.config import Settings
from watchkeep.gateway import web as gateway_web
from watchkeep.monitor.quota import PerMinute
from watchkeep.security.crypto import with_encryption_defaults
from watchkeep.store.maintenance import StoreMaintenance
from watchkeep.ui import api_docs
from watchkeep.ui.console import install_console

log = logging.getLogger(__name__)


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


def create_app(
    settings: Settings | None = None, *, gateway_only: bool = False, otlp_grpc: bool = False
) -> FastAPI:
    """A complete watchkeep server app for ``settings`` (default: from the environment).

    ``gateway_only`` serves just the gateway (``watchkeep gateway``): the OpenAI routes, the
    routes API, probes and metrics, over the same services and database. ``otlp_grpc``
    also serves OTLP/gRPC on ``settings.otlp_grpc_port`` (``watchkeep server`` does).
    """
    settings = with_encryption_defaults(settings or Settings())
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = build_services(settings, registry)
        app.state.services = svc
        upkeep = StoreMaintenance(svc.engine)
        upkeep.start()
        if not gateway_only:  # gateway replicas only serve and trace
            start_indexing(svc, search=settings.search_index)
        svc.writer.start()
        if svc.gateway is not None:
            await svc.gateway.open()
            app.state.gateway_auth = gateway_web.GatewayAuth(svc.keys)
        if settings.worker_enabled:
            svc.monitoring.worker.start()
            svc.canary_worker.start()
            svc.retention_worker.start()
        health.warn_if_exposed(settings)
        log.info(
            "watchkeep ready",
            extra={"database": svc.engine.url.render_as_string(hide_password=True)},
        )
        try:
            async with serve_otlp_grpc(svc, enabled=otlp_grpc and not gateway_only):
                yield  # gRPC stops first, before the writer
        finally:
            if svc.gateway is not None:
                await svc.gateway.aclose()  # before the writer stops: its last traces go in
            svc.monitoring.worker.stop()
            if settings.worker_enabled:
                svc.canary_worker.stop()
                svc.retention_worker.stop()
            svc.ingest.close()
            svc.writer.stop()
            stop_indexing(svc)
            upkeep.stop()
            svc.engine.dispose()

    app = WatchkeepApp(
        title="watchkeep",
        version=__version__,
        summary="Maintain and monitor LLMs in production.",
        lifespan=lifespan,
        docs_url=None,  # ui/api_docs.py serves /docs from the wheel, not from a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    app.state.evaluate_now_limit = PerMinute(settings.evaluate_now_per_minute)
    uploads = LargerCap(
        r"/api/v1/datasets/[^/]+/versions", settings.dataset_upload_max_bytes, "dataset_upload_max_bytes"
    )
    framework: ASGIApp = RestBodyLimit(
        partial(FastAPI.__call__, app), settings.rest_max_body_bytes, larger=(uploads,)
    )
    app.front = ObservabilityMiddleware(
        _with_gateway(framework, app, settings, gateway_only), metrics=HttpMetrics(registry)
    )
    include_routers(app, settings, gateway_only=gateway_only)
    document_common_errors(app)
    return app


def _with_gateway(framework: ASGIApp, app: FastAPI, settings: Settings, gateway_only: bool) -> ASGIApp:
    """The security-headers layer around ``framework`` and, when the gateway is served, its
    fast path. With CORS off the fast path goes in front and adds the same headers, fixed
    once, to its answers (a send wrapper and a header scan less a call); CORS needs its
    preflight answered first, so then it stays inside."""
    if not (settings.gateway_enabled or gateway_only):
        return secure_front(framework, settings)
    if settings.cors_allow_origins:
        return secure_front(gateway_web.GatewayFastPath(framework, root=app), settings)
    headers = (with_security_headers((), https=False), with_security_headers((), https=True))
    return gateway_web.GatewayFastPath(secure_front(framework, settings), root=app, secured=headers)


def include_routers(app: FastAPI, settings: Settings, *, gateway_only: bool) -> None:
    """The REST routers, the gateway's, the API browser and (unless gateway-only or
    turned off) the console."""
    if not gateway_only:
        for module in (otlp, traces, export, scores, usage, comments, activity, annotation_routes):
            app.include_router(module.router)
        for module in (metrics_api, quality, drift, evaluators, monitors, alerts, keys, projects):
            app.include_router(module.router)
        app.include_router(datasets.router)
        app.include_router(evals.router)
        app.include_router(registry.router)
        app.include_router(registry_promotion.router)
        app.include_router(canaries.router)
        app.include_router(audit_routes.router)
        app.include_router(privacy.router)
        app.include_router(privacy_pii.router)
    if settings.gateway_enabled or gateway_only:
        app.include_router(gateway_web.router)
        app.include_router(gateway_routes.router)
    app.include_router(health.router)
    api_docs.install(app)  # /docs and /static, served from the wheel
    if settings.console and not gateway_only:
        install_console(app)
