"""Wall-clock time in the store's unit: integer Unix nanoseconds."""

from __future__ import annotations

import time


def now_ns() -> int:
    """The current wall-clock time in Unix nanoseconds."""
    return time.time_ns()
