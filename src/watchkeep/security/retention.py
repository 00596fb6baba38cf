"""Retention periods per project and the worker that enforces them.

A project's periods live in ``privacy_settings.retention`` as ``{kind: days}`` for the
kinds in ``KINDS`` (absent or null: kept forever). The worker walks every project with
periods every ``interval_s`` seconds and deletes what is older, in batches
(``store.retention_queries``); a pass stops at ``max_batches`` per kind and project, so
its work is bounded and a backlog is worked off over the next passes. Several workers may
run at once (``watchkeep worker`` processes and, unless WATCHKEEP_RETENTION_IN_SERVER is
false, the server): deleting is idempotent, the worst case is two deleting the same batch,
the second finding nothing left (tests/integration/test_retention.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from watchkeep.config import Settings
from watchkeep.periodic import PeriodicThread
from watchkeep.store.clock import now_ns as clock_ns
from watchkeep.store.privacy_repository import PrivacySettingsRepository
from watchkeep.store.retention_queries import KINDS, RetentionQueries

log = logging.getLogger(__name__)
DAY_NS = 86_400 * 1_000_000_000
MAX_DAYS = 36_500


class InvalidRetention(ValueError):
    """Retention settings that cannot be stored; the message says which kind and why."""


def validate_retention(raw: Mapping[str, Any]) -> dict[str, int | None]:
    """``raw`` checked and completed: every kind, each a whole number of days in
    1..36500 or None (kept forever). Unknown kinds are refused, not ignored."""
    unknown = sorted(set(raw) - set(KINDS))
    if unknown:
        raise InvalidRetention(f"unknown retention kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    out: dict[str, int | None] = {}
    for kind in KINDS:
        days = raw.get(kind)
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
            raise InvalidRetention(f"{kind}: days must be a whole number or null, not {days!r}")
        if days is not None and not 1 <= days <= MAX_DAYS:
            raise InvalidRetention(f"{kind}: days must be between 1 and {MAX_DAYS}, not {days}")
        out[kind] = days
    return out


def periods_of(stored: Mapping[str, Any]) -> dict[str, int]:
    """The kinds with a period from stored settings (anything invalid stored is skipped)."""
    return {
        k: v
        for k, v in stored.items()
        if k in KINDS and isinstance(v, int) and not isinstance(v, bool) and v > 0
    }


@dataclass(slots=True)
class RetentionPass:
    """What one pass deleted: rows per (project id, kind), and partitions dropped."""

    deleted: dict[tuple[int, str], int] = field(default_factory=dict)
    partitions: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(self.deleted.values())


class RetentionWorker:
    """Enforces every project's retention periods every ``interval_s`` seconds on a thread."""

    def __init__(
        self, settings: PrivacySettingsRepository, queries: RetentionQueries, *, interval_s: float
    ) -> None:
        self._settings = settings
        self._queries = queries
        self._thread = PeriodicThread(
            "watchkeep-retention-worker", interval_s, self.run_once, wait_first=True
        )

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings, *, server: bool = False) -> RetentionWorker:
        """The worker of a ``watchkeep worker`` process on ``engine``, or of a server
        (``server``), where WATCHKEEP_RETENTION_IN_SERVER=false makes it never run."""
        idle = server and not settings.retention_in_server
        return cls(
            PrivacySettingsRepository(engine),
            RetentionQueries(engine),
            interval_s=0 if idle else settings.retention_check_seconds,
        )

    def start(self) -> None:
        """Start the thread (nothing when ``interval_s`` is 0); the first pass is one interval in."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after its current batch."""
        self._thread.stop(timeout)

    def run_once(self, now_ns: int | None = None) -> RetentionPass:
        """One bounded pass over every project with periods (tests call it directly)."""
        now = now_ns if now_ns is not None else clock_ns()
        result = RetentionPass()
        cutoffs = {
            stored.project_id: {
                kind: now - days * DAY_NS for kind, days in periods_of(stored.retention).items()
            }
            for stored in self._settings.all()
        }
        spans_before = {p: kinds["spans"] for p, kinds in cutoffs.items() if "spans" in kinds}
        if spans_before:  # whole partitions first (PostgreSQL, where partitioned): no row by row
            result.partitions = self._queries.drop_expired_partitions("spans", spans_before)
        for project_id, kinds in cutoffs.items():
            for kind, before in kinds.items():
                if self._thread.stopping:
                    return result
                removed = self._queries.expire(project_id, kind, before)
                if removed:
                    result.deleted[(project_id, kind)] = removed
        if result.total or result.partitions:
            log.info(
                "retention pass",
                extra={"rows": result.total, "partitions": len(result.partitions)},
            )
        return result
