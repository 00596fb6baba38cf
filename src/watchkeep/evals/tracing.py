"""Each case a run computed becomes a span in the store, like production traffic.

The span goes the gateway's way (``DecodedSpan`` -> ``SpanNormaliser`` -> the group-commit
writer), so an evaluation call is searchable, costed and linkable like any other: a
result row's ``trace_id`` opens its trace, and when the target is a gateway route the
gateway's own span is a child of the case's span (the runner sends a W3C ``traceparent``
naming it). Tracing never fails a run: a span the store cannot take is logged and dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from concurrent.futures import Future, wait
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from watchkeep import semconv as sc
from watchkeep.config import Settings
from watchkeep.evals.model import ItemResult
from watchkeep.ingest.decoded import DecodedExport, DecodedSpan
from watchkeep.ingest.group_commit import GroupCommitWriter, QueueFull, WriterStopped
from watchkeep.ingest.normalise import SpanNormaliser
from watchkeep.ingest.pricing import PriceTable
from watchkeep.ingest.telemetry import IngestMetrics
from watchkeep.store.sealing import Sealer
from watchkeep.store.span_writer import SpanWriter

log = logging.getLogger(__name__)
_SPAN_KIND_CLIENT = 3
_STATUS_OK, _STATUS_ERROR = 1, 2
_RESOURCE = {sc.SERVICE_NAME: "watchkeep-evals"}
FLUSH_AT = 200  # spans gathered before they are handed to the writer


def span_id_for(trace_id: str) -> str:
    """The span id of a case's span: derived from its trace id, so a result row (which keeps
    only the trace id) names its span on any executor."""
    return hashlib.sha256(trace_id.encode("ascii")).hexdigest()[:16]


def new_case_ids() -> tuple[str, str]:
    """``(trace_id, span_id)`` for a case's call (the runner sends them as ``traceparent``)."""
    trace_id = os.urandom(16).hex()
    return trace_id, span_id_for(trace_id)


def build_eval_span(
    result: ItemResult,
    *,
    run_id: int,
    run_name: str,
    model: str | None,
    dataset_version: int | None = None,
    capture_content: bool = True,
    end_ns: int | None = None,
) -> DecodedSpan:
    """The CLIENT span of one computed case (``result.trace_id`` must be set)."""
    assert result.trace_id is not None
    a: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.WK_EVAL_RUN_ID: run_id,
        sc.WK_EVAL_ITEM_KEY: result.item_key,
        sc.WK_EVAL_REPEAT: result.repeat,
        sc.WK_EVAL_VARIANT: result.variant,
    }
    optional = {
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.WK_EVAL_FAMILY: result.family,
        sc.WK_EVAL_DATASET_VERSION: dataset_version,
        sc.GEN_AI_USAGE_INPUT_TOKENS: result.input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: result.output_tokens,
        sc.WK_COST_USD: result.cost_usd,
        sc.ERROR_TYPE: result.error_kind if result.error else None,
    }
    a.update({k: v for k, v in optional.items() if v is not None})
    if capture_content:
        if result.messages is not None:
            a[sc.GEN_AI_INPUT_MESSAGES] = orjson.dumps([dict(m) for m in result.messages]).decode()
        if result.output is not None:
            a[sc.GEN_AI_OUTPUT_MESSAGES] = orjson.dumps(
                [{"role": "assistant", "content": result.output}]
            ).decode()
    end = end_ns or time.time_ns()
    return DecodedSpan(
        trace_id=result.trace_id,
        span_id=span_id_for(result.trace_id),
        parent_span_id=None,
        name=f"eval {run_name}",
        kind=_SPAN_KIND_CLIENT,
        start_time_unix_nano=end - int((result.latency_ms or 0.0) * 1e6),
        end_time_unix_nano=end,
        status_code=_STATUS_ERROR if result.error else _STATUS_OK,
        status_message=result.error,
        attributes=a,
        resource=_RESOURCE,
        scope_name="watchkeep.evals",
    )


class EvalTracer:
    """Gathers the spans of fresh results and hands them to a group-commit writer."""

    def __init__(
        self,
        writer: GroupCommitWriter,
        normaliser: SpanNormaliser,
        *,
        capture_content: bool = True,
        owns_writer: bool = False,
    ) -> None:
        self._writer = writer
        self._normaliser = normaliser
        self.capture_content = capture_content
        self._owns = owns_writer
        self._pending: dict[int, list[DecodedSpan]] = {}
        self._futures: list[Future[Any]] = []
        self.dropped = 0

    @classmethod
    def start(cls, engine: Engine, settings: Settings, sealer: Sealer | None = None) -> EvalTracer:
        """A tracer with its own writer thread (the CLI's; a server passes its writer instead);
        ``sealer`` encrypts the spans' payloads at rest, as the server's writer does."""
        writer = GroupCommitWriter(
            SpanWriter(engine, sqlite_cache_mib=settings.sqlite_writer_cache_mib, sealer=sealer),
            IngestMetrics(CollectorRegistry()),
            max_queued_spans=settings.ingest_queue_max_spans,
            max_commit_spans=settings.ingest_commit_max_spans,
        )
        writer.start()
        normaliser = SpanNormaliser(PriceTable.load(settings.prices_file))
        return cls(writer, normaliser, capture_content=settings.gateway_capture_content, owns_writer=True)

    def record(
        self,
        project_id: int,
        result: ItemResult,
        *,
        run_id: int,
        run_name: str,
        model: str | None = None,
        dataset_version: int | None = None,
    ) -> None:
        """Queue the span of a fresh result (a result without a trace id has none)."""
        if result.trace_id is None or result.cached:
            return
        span = build_eval_span(
            result,
            run_id=run_id,
            run_name=run_name,
            model=model,
            dataset_version=dataset_version,
            capture_content=self.capture_content,
        )
        spans = self._pending.setdefault(project_id, [])
        spans.append(span)
        if len(spans) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Hand what has gathered to the writer (without waiting for its commit)."""
        pending, self._pending = self._pending, {}
        for project_id, spans in pending.items():
            batch = self._normaliser.normalise(project_id, DecodedExport(spans=spans), time.time_ns())
            try:
                self._futures.append(self._writer.submit(batch))
            except (QueueFull, WriterStopped) as exc:
                self.dropped += len(spans)
                log.warning("dropped %d evaluation spans: %s", len(spans), type(exc).__name__)
        self._futures = [f for f in self._futures if not f.done()]

    def close(self, timeout: float = 30.0) -> None:
        """Flush, wait for the commits, and stop the writer when it is this tracer's own."""
        self.flush()
        wait(self._futures, timeout=timeout)
        self._futures = []
        if self._owns:
            self._writer.stop(timeout)
