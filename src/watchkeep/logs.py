"""Structured logging: one JSON object per line (or plain text for humans)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats records as JSON; ``extra={...}`` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode("utf-8")


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send watchkeep's and uvicorn's logs to stderr in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # replaced by watchkeep.access


def error_key(exc: BaseException) -> tuple[str, str]:
    """What makes two failures "the same": the driver's error class and first message line
    (a SQLAlchemy wrapper's statement and parameters differ from one batch to the next)."""
    orig = getattr(exc, "orig", None)
    cause = orig if isinstance(orig, BaseException) else exc
    lines = str(cause).strip().splitlines()
    return type(cause).__name__, lines[0] if lines else ""


class RepeatedErrorLog:
    """Logs a persistent failure once, then a count, so a full disk is not filled with tracebacks.

    The first failure (or one different from the last: another class or message) logs its
    traceback; identical ones that follow are counted and reported as one line
    "... repeated N times in the last T s" at most every ``window`` seconds, and once more
    when the failure ends (:meth:`recovered`).
    """

    def __init__(
        self, logger: logging.Logger, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = logger
        self._window = window
        self._clock = clock
        self._key: tuple[str, str] | None = None
        self._repeats = 0
        self._since = 0.0

    def failed(self, exc: BaseException, msg: str, *args: object) -> None:
        """Report ``exc`` (being handled): with its traceback if new, else counted."""
        key = error_key(exc)
        now = self._clock()
        if key != self._key:
            self._flush(now)
            self._key, self._since = key, now
            self._log.error(msg, *args, exc_info=exc)
            return
        self._repeats += 1
        if now - self._since >= self._window:
            self._flush(now)

    def recovered(self) -> None:
        """The failure ended: report what is still counted and forget it."""
        self._flush(self._clock())
        self._key = None

    def _flush(self, now: float) -> None:
        if self._repeats and self._key is not None:
            self._log.error(
                "%s: %s repeated %d times in the last %.0f s",
                *self._key,
                self._repeats,
                now - self._since,
                extra={"error_class": self._key[0], "repeats": self._repeats},
            )
        self._repeats, self._since = 0, now
