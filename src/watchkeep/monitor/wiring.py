"""Everything monitoring needs, built once per app or worker and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from watchkeep.evaluators import EvaluatorRegistry
from watchkeep.monitor.channels import ChannelSender
from watchkeep.monitor.drift_service import DriftService
from watchkeep.monitor.evaluate import MonitorEvaluator
from watchkeep.monitor.metric_queries import MetricQueries
from watchkeep.monitor.online import OnlineEvaluation
from watchkeep.monitor.quality import QualityQueries
from watchkeep.monitor.repository import AlertHistory, ChannelRepository, MonitorRepository
from watchkeep.monitor.resources import ResourceSampler, ResourceStore
from watchkeep.monitor.telemetry import GenAiTelemetry
from watchkeep.monitor.worker import MonitorWorker
from watchkeep.security.egress import AddressPolicy
from watchkeep.store.sealing import Sealer


@dataclass(frozen=True, slots=True)
class Monitoring:
    """The monitoring pillar's services."""

    metrics: MetricQueries
    quality: QualityQueries
    drift: DriftService
    evaluators: EvaluatorRegistry
    online: OnlineEvaluation
    monitors: MonitorRepository
    channels: ChannelRepository
    alerts: AlertHistory
    resources: ResourceStore
    sampler: ResourceSampler
    telemetry: GenAiTelemetry
    worker: MonitorWorker
    egress: AddressPolicy  # where alert channels may point


def build_monitoring(
    engine: Engine,
    registry: CollectorRegistry,
    *,
    role: str = "server",
    tick: float = 5.0,
    resource_every: float = 15.0,
    max_label_values: int = 50,
    egress: AddressPolicy = AddressPolicy(),
    smtp_verify_tls: bool = True,
    pass_budget_s: float = 2.0,
    sealer: Sealer | None = None,
) -> Monitoring:
    """Wire the monitoring services on ``engine``, exporting on ``registry`` (nothing started).

    ``egress`` bounds where alert channels may deliver (default: public addresses only);
    ``pass_budget_s`` bounds a worker pass's reference scans (decision 0009)."""
    metrics = MetricQueries(engine)
    quality = QualityQueries(engine)
    drift = DriftService(engine, sealer=sealer)
    evaluators = EvaluatorRegistry()
    online = OnlineEvaluation(engine, evaluators, sealer=sealer)
    monitors = MonitorRepository(engine)
    channels = ChannelRepository(engine, sealer=sealer)
    alerts = AlertHistory(engine)
    resources = ResourceStore(engine)
    sampler = ResourceSampler(role, registry)
    worker = MonitorWorker(
        monitors,
        channels,
        alerts,
        MonitorEvaluator(metrics, quality, drift, resources),
        online,
        resources,
        sampler,
        registry=registry,
        sender=ChannelSender(egress, verify_smtp_tls=smtp_verify_tls),
        tick=tick,
        resource_every=resource_every,
        reference_budget_s=pass_budget_s,
    )
    return Monitoring(
        metrics=metrics,
        quality=quality,
        drift=drift,
        evaluators=evaluators,
        online=online,
        monitors=monitors,
        channels=channels,
        alerts=alerts,
        resources=resources,
        sampler=sampler,
        telemetry=GenAiTelemetry(registry, max_values=max_label_values),
        worker=worker,
        egress=egress,
    )
