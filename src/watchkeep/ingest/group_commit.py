"""The group-committing writer: many requests, one transaction, ACK after commit.

HTTP handlers hand a normalised batch to ``submit`` and await the returned future; one
writer thread takes everything queued since its last commit, writes it in a single
transaction and then resolves every future. Under load the transactions grow, so
fsyncs are shared across requests. The queue is bounded in spans: when full, ``submit``
raises ``QueueFull`` and the caller answers 503 with Retry-After instead of dropping.
If a group fails, each batch is retried alone so one bad batch cannot fail the others.
Spans of a project deleted while they waited are dropped at commit (counted "discarded").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from watchkeep.ingest.telemetry import IngestMetrics
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


class GroupCommitWriter:
    """Owns the ingest queue and the thread that commits it."""

    def __init__(
        self,
        writer: SpanWriter,
        metrics: IngestMetrics,
        *,
        max_queued_spans: int,
        max_commit_spans: int,
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
    def queued_spans(self) -> int:
        """Spans waiting for a commit."""
        return self._queued_spans

    def submit(self, batch: WriteBatch) -> Future[list[tuple[Any, ...]]]:
        """Queue ``batch``; once it is committed the future resolves with its span rows
        that were new (replayed spans are left out)."""
        size = len(batch.spans)
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

    def _take(self) -> list[_Pending]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
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
        while True:
            group = self._take()
            if not group:
                self._writer.close()
                return  # stopping and drained
            try:
                self._commit(group)
            finally:
                self._done(group)

    def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            new_rows = self._writer.write_new([p.batch for p in group])
        except Exception:
            log.exception("group commit of %d requests failed; retrying each alone", len(group))
            for pending in group:
                self._commit_alone(pending)
            return
        elapsed = time.perf_counter() - started
        self._last_commit_seconds = elapsed
        self._metrics.commit_seconds.observe(elapsed)
        self._metrics.commit_requests.observe(len(group))
        self._count(sum(p.size for p in group), sum(len(rows) for rows in new_rows))
        for pending, rows in zip(group, new_rows, strict=True):
            pending.future.set_result(rows)

    def _commit_alone(self, pending: _Pending) -> None:
        try:
            (rows,) = self._writer.write_new([pending.batch])
        except Exception as exc:
            log.exception("commit of a batch of %d spans failed", pending.size)
            pending.future.set_exception(StorageUnavailable(str(exc)))
            return
        self._count(pending.size, len(rows))
        pending.future.set_result(rows)

    def _count(self, total: int, inserted: int) -> None:
        """Count a commit's spans: stored, dropped (project deleted meanwhile), duplicate."""
        discarded = self._writer.last_discarded
        if discarded:
            log.warning("discarded %d queued spans of a project deleted before their commit", discarded)
            self._metrics.spans.labels("discarded").inc(discarded)
        self._metrics.spans.labels("stored").inc(inserted)
        self._metrics.spans.labels("duplicate").inc(max(0, total - inserted - discarded))
