"""A background thread that runs one pass of work every few seconds until stopped.

The canary worker and the retention worker share it: start once, a pass that raises is
logged and retried on the next tick (the database may be briefly away), and stop waits
for the pass under way.

``IngestYield`` lets background work give way to a saturated ingest writer. The search
indexer shares the server's CPU with ingest (and on SQLite the database's write lock):
while the group-commit writer writes without pause (busy at least ``SATURATED`` of the
time since the last look), a pass only slows the commits clients are waiting on, so the
work skips ``YIELD_PASSES`` passes in a row, then runs one and so keeps moving; its backlog
is worked off once ingest slows. On PostgreSQL the indexer at its full budget cost about a
tenth of peak ingest (issue 17, docs/operations.md "Search indexing").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

SATURATED = 0.9  # the writer's busy share of the time since the last look
YIELD_PASSES = 3  # passes skipped in a row while saturated: the work runs one pass in four


class PeriodicThread:
    """Calls ``work`` every ``interval_s`` seconds (at once first, unless ``wait_first``)."""

    def __init__(
        self, name: str, interval_s: float, work: Callable[[], object], *, wait_first: bool = False
    ) -> None:
        self._name = name
        self._interval_s = interval_s
        self._work = work
        self._wait_first = wait_first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (nothing when ``interval_s`` is 0 or it already runs)."""
        if self._interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    @property
    def stopping(self) -> bool:
        """Whether ``stop`` was called: a long pass checks it between steps."""
        return self._stop.is_set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after its current pass."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        if self._wait_first and self._stop.wait(self._interval_s):
            return
        while not self._stop.is_set():
            try:
                self._work()
            except Exception:
                log.exception("%s: pass failed; trying again next pass", self._name)
            self._stop.wait(self._interval_s)


class IngestYield:
    """Says, pass by pass, whether background work runs now or yields to ingest.

    ``busy`` gives the ingest writer's busy seconds so far (``GroupCommitWriter.busy_seconds``);
    None: never yield (a process without an ingest writer).
    """

    def __init__(self, busy: Callable[[], float] | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._busy = busy
        self._clock = clock
        self._reading = (clock(), busy() if busy is not None else 0.0)
        self._skipped = 0
        self.yielded = 0  # passes skipped so far

    def saturated(self) -> bool:
        """Whether the writer was busy ``SATURATED`` of the time since the last call."""
        if self._busy is None:
            return False
        now = (self._clock(), self._busy())
        elapsed, busy = now[0] - self._reading[0], now[1] - self._reading[1]
        self._reading = now
        return elapsed > 0 and busy >= SATURATED * elapsed

    def run_pass(self) -> bool:
        """Whether to run this pass: no while saturated, except every ``YIELD_PASSES + 1``-th."""
        if self.saturated() and self._skipped < YIELD_PASSES:
            self._skipped += 1
            self.yielded += 1
            return False
        self._skipped = 0
        return True
