"""The group-committing writer: many requests, one transaction, ACK after commit.

HTTP handlers hand a normalised batch to ``submit`` and await the returned future; one
writer thread takes everything queued since its last commit, writes it in a single
transaction and then resolves every future. Under load the transactions grow, so
fsyncs are shared across requests. The queue is bounded in spans: when full, ``submit``
raises ``QueueFull`` and the caller answers 503 with Retry-After instead of dropping.
If a group fails, each batch is retried alone so one bad batch cannot fail the others.
Spans of a project deleted while they waited are dropped at commit (counted "discarded").

The writer also says whether the store can write (``state``, shown by ``/readyz``): a
round that stores nothing (the group and every batch alone failed) marks it failing
until a commit succeeds; while failing and idle it probes the store every
``probe_seconds`` so readiness comes back without traffic (an orchestrator sends none to
an unready server). Identical failures are logged once with a count (``RepeatedErrorLog``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watchkeep.ingest.telemetry import IngestMetrics
from watchkeep.logs import RepeatedErrorLog, error_key
from watchkeep.store.maintenance import name_os_thread
from watchkeep.store.rows import WriteBatch
from watchkeep.store.span_writer import SpanWriter

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The write queue holds as many spans as allowed; try again later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("ingest queue is full")
        self.retry_after = retry_after


class StorageUnavailable(Exception):
    """The database refused the batch (down, full, locked); nothing of it was stored."""


class WriterStopped(Exception):
    """The writer is shutting down and takes no more batches."""


@dataclass(slots=True)
class _Pending:
    batch: WriteBatch
    size: int
    future: Future[list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class _Failing:
    """The store has refused every write (commit or probe) since ``since`` (wall clock)."""

    error: str
    since: float
    failures: int

    def describe(self) -> str:
        at = datetime.fromtimestamp(self.since, tz=UTC).isoformat(timespec="seconds")
        return f"failing: {self.error} since {at} ({self.failures} failed writes)"


class GroupCommitWriter:
    """Owns the ingest queue and the thread that commits it."""

    def __init__(
        self,
        writer: SpanWriter,
        metrics: IngestMetrics,
        *,
        max_queued_spans: int,
        max_commit_spans: int,
        probe_seconds: float = 5.0,
        errors: RepeatedErrorLog | None = None,
    ) -> None:
        self._writer = writer
        self._metrics = metrics
        self._max_queued = max_queued_spans
        self._max_commit = max_commit_spans
        self._queue: deque[_Pending] = deque()
        self._queued_spans = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="watchkeep-ingest-writer", daemon=True)
        self._last_commit_seconds = 0.01
        self._probe_seconds = probe_seconds
        self._errors = errors or RepeatedErrorLog(log)
        self._failing: _Failing | None = None  # replaced whole, read by other threads
        self._busy_seconds = 0.0  # written by the writer thread alone

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the writer thread is running."""
        return self._thread.is_alive()

    @property
    def state(self) -> str:
        """``ok``, ``stopped``, or ``failing: <error class> since <time> (<n> failed writes)``."""
        if not self.alive:
            return "stopped"
        failing = self._failing
        return "ok" if failing is None else failing.describe()

    @property
    def busy_seconds(self) -> float:
        """Seconds the writer has spent writing since it started (monotonic): background
        work (the search indexer) yields while it grows as fast as the clock."""
        return self._busy_seconds

    @property
    def queued_spans(self) -> int:
        """Spans waiting for a commit."""
        return self._queued_spans

    def submit(self, batch: WriteBatch) -> Future[list[tuple[Any, ...]]]:
        """Queue ``batch``; once it is committed the future resolves with its span rows
        that were new (replayed spans are left out)."""
        size = len(batch.spans) or len(batch.payloads)  # an OTLP logs batch has payloads alone
        future: Future[list[tuple[Any, ...]]] = Future()
        with self._cond:
            if self._stopping:
                raise WriterStopped()
            if self._queued_spans and self._queued_spans + size > self._max_queued:
                raise QueueFull(retry_after=max(1.0, self._last_commit_seconds * 4))
            self._queue.append(_Pending(batch, size, future))
            self._queued_spans += size
            self._metrics.queue_spans.set(self._queued_spans)
            self._cond.notify()
        return future

    def _take(self) -> list[_Pending] | None:
        """The next group; ``None`` when the store is failing and was idle for a probe period."""
        with self._cond:
            while not self._queue and not self._stopping:
                if self._failing is None:
                    self._cond.wait()
                elif not self._cond.wait(self._probe_seconds) and not self._queue and not self._stopping:
                    return None
            group: list[_Pending] = []
            spans = 0
            while self._queue and (not group or spans + self._queue[0].size <= self._max_commit):
                item = self._queue.popleft()
                group.append(item)
                spans += item.size
            return group

    def _done(self, group: list[_Pending]) -> None:
        with self._cond:
            self._queued_spans -= sum(p.size for p in group)
            self._metrics.queue_spans.set(self._queued_spans)

    def _run(self) -> None:
        name_os_thread("wk-writer")
        while True:
            group = self._take()
            if group is None:
                self._probe()
                continue
            if not group:
                self._writer.close()
                return  # stopping and drained
            started = time.perf_counter()
            try:
                self._commit(group)
            finally:
                self._done(group)
                self._busy_seconds += time.perf_counter() - started

    def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            new_rows = self._writer.write_new([p.batch for p in group])
        except Exception as exc:
            self._errors.failed(exc, "group commit of %d requests failed; retrying each alone", len(group))
            stored = [self._commit_alone(pending) for pending in group]
            if any(stored):
                self._succeeded()
            else:
                self._failed(exc)
            return
        self._succeeded()
        elapsed = time.perf_counter() - started
        self._last_commit_seconds = elapsed
        self._metrics.commit_seconds.observe(elapsed)
        self._metrics.commit_requests.observe(len(group))
        self._count(sum(len(p.batch.spans) for p in group), sum(len(rows) for rows in new_rows))
        for pending, rows in zip(group, new_rows, strict=True):
            pending.future.set_result(rows)

    def _commit_alone(self, pending: _Pending) -> bool:
        """Commit one batch; whether it was stored (its future answers either way)."""
        try:
            (rows,) = self._writer.write_new([pending.batch])
        except Exception as exc:
            self._errors.failed(exc, "commit of a batch of %d spans failed", pending.size)
            pending.future.set_exception(StorageUnavailable(str(exc)))
            return False
        self._count(pending.size, len(rows))
        pending.future.set_result(rows)
        return True

    def _succeeded(self) -> None:
        if self._failing is not None:
            self._errors.recovered()
            log.warning("the store takes writes again after %d failed writes", self._failing.failures)
            self._failing = None

    def _failed(self, exc: Exception) -> None:
        failing = self._failing  # the newest error, since the first
        error = error_key(exc)[0]
        if failing is None:
            self._failing = _Failing(error, time.time(), 1)
        else:
            self._failing = _Failing(error, failing.since, failing.failures + 1)

    def _probe(self) -> None:
        """Idle while failing: try a write that stores nothing, to learn whether the store recovered."""
        try:
            self._writer.probe()
        except Exception as exc:
            log.debug("store probe failed: %s", exc)  # the failed commits logged it already
            self._failed(exc)
            return
        self._succeeded()

    def _count(self, total: int, inserted: int) -> None:
        """Count a commit's spans: stored, dropped (project deleted meanwhile), duplicate."""
        discarded = self._writer.last_discarded
        if discarded:
            log.warning("discarded %d queued spans of a project deleted before their commit", discarded)
            self._metrics.spans.labels("discarded").inc(discarded)
        self._metrics.spans.labels("stored").inc(inserted)
        self._metrics.spans.labels("duplicate").inc(max(0, total - inserted - discarded))
