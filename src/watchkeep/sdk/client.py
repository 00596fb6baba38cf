"""The client: one configured tracer, pipeline and TracerProvider per process.

Module-level helpers (``observe``, ``span``, ``score``...) reach the client through
``current_client()``; that single holder is the SDK's only process-wide state besides
the fork hook, and it exists because decorators are applied before ``init`` runs.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from watchkeep.sdk.config import Config, load_config, logger
from watchkeep.sdk.encode import Encoder
from watchkeep.sdk.errors import ErrorLog
from watchkeep.sdk.pipeline import Pipeline, Stats
from watchkeep.sdk.processor import PipelineSpanProcessor
from watchkeep.sdk.scores import build_score
from watchkeep.sdk.spans import SpanRecord, current_span, start_record, trace_and_span_ids
from watchkeep.sdk.spool import Spool
from watchkeep.sdk.transport import Transport

_EMPTY_STATS = Stats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


class Client:
    """Holds the configuration and the export machinery; inactive without an API key."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.errors = ErrorLog()
        self.active = config.active
        self.pipeline: Pipeline | None = None
        self.encoder: Encoder | None = None
        self.tracer_provider: trace.TracerProvider
        self._sink: Callable[[Any], None] | None = None
        self._sample_bound = 0
        if not self.active:
            if config.enabled:
                logger.warning("watchkeep: no API key (WATCHKEEP_API_KEY); tracing is off")
            self.tracer_provider = trace.NoOpTracerProvider()
            return
        self._sample_bound = TraceIdRatioBased.get_bound_for_rate(config.sample_rate)
        self.encoder = Encoder(config, self.errors)
        self.pipeline = Pipeline(
            self.encoder,
            Transport(config.endpoint, config.api_key, self.errors),
            Spool(config.spool_dir, config.spool_max_bytes, self.errors, root=config.spool_root),
            self.errors,
            queue_size=config.queue_size,
            batch_size=config.batch_size,
            interval=config.flush_interval,
            export_timeout=config.export_timeout,
        )
        self._sink = self.pipeline.submit
        provider = TracerProvider(
            resource=Resource.create(dict(self.encoder.resource_attributes)),
            sampler=ParentBased(TraceIdRatioBased(config.sample_rate)),
        )
        provider.add_span_processor(PipelineSpanProcessor(self.pipeline, config.shutdown_timeout))
        self.tracer_provider = provider
        if config.set_global:
            trace.set_tracer_provider(provider)
        atexit.register(_shutdown_at_exit, weakref.ref(self))

    def start_span(self, name: str, kind: SpanKind = SpanKind.INTERNAL) -> SpanRecord:
        """A new lean span under the current OpenTelemetry span (not yet made current)."""
        return start_record(name, kind, self._sink, self._sample_bound)

    def get_tracer(self, name: str = "watchkeep", version: str | None = None) -> trace.Tracer:
        """An OpenTelemetry tracer on this client's provider, for OTel-native code."""
        return self.tracer_provider.get_tracer(name, version)

    def score(
        self,
        name: str,
        value: float | str | bool,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
        source: str = "api",
        label: str | None = None,
        comment: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        data_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> bool:
        """Queue a score for ``/api/v1/scores``; defaults to the current trace. Never raises.

        Each score carries an idempotency key (a new UUID unless you pass your own, e.g.
        the id of the feedback event), so a retry or spool replay stores it once.
        """
        if self.pipeline is None or self.encoder is None:
            return False
        try:
            if trace_id is None:
                trace_id, current = trace_and_span_ids(current_span())
                span_id = span_id or current
            body = build_score(
                name,
                value,
                trace_id=trace_id,
                span_id=span_id,
                source=source,
                label=label,
                comment=comment,
                metadata=metadata,
                data_type=data_type,
                redact=self.encoder.redact_text,
                idempotency_key=idempotency_key,
            )
            if body is None:
                return False
            self.pipeline.submit_score(orjson.dumps(body))
            return True
        except Exception as exc:
            self.errors.report("score", exc)
            return False

    def flush(self, timeout: float | None = None) -> bool:
        if self.pipeline is None:
            return True
        return self.pipeline.flush(self.config.shutdown_timeout if timeout is None else timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        if self.pipeline is None:
            return True
        done = self.pipeline.shutdown(self.config.shutdown_timeout if timeout is None else timeout)
        return done

    def stats(self) -> Stats:
        return _EMPTY_STATS if self.pipeline is None else self.pipeline.stats()


def _shutdown_at_exit(ref: weakref.ref[Client]) -> None:
    client = ref()
    if client is not None:
        with contextlib.suppress(Exception):
            client.shutdown()


class _Holder:
    """The process's current client, created from the environment on first use."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.lock = threading.Lock()


_HOLDER = _Holder()


def current_client() -> Client:
    """The client set by ``init``, else one built from ``WATCHKEEP_*`` variables."""
    client = _HOLDER.client
    if client is not None:
        return client
    with _HOLDER.lock:
        if _HOLDER.client is None:
            _HOLDER.client = Client(load_config({}))
        return _HOLDER.client


def install(overrides: Mapping[str, Any]) -> Client:
    """Replace the current client (the previous one is flushed and shut down)."""
    try:
        client = Client(load_config(overrides))
    except Exception as exc:  # init must not take the application down either
        logger.warning("watchkeep: init failed (%r); tracing is off", exc)
        client = Client(Config(enabled=False))
    with _HOLDER.lock:
        previous, _HOLDER.client = _HOLDER.client, client
    if previous is not None and previous is not client:
        previous.shutdown()
    return client
