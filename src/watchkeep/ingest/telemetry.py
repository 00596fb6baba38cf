"""Prometheus instruments for ingest, registered on the app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """Counters, queue depth and commit latency of the ingest path."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "watchkeep_ingest_requests",
            "OTLP export requests by encoding and outcome.",
            ["encoding", "outcome"],
            registry=registry,
        )
        self.spans = Counter(
            "watchkeep_ingest_spans",
            "Spans by outcome: stored (new), duplicate (already stored), rejected (invalid), "
            "discarded (their project was deleted before the commit).",
            ["outcome"],
            registry=registry,
        )
        self.queue_spans = Gauge(
            "watchkeep_ingest_queue_spans",
            "Spans accepted by HTTP and waiting for their group commit.",
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "watchkeep_ingest_commit_seconds",
            "Duration of one group commit (many requests, one transaction).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        self.commit_requests = Histogram(
            "watchkeep_ingest_commit_requests",
            "Requests folded into one group commit.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=registry,
        )
