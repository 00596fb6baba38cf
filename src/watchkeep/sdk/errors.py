"""Internal failures are logged once per kind and counted, never raised into the app."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("watchkeep.sdk")


class ErrorLog:
    """Remembers which failure kinds were already logged so a hot path cannot flood logs."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.count = 0

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def report(
        self,
        where: str,
        exc: BaseException | None = None,
        *,
        level: int = logging.WARNING,
        message: str | None = None,
    ) -> None:
        """Count a failure; log it the first time this ``where`` key is seen."""
        try:
            with self._lock:
                self.count += 1
                first = where not in self._seen
                self._seen.add(where)
            if first:
                text = message or "internal error"
                logger.log(
                    level,
                    "watchkeep (%s): %s%s; further occurrences are not logged",
                    where,
                    text,
                    f": {exc!r}" if exc is not None else "",
                )
        except Exception:  # logging itself must never break the caller
            pass
