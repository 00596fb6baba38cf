"""A background thread that runs one pass of work every few seconds until stopped.

The canary worker and the retention worker share it: start once, a pass that raises is
logged and retried on the next tick (the database may be briefly away), and stop waits
for the pass under way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


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
