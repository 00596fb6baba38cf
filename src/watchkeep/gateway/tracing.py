"""Every gateway request becomes a span in the store, without the response waiting for it.

The request path only builds a ``DecodedSpan`` and appends it to a queue (a few
microseconds); a thread normalises what has gathered, per project, with the same
``SpanNormaliser`` as OTLP ingest, and hands it to the group-commit writer without
waiting for the commit: tracing never fails or delays a call. Spans the store cannot
take now (failing store, full ingest queue, failed commit, shutdown) go to a disk spool
and are replayed once it takes writes (``trace_spool``); only a full or unwritable spool
drops spans (``watchkeep_gateway_traces_dropped``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any

import orjson

from watchkeep import semconv as sc
from watchkeep.gateway.dispatch import CallLog
from watchkeep.gateway.telemetry import GatewayMetrics
from watchkeep.gateway.trace_spool import NOT_NOW, SpoolReplayer, TraceSpool
from watchkeep.ingest.decoded import DecodedExport, DecodedSpan
from watchkeep.ingest.group_commit import GroupCommitWriter
from watchkeep.ingest.normalise import SpanNormaliser

log = logging.getLogger(__name__)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_SPAN_KIND_SERVER = 2
_STATUS_OK, _STATUS_ERROR = 1, 2
_RESOURCE = {sc.SERVICE_NAME: "watchkeep-gateway"}


class _RandomIds:
    """Random bytes for ids from the OS, fetched 256 calls' worth at a time.

    ``os.urandom`` releases the GIL around its system call: on the request path that let the
    trace and writer threads take the interpreter, and the call waited for them (24 µs a
    call under cProfile against 1 µs alone). The buffer is dropped in a forked child so
    two processes never hand out the same ids.
    """

    _CALLS = 256

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._buffer, self._at = b"", 0

    def take(self) -> str:
        """``size`` fresh random bytes as lower-case hex."""
        with self._lock:
            at = self._at
            if at + self._size > len(self._buffer):
                self._buffer, at = os.urandom(self._size * self._CALLS), 0
            self._at = at + self._size
            return self._buffer[at : at + self._size].hex()


_IDS = _RandomIds(24)  # a trace id (16 bytes) and a span id (8)


def new_ids(traceparent: str | None) -> tuple[str, str, str | None]:
    """``(trace_id, span_id, parent_span_id)``: joins the caller's W3C trace when it sent one."""
    ids = _IDS.take()
    span_id = ids[32:]
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match and match.group(1) != "0" * 32 and match.group(2) != "0" * 16:
            return match.group(1), span_id, match.group(2)
    return ids[:32], span_id, None


@dataclass(slots=True)
class CallRecord:
    """What the trace of one gateway call says; filled in as the call proceeds."""

    project_id: int
    operation: str
    model: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int = field(default_factory=time.time_ns)
    started: float = field(default_factory=time.perf_counter)
    stream: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    input_messages: Any = None
    output_text: str | None = None
    finish_reason: str | None = None
    response_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft_ms: float | None = None
    cache_hit: bool = False
    status: int = 200
    error: str | None = None
    shadow_of: str | None = None
    prompt: tuple[str, int] | None = None  # the route's prompt: name and version
    log: CallLog = field(default_factory=CallLog)
    ended: float | None = None  # perf_counter when the call finished (set as it is queued)

    def elapsed_s(self) -> float:
        """Seconds since the call started, or the call's duration once it has ended."""
        return (self.ended if self.ended is not None else time.perf_counter()) - self.started


def _origin(record: CallRecord, a: dict[str, Any]) -> None:
    """Where the call came from: the shadowed deployment, the route's prompt version, the error."""
    if record.shadow_of:
        a[sc.WK_GATEWAY_SHADOW_OF] = record.shadow_of
    if record.prompt is not None:
        a[sc.WK_PROMPT_NAME], a[sc.WK_PROMPT_VERSION] = record.prompt[0], str(record.prompt[1])
    if record.error:
        a[sc.ERROR_TYPE] = record.error


def build_span(record: CallRecord, capture_content: bool) -> DecodedSpan:
    """The span of ``record`` with GenAI and watchkeep attributes."""
    served = record.log.served_by
    a: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: record.operation,
        sc.GEN_AI_REQUEST_MODEL: record.model,
        sc.WK_ROUTE: record.model,
        sc.WK_GATEWAY_STREAM: record.stream,
        sc.WK_GATEWAY_CACHE_HIT: record.cache_hit,
        sc.WK_GATEWAY_RETRIES: record.log.retries,
        sc.WK_GATEWAY_FALLBACKS: record.log.fallbacks,
        sc.WK_GATEWAY_STATUS: record.status,
    }
    if record.log.decision:
        a[sc.WK_GATEWAY_DECISION] = record.log.decision
    if record.log.attempts:
        a[sc.WK_GATEWAY_ATTEMPTS] = orjson.dumps(
            [
                {"deployment": t.deployment, "outcome": t.outcome, "ms": round(t.ms, 3)}
                for t in record.log.attempts
            ]
        ).decode()
    if served is None and record.log.picked is not None:
        # A call no deployment answered still belongs to the version it was sent to, so a
        # canary's error rate (figures cut by version) sees the candidate's failures.
        a[sc.WK_MODEL_VERSION] = record.log.picked.spec.version
    if served is not None:
        a[sc.WK_DEPLOYMENT] = served.name
        a[sc.WK_MODEL_VERSION] = served.spec.version
        a[sc.GEN_AI_PROVIDER_NAME] = served.spec.provider
        if served.spec.backend == "llama_cpp":
            a[sc.WK_COST_USD] = 0.0  # a local model has no per-token price
    if record.response_model:
        a[sc.GEN_AI_RESPONSE_MODEL] = record.response_model
    if record.input_tokens is not None:
        a[sc.GEN_AI_USAGE_INPUT_TOKENS] = record.input_tokens
    if record.output_tokens is not None:
        a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = record.output_tokens
    if record.finish_reason:
        a[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [record.finish_reason]
    if record.ttft_ms is not None:
        a[sc.WK_TIME_TO_FIRST_TOKEN_MS] = record.ttft_ms
    _origin(record, a)
    for name, key in _PARAMS:
        value = record.params.get(name)
        if value is not None:
            a[key] = value
    if capture_content:
        if record.input_messages is not None:
            a[sc.GEN_AI_INPUT_MESSAGES] = orjson.dumps(record.input_messages).decode()
        if record.output_text is not None:
            a[sc.GEN_AI_OUTPUT_MESSAGES] = orjson.dumps(
                [{"role": "assistant", "content": record.output_text, "finish_reason": record.finish_reason}]
            ).decode()
    name = f"{record.operation} {record.model}" if not record.shadow_of else f"shadow {record.model}"
    end = record.start_ns + int(record.elapsed_s() * 1e9)
    return DecodedSpan(
        trace_id=record.trace_id,
        span_id=record.span_id,
        parent_span_id=record.parent_span_id,
        name=name,
        kind=_SPAN_KIND_SERVER,
        start_time_unix_nano=record.start_ns,
        end_time_unix_nano=end,
        status_code=_STATUS_ERROR if record.error else _STATUS_OK,
        status_message=record.error,
        attributes=a,
        resource=_RESOURCE,
        scope_name="watchkeep.gateway",
    )


_PARAMS = (
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P),
    ("user", sc.WK_USER_ID),
)


class TraceSink:
    """A bounded queue of call records, the thread that stores their spans, and their spool.

    Spans the writer cannot take now (store failing, queue full, writer stopped) or whose
    commit failed go to the disk spool; ``SpoolReplayer`` puts them in the store later.
    """

    def __init__(
        self,
        writer: GroupCommitWriter,
        normaliser: SpanNormaliser,
        metrics: GatewayMetrics,
        *,
        capture_content: bool,
        spool: TraceSpool,
        max_queued: int = 100_000,
        gather_seconds: float = 0.2,
        flush_at: int = 2_000,
        stop_wait_seconds: float = 10.0,
        replay: dict[str, Any] | None = None,
        redact: Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]] | None = None,
    ) -> None:
        """``replay``: keyword arguments of the ``SpoolReplayer`` (batch size, backoff, scan period);
        ``redact``: applied to the payload rows before they are written (PII protection)."""
        self._writer = writer
        self._redact = redact
        self._normaliser = normaliser
        self._metrics = metrics
        self.capture_content = capture_content
        self.spool = spool
        self._max = max_queued
        self._queue: deque[CallRecord] = deque()
        self._wake = threading.Event()
        self._full = threading.Event()
        self._gather = gather_seconds
        self._flush_at = flush_at
        self._stop_wait = stop_wait_seconds
        self._stopping = False
        self._lock = threading.Lock()
        self._inflight: dict[Future[Any], tuple[int, list[DecodedSpan]]] = {}
        self._failed: deque[tuple[int, list[DecodedSpan]]] = deque()
        self._thread = threading.Thread(target=self._run, name="watchkeep-gateway-traces", daemon=True)
        self.replayer = SpoolReplayer(spool, self._submit, self._writer_ok, metrics, **(replay or {}))
        metrics.trace_spool_bytes.set_function(lambda: spool.bytes)

    def start(self) -> None:
        self._thread.start()
        self.replayer.start()

    def record(self, record: CallRecord) -> None:
        """Queue the trace of ``record``, which is finished (never blocks, never raises).

        The span is built on the sink's thread (the call's response goes out sooner), so
        the call's end is taken here, not when its span is built.
        """
        if record.ended is None:
            record.ended = time.perf_counter()
        if len(self._queue) >= self._max:
            self._overflow(record)
            return
        self._queue.append(record)
        if not self._wake.is_set():
            self._wake.set()
        if len(self._queue) >= self._flush_at and not self._full.is_set():
            self._full.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Store what is queued (or spool it), wait for its commits, then stop."""
        self.replayer.stop(timeout)
        self._stopping = True
        self._wake.set()
        self._full.set()
        if self._thread.is_alive():
            self._thread.join(timeout + self._stop_wait)

    def _run(self) -> None:
        while not (self._stopping and not self._queue):
            self._wake.wait(0.5)
            self._wake.clear()
            if not self._stopping:
                # Gather a group: one commit per gather instead of one per call. Each commit
                # costs the process CPU and GIL time that callers would feel in their latency.
                self._full.wait(self._gather)
            self._full.clear()
            try:
                self._spool_failed()
                self._flush()
            except Exception:  # the thread must outlive any one surprise
                log.exception("gateway trace sink failed")
        self._settle()

    def _flush(self) -> None:
        by_project: dict[int, list[DecodedSpan]] = {}
        while self._queue:
            record = self._queue.popleft()
            span = self._build(record)
            if span is not None:
                by_project.setdefault(record.project_id, []).append(span)
        for project_id, spans in by_project.items():
            self._store(project_id, spans)

    def _build(self, record: CallRecord) -> DecodedSpan | None:
        try:
            return build_span(record, self.capture_content)
        except Exception:  # one bad record must not lose the others
            log.exception("could not build a gateway span")
            self._metrics.traces_dropped.inc()
            return None

    def _overflow(self, record: CallRecord) -> None:
        """The queue is full (the sink thread is far behind): spill this span to the spool now."""
        span = self._build(record)
        if span is not None:
            self._to_spool(record.project_id, [span])

    def _writer_ok(self) -> bool:
        return self._writer.state == "ok"

    def _submit(self, project_id: int, spans: list[DecodedSpan]) -> Future[Any]:
        """Normalise and queue ``spans`` for a commit (one of ``NOT_NOW`` if refused)."""
        batch = self._normaliser.normalise(project_id, DecodedExport(spans=spans), time.time_ns())
        if self._redact is not None and batch.payloads:
            batch.payloads = self._redact(batch.payloads)
        return self._writer.submit(batch)

    def _store(self, project_id: int, spans: list[DecodedSpan]) -> None:
        """Hand ``spans`` to the writer, or to the spool while the store cannot take them."""
        if not self._writer_ok():  # failing: a commit would fail too (and hold up the writer)
            self._to_spool(project_id, spans)
            return
        try:
            future = self._submit(project_id, spans)
        except NOT_NOW:
            self._to_spool(project_id, spans)
            return
        except Exception:
            log.exception("could not store %d gateway spans", len(spans))
            self._metrics.traces_dropped.inc(len(spans))
            return
        with self._lock:
            self._inflight[future] = (project_id, spans)
        future.add_done_callback(self._committed)

    def _committed(self, future: Future[Any]) -> None:
        """On the writer's thread: a failed commit's spans go to the spool (on the sink's thread)."""
        with self._lock:
            item = self._inflight.pop(future, None)
        if item is not None and future.exception() is not None:
            self._failed.append(item)
            self._wake.set()

    def _spool_failed(self) -> None:
        while self._failed:
            self._to_spool(*self._failed.popleft())

    def _to_spool(self, project_id: int, spans: list[DecodedSpan]) -> None:
        if self.spool.write(project_id, spans):
            self._metrics.traces_spooled.inc(len(spans))
            self.replayer.wake()
        else:
            self._metrics.traces_dropped.inc(len(spans))

    def _settle(self) -> None:
        """At stop: wait for the commits in flight; spool what failed or is still not committed.

        A span spooled here whose commit ends later is stored once all the same: replays
        insert only new spans."""
        with self._lock:
            pending = list(self._inflight)
        wait(pending, timeout=self._stop_wait)
        with self._lock:
            unsettled = list(self._inflight.values())
            self._inflight.clear()
        self._spool_failed()
        for project_id, spans in unsettled:
            self._to_spool(project_id, spans)
