"""Closed buckets of anomaly monitors' metric series, in memory and in the store.

An anomaly monitor compares its newest buckets with a day (or more) of reference
buckets. A bucket closed for longer than the settle time is final, so it is computed
once: kept in a small LRU of series for the next passes of this process, and persisted
in ``monitor_series_buckets`` (one row per metric and bucket, the value exactly as
computed) so another worker or a restarted one reads it back instead of rescanning the
spans (decision 0009). Series are keyed by project, a hash of the filter and bucket
width, and the metrics of one query group; cached and fresh buckets hold the same floats,
so where a bucket came from never changes an observation.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from watchkeep.store.clock import now_ns
from watchkeep.store.tables import monitor_series_buckets

Bucket = dict[str, float | None]
MAX_BUCKETS = 10_000  # no series query spans more buckets (``MetricQueries.series``)


def series_key(filter_key: Sequence[str | None], bucket_ns: int) -> str:
    """A stable hash of what defines a series besides its project and metric."""
    raw = json.dumps([list(filter_key), bucket_ns], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


class SeriesBuckets:
    """Closed buckets by (project, series, metric group): memory first, then the store."""

    def __init__(self, engine: Engine, max_series: int = 1024) -> None:
        self._engine = engine
        self._max = max_series
        self._series: OrderedDict[tuple[object, ...], dict[int, Bucket]] = OrderedDict()

    def closed(
        self,
        project_id: int,
        key: str,
        group: tuple[str, ...],
        starts: range,
        frozen_before: int,
    ) -> dict[int, Bucket]:
        """The known closed buckets of ``starts`` (those before ``starts`` dropped).

        Buckets ending by ``frozen_before`` missing from memory are looked up in the store.
        """
        found = self._memory(project_id, key, group, starts.start)
        missing = [b for b in starts if b + starts.step <= frozen_before and b not in found]
        if missing:
            found.update(self._load(project_id, key, group, missing[0], missing[-1] + 1))
        return found

    def keep(
        self, project_id: int, key: str, group: tuple[str, ...], bucket_ns: int, fresh: dict[int, Bucket]
    ) -> None:
        """Remember newly closed buckets, and persist them (older than any query could ask pruned)."""
        if not fresh:
            return
        self._memory(project_id, key, group, None).update(fresh)
        created = now_ns()
        rows = [
            {
                "project_id": project_id,
                "series_key": key,
                "metric": metric,
                "start_unix_nano": start,
                "value": bucket.get(metric),
                "created_at_unix_nano": created,
            }
            for start, bucket in fresh.items()
            for metric in group
        ]
        t = monitor_series_buckets.c
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(monitor_series_buckets), rows)
                conn.execute(
                    delete(monitor_series_buckets).where(
                        t.project_id == project_id,
                        t.series_key == key,
                        t.start_unix_nano < max(fresh) - MAX_BUCKETS * bucket_ns,
                    )
                )
        except IntegrityError:
            pass  # another worker persisted the same buckets first (with the same values)

    def _memory(
        self, project_id: int, key: str, group: tuple[str, ...], oldest_ns: int | None
    ) -> dict[int, Bucket]:
        ident = (project_id, key, group)
        found = self._series.get(ident)
        if found is None:
            found = self._series[ident] = {}
            while len(self._series) > self._max:
                self._series.popitem(last=False)
        self._series.move_to_end(ident)
        if oldest_ns is None:
            return found
        for start in [s for s in found if s < oldest_ns]:
            del found[start]
        return found

    def _load(
        self, project_id: int, key: str, group: tuple[str, ...], start: int, end: int
    ) -> dict[int, Bucket]:
        t = monitor_series_buckets.c
        query = select(t.start_unix_nano, t.metric, t.value).where(
            t.project_id == project_id,
            t.series_key == key,
            t.metric.in_(group),
            t.start_unix_nano >= start,
            t.start_unix_nano < end,
        )
        out: dict[int, Bucket] = {}
        with self._engine.connect() as conn:
            for bucket_start, metric, value in conn.execute(query):
                out.setdefault(int(bucket_start), {"start_unix_nano": float(bucket_start)})[metric] = value
        # a bucket is whole or absent: its metrics are written in one transaction
        return {b: row for b, row in out.items() if len(row) == len(group) + 1}
