"""The hand-off between the application's threads and the export thread.

Callers only append to a deque (atomic under the GIL, no lock) and, once per batch,
set an event. The export thread encodes, sends, and on any failure writes the batch
to the disk spool, which it replays, oldest first, once the server answers again.
When a burst outruns the export thread and the deque reaches ``queue_size``, the
caller that finds it full moves the oldest half to the spool itself: back-pressure
instead of loss. ``flush`` and ``shutdown`` wait at most their timeout; what has
not been sent by then is in the spool (or, for ``flush``, still queued).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchkeep.sdk.encode import Encoder
from watchkeep.sdk.errors import ErrorLog
from watchkeep.sdk.spool import Entry, Spool
from watchkeep.sdk.transport import Outcome, Result, Transport

BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
SHUTDOWN_SPILL_SHARE = 0.2  # part of the shutdown budget kept for writing leftovers to disk


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters since start (or since ``os.fork`` in a child). Span counts unless noted."""

    queued: int
    exported: int
    spooled: int
    replayed: int
    dropped: int
    rejected: int
    spool_files: int
    scores_sent: int
    scores_queued: int
    errors: int


class Pipeline:
    """Bounded queue + export thread + spool; one per client, re-made in a forked child."""

    def __init__(
        self,
        encoder: Encoder,
        transport: Transport,
        spool: Spool,
        errors: ErrorLog,
        *,
        queue_size: int,
        batch_size: int,
        interval: float,
        export_timeout: float,
    ) -> None:
        self._encoder = encoder
        self._transport = transport
        self._spool = spool
        self._errors = errors
        self._queue_size = max(queue_size, batch_size)
        self._batch_size = batch_size
        self._interval = interval
        self._export_timeout = export_timeout
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        """Fresh runtime state: at start and in a forked child (whose locks may be held)."""
        self._spans: deque[Any] = deque()
        self._scores: deque[bytes] = deque()
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._spill_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._flush_requested = 0
        self._flush_completed = 0
        self._deadline: float | None = None
        self._inflight: tuple[str, bytes, int] | None = None
        self._backoff = 0.0
        self._backoff_until = 0.0
        self._closed = False
        self._n: Counter[str] = Counter()  # written by the export thread only
        self._spilled = 0  # written under _spill_lock by callers

    def after_fork(self) -> None:
        """In the child: the parent's queue stays the parent's; start afresh."""
        self._reset()
        self._errors.after_fork()
        self._spool.after_fork()
        self._transport.after_fork()

    # --- caller side ------------------------------------------------------------------
    def submit(self, span: Any) -> None:
        """Hand a finished span to the export thread; O(1), never blocks unless overflowing."""
        queue = self._spans
        queue.append(span)
        if len(queue) >= self._batch_size:
            if len(queue) >= self._queue_size:
                self._overflow()
            elif not self._wake.is_set():
                self._wake.set()
        if self._thread is None:
            self._start()

    def submit_score(self, payload: bytes) -> None:
        self._scores.append(payload)
        self._wake.set()
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            if self._closed:
                self._late()
                return
            thread = threading.Thread(target=self._run, name="watchkeep-export", daemon=True)
            self._thread = thread
            thread.start()

    def _late(self) -> None:
        lost = len(self._spans)
        self._spans.clear()
        self._scores.clear()
        self._n["dropped_late"] += lost
        self._errors.report("after-shutdown", message="spans ended after shutdown() are dropped")

    def _overflow(self) -> None:
        """The queue is full: write its oldest half to the spool on this thread."""
        with self._spill_lock:
            if len(self._spans) < self._queue_size:
                return  # someone drained it while we waited
            self._spill(self._take(self._queue_size // 2))

    def _take(self, limit: int) -> list[Any]:
        taken: list[Any] = []
        pop = self._spans.popleft
        try:
            for _ in range(limit):
                taken.append(pop())
        except IndexError:
            pass
        return taken

    def _spill(self, spans: Sequence[Any]) -> None:
        """Encode and spool ``spans`` on the calling thread (overflow and shutdown leftovers)."""
        for start in range(0, len(spans), self._batch_size):
            payload, count = self._encoder.encode(spans[start : start + self._batch_size])
            if count and self._spool.write("spans", payload, count):
                self._spilled += count

    # --- flush and shutdown -----------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Deliver (or spool) everything submitted so far and retry the spool once.

        Returns True when the export thread finished that work within ``timeout``.
        """
        if self._thread is None:
            if not self._spans and not self._scores and not self._spool.pending():
                return True
            self._start()
        deadline = time.monotonic() + timeout
        with self._done:
            self._flush_requested += 1
            target = self._flush_requested
            self._deadline = deadline if self._deadline is None else min(self._deadline, deadline)
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self._flush_completed >= target, timeout)

    def shutdown(self, timeout: float) -> bool:
        """Flush, stop the export thread, and spool whatever is still in memory."""
        if self._closed:
            return True
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout * (1.0 - SHUTDOWN_SPILL_SHARE))
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic() - timeout * SHUTDOWN_SPILL_SHARE))
        stuck = thread is not None and thread.is_alive()
        with self._spill_lock:
            leftovers = self._take(len(self._spans))
            if stuck and self._inflight is not None:
                kind, payload, count = self._inflight  # re-sent later; the server drops repeats
                if self._spool.write(kind, payload, count):
                    self._spilled += count
            self._spill(leftovers)
            while self._scores:
                self._spool.write("score", self._scores.popleft(), 1)
        if not stuck:
            self._transport.close()
        return flushed and not stuck

    # --- export thread ----------------------------------------------------------------
    def _run(self) -> None:
        self._spool.recover_claims()
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closed
            try:
                self._cycle()
            except Exception as exc:
                self._errors.report("export-loop", exc, level=logging.ERROR)
            if closing:
                return

    def _cycle(self) -> None:
        with self._done:
            target = self._flush_requested
            deadline = self._deadline if target > self._flush_completed else None
        if deadline is not None:
            self._backoff_until = 0.0  # a flush may probe the server at once
        for _ in range(max(1, -(-len(self._spans) // self._batch_size))):
            batch = self._take(self._batch_size)
            if not batch:
                break
            payload, count = self._encoder.encode(batch)
            if count:
                self._ship("spans", payload, count, deadline)
        while self._scores:
            self._ship("score", self._scores.popleft(), 1, deadline)
        self._replay(deadline)
        with self._done:
            if target > self._flush_completed:
                self._flush_completed = target
                if self._flush_completed >= self._flush_requested:
                    self._deadline = None
                self._done.notify_all()

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self._export_timeout
        return min(self._export_timeout, deadline - time.monotonic())

    def _waiting(self, deadline: float | None) -> bool:
        """True while backing off, or when a flush deadline leaves no time to send."""
        now = time.monotonic()
        return now < self._backoff_until or (deadline is not None and now >= deadline)

    def _ship(self, kind: str, payload: bytes, count: int, deadline: float | None) -> None:
        if self._waiting(deadline):
            self._keep(kind, payload, count)
            return
        self._inflight = (kind, payload, count)
        result = self._transport.send(kind, payload, self._timeout(deadline))
        self._inflight = None
        if result.outcome is Outcome.DELIVERED:
            self._n[f"{kind}.exported"] += count
            self._backoff = 0.0
        elif result.outcome is Outcome.RETRY:
            self._keep(kind, payload, count)
            self._back_off(result)
        else:
            self._n[f"{kind}.rejected"] += count

    def _keep(self, kind: str, payload: bytes, count: int) -> None:
        if self._spool.write(kind, payload, count):
            self._n[f"{kind}.spooled"] += count

    def _back_off(self, result: Result) -> None:
        self._backoff = min(max(self._backoff * 2, BACKOFF_MIN), BACKOFF_MAX)
        delay = result.retry_after
        if delay is None:
            delay = self._backoff * random.uniform(0.5, 1.0)
        self._backoff_until = time.monotonic() + delay

    def _replay(self, deadline: float | None) -> None:
        """Send spooled payloads oldest first, yielding to live spans when a batch waits."""
        while not self._waiting(deadline) and len(self._spans) < self._batch_size:
            entry = self._spool.claim_oldest()
            if entry is None:
                return
            result = self._send_entry(entry, deadline)
            if result.outcome is Outcome.RETRY:
                self._spool.release(entry)
                self._back_off(result)
                return
            self._spool.complete(entry)
            counter = "replayed" if result.outcome is Outcome.DELIVERED else "rejected"
            self._n[f"{entry.kind}.{counter}"] += entry.count
            if result.outcome is Outcome.DELIVERED:
                self._n[f"{entry.kind}.exported"] += entry.count
                self._backoff = 0.0

    def _send_entry(self, entry: Entry, deadline: float | None) -> Result:
        # Not marked in flight: a claimed file stays on disk until it is delivered.
        return self._transport.send(entry.kind, entry.payload, self._timeout(deadline))

    # --- introspection ----------------------------------------------------------------
    def stats(self) -> Stats:
        n = self._n
        return Stats(
            queued=len(self._spans),
            exported=n["spans.exported"],
            spooled=n["spans.spooled"] + self._spilled,
            replayed=n["spans.replayed"],
            dropped=self._spool.dropped + n["dropped_late"],
            rejected=n["spans.rejected"],
            spool_files=self._spool.pending(),
            scores_sent=n["score.exported"],
            scores_queued=len(self._scores),
            errors=self._errors.count,
        )


_LIVE: weakref.WeakSet[Pipeline] = weakref.WeakSet()
"""Pipelines to re-make in a forked child; fork hooks cannot be unregistered, hence global."""


def _after_fork_in_child() -> None:
    for pipeline in list(_LIVE):
        pipeline.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
