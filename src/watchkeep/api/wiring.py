"""The objects a running server is made of, built once per app and passed explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Engine

from watchkeep.config import Settings
from watchkeep.evals.dataset_repository import DatasetRepository
from watchkeep.evals.run_repository import RunRepository
from watchkeep.gateway.service import Gateway
from watchkeep.ingest.decode_pool import DecodePool, default_workers
from watchkeep.ingest.group_commit import GroupCommitWriter
from watchkeep.ingest.service import IngestService
from watchkeep.ingest.telemetry import IngestMetrics
from watchkeep.monitor.wiring import Monitoring, build_monitoring
from watchkeep.registry.canary_repository import CanaryRepository
from watchkeep.registry.canary_worker import CanaryWorker
from watchkeep.registry.gateway_refs import RegistryRefs
from watchkeep.registry.promotion import PromotionService
from watchkeep.registry.repository import RegistryRepository
from watchkeep.security.audit import AuditLog
from watchkeep.security.crypto import keyring_from_settings
from watchkeep.security.egress import AddressPolicy
from watchkeep.security.keys import KeyVerifier
from watchkeep.security.people import PeopleService
from watchkeep.security.pii import PiiService
from watchkeep.security.retention import RetentionWorker
from watchkeep.security.secure_mode import check_secure_mode
from watchkeep.store.activity_repository import ActivityRepository
from watchkeep.store.annotation_repository import AnnotationRepository
from watchkeep.store.comment_repository import CommentRepository
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.people_repository import PeopleRepository
from watchkeep.store.privacy_repository import PrivacySettingsRepository
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.route_repository import RouteRepository
from watchkeep.store.score_repository import ScoreRepository
from watchkeep.store.sealing import Sealer
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.text_search import SearchIndexer
from watchkeep.store.trace_lookups import TraceLookupIndexer
from watchkeep.store.trace_queries import TraceQueries
from watchkeep.store.usage_queries import UsageQueries


@dataclass(frozen=True, slots=True)
class Services:
    """What routers may call: repositories and services, never raw SQL."""

    settings: Settings
    engine: Engine
    registry: CollectorRegistry
    projects: ProjectRepository
    keys: KeyVerifier
    writer: GroupCommitWriter
    ingest: IngestService
    traces: TraceQueries
    scores: ScoreRepository
    monitoring: Monitoring
    search: SearchIndexer
    lookups: TraceLookupIndexer  # the traces of each user and session, behind the commit
    usage: UsageQueries
    people: PeopleService
    annotations: AnnotationRepository
    comments: CommentRepository
    activity: ActivityRepository
    datasets: DatasetRepository
    eval_runs: RunRepository
    registry_store: RegistryRepository
    promotions: PromotionService
    canaries: CanaryRepository
    canary_worker: CanaryWorker
    audit: AuditLog
    privacy: PrivacySettingsRepository
    pii: PiiService
    retention_worker: RetentionWorker
    gateway: Gateway | None = None
    sealer: Sealer | None = None  # encryption at rest of payloads (None: no key configured)


def search_indexer(
    settings: Settings,
    engine: Engine,
    registry: CollectorRegistry,
    sealer: Sealer | None = None,
    ingest_busy: Callable[[], float] | None = None,
) -> SearchIndexer:
    """The search indexer of the settings (yielding to ``ingest_busy``, the ingest writer's
    busy seconds); while it is on, its lag is exported as gauges (measured at scrape time,
    at most once a second)."""
    indexer = SearchIndexer(
        engine,
        budget=settings.search_index_budget,
        max_chars=settings.search_index_max_chars,
        sealer=sealer,
        ingest_busy=ingest_busy,
    )
    if settings.search_index:
        spans = Gauge(
            "watchkeep_search_index_lag_spans",
            "Spans stored but not yet indexed for search (span ids past the indexer's mark).",
            registry=registry,
        )
        spans.set_function(lambda: indexer.lag().spans)
        seconds = Gauge(
            "watchkeep_search_index_lag_seconds",
            "Age of the oldest stored span not yet indexed for search (0 when caught up).",
            registry=registry,
        )
        seconds.set_function(lambda: indexer.lag().seconds)
    return indexer


def start_indexing(svc: Services, *, search: bool) -> None:
    """Start the passes that index behind the ingest commit: the traces' user and session
    lookups (the lists read them), and full-text search when it is on."""
    svc.lookups.start()
    if search:
        svc.search.start()


def stop_indexing(svc: Services) -> None:
    """Stop both passes (a pass never started stops at once)."""
    svc.search.stop()
    svc.lookups.stop()


def build_services(settings: Settings, registry: CollectorRegistry) -> Services:
    """Every long-lived object of a server, wired together (nothing started yet)."""
    check_secure_mode(settings)  # WATCHKEEP_SECURE=1: no start without the encryption key
    url = settings.resolved_database_url()
    engine = make_engine(url, sqlite_synchronous=settings.sqlite_synchronous)
    if settings.upgrade_on_start:
        upgrade(engine)
    projects = ProjectRepository(engine)
    sealer = keyring_from_settings(settings)  # encryption at rest (None: no key, plaintext)
    pii = PiiService(PrivacySettingsRepository(engine), settings)
    workers = settings.ingest_decode_workers
    if workers is None:
        workers = default_workers()
    ingest_metrics = IngestMetrics(registry)
    writer = GroupCommitWriter(
        SpanWriter(engine, sqlite_cache_mib=settings.sqlite_writer_cache_mib, sealer=sealer),
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
        pass_budget_s=settings.monitor_pass_budget_s,
        sealer=sealer,
    )
    registry_store = RegistryRepository(engine)
    eval_runs = RunRepository(engine, sealer=sealer)
    canaries = CanaryRepository(engine)
    return Services(
        settings=settings,
        engine=engine,
        registry=registry,
        projects=projects,
        keys=KeyVerifier(projects.lookup_key, ttl=settings.key_cache_seconds),
        writer=writer,
        ingest=IngestService(
            writer,
            DecodePool(
                workers, settings.prices_file, sealer=sealer, young_threshold=settings.gc_young_threshold
            ),
            ingest_metrics,
            observer=monitoring.telemetry.observe_spans,
            pii=pii,
        ),
        traces=TraceQueries(engine, sealer=sealer),
        scores=ScoreRepository(engine),
        monitoring=monitoring,
        search=search_indexer(settings, engine, registry, sealer, lambda: writer.busy_seconds),
        lookups=TraceLookupIndexer(engine),
        usage=UsageQueries(engine),
        people=PeopleService.from_settings(PeopleRepository(engine), settings),
        annotations=AnnotationRepository(engine),
        comments=CommentRepository(engine),
        activity=ActivityRepository(engine),
        datasets=DatasetRepository(engine, sealer=sealer),
        eval_runs=eval_runs,
        registry_store=registry_store,
        promotions=PromotionService(engine, registry_store, eval_runs),
        canaries=canaries,
        audit=AuditLog(engine),
        privacy=PrivacySettingsRepository(engine),
        pii=pii,
        retention_worker=RetentionWorker.from_settings(engine, settings, server=True),
        canary_worker=CanaryWorker(
            engine, registry_store, canaries, interval_s=settings.canary_check_seconds, audit=AuditLog(engine)
        ),
        sealer=sealer,
        gateway=(
            Gateway(
                settings,
                writer,
                registry,
                RouteRepository(engine),
                resolver=RegistryRefs(registry_store),
                pii=pii,
            )
            if settings.gateway_enabled
            else None
        ),
    )
