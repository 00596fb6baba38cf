"""Where an ingest round's time goes: the writer's share of it and PostgreSQL's statements.

The ingest benchmark's load is a closed loop (``CLIENTS`` clients, each sending its next
export once the last one is durable), so spans/s = CLIENTS x spans a request / latency
of a request. A round's rate is bounded by the writer only while the writer is busy; the
server's own Prometheus metrics say how busy it was (the sum of its commit times) and how
many requests each commit took. On PostgreSQL, ``pg_stat_statements`` (when the server
preloads it) splits the database's time by statement (docs/ingest.md, "Session 31").
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

COMMIT_SECONDS = "watchkeep_ingest_commit_seconds"
COMMIT_REQUESTS = "watchkeep_ingest_commit_requests"
PG_STATEMENTS_SETTINGS = {"shared_preload_libraries": "pg_stat_statements"}


def commit_counters(metrics_text: str) -> dict[str, float]:
    """The writer's cumulative commit seconds, commits and requests committed, from the
    server's Prometheus text (zeros before its first commit)."""
    out = {"seconds": 0.0, "commits": 0.0, "requests": 0.0}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == f"{COMMIT_SECONDS}_sum":
                out["seconds"] += sample.value
            elif sample.name == f"{COMMIT_SECONDS}_count":
                out["commits"] += sample.value
            elif sample.name == f"{COMMIT_REQUESTS}_sum":
                out["requests"] += sample.value
    return out


def read_commit_counters(url: str) -> dict[str, float]:
    """``commit_counters`` of the server at ``url`` (its /metrics admits a loopback client
    without a key when no operator token is set, as in the benchmark)."""
    response = httpx.get(f"{url}/metrics", timeout=30)
    response.raise_for_status()
    return commit_counters(response.text)


def cpu_grown(before: dict[int, float], now: dict[int, float]) -> float:
    """CPU seconds that short-lived processes (PostgreSQL's autovacuum workers) spent between
    two reads of their CPU by pid: a new one counts from zero, one gone since the first
    read takes what it spent after it (not known: never a negative figure)."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in now.items())


@dataclass(frozen=True, slots=True)
class WriterShare:
    """How a round used the writer: ``busy`` (fraction of the round's wall time spent
    committing), requests and milliseconds a commit, and the clients' request latency."""

    busy: float
    requests_per_commit: float
    ms_per_commit: float
    latency_p50_ms: float

    def describe(self) -> str:
        return (
            f"writer busy {self.busy:.0%}, {self.requests_per_commit:.1f} requests/commit, "
            f"{self.ms_per_commit:.0f} ms/commit; request latency p50 {self.latency_p50_ms:.0f} ms"
        )


def writer_share(
    before: dict[str, float], after: dict[str, float], wall_s: float, latencies_s: list[float]
) -> WriterShare:
    """The writer's share of a round of ``wall_s`` seconds, from counters read around it."""
    commits = max(after["commits"] - before["commits"], 1.0)
    seconds = after["seconds"] - before["seconds"]
    return WriterShare(
        busy=seconds / wall_s if wall_s > 0 else 0.0,
        requests_per_commit=(after["requests"] - before["requests"]) / commits,
        ms_per_commit=seconds / commits * 1000,
        latency_p50_ms=statistics.median(latencies_s) * 1000 if latencies_s else 0.0,
    )


class StatementMeter:
    """PostgreSQL's execution time by statement over a round, in µs a span (needs
    ``pg_stat_statements`` preloaded: ``PG_STATEMENTS_SETTINGS``)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def _run(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self._dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            return list(conn.execute(sql).fetchall())

    def reset(self) -> None:
        self._run("SELECT pg_stat_statements_reset()")

    def top(self, spans: int, limit: int = 8) -> list[str]:
        """The ``limit`` statements that took the most time since ``reset``, one line each."""
        rows = self._run(
            "SELECT total_exec_time, calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) "
            f"FROM pg_stat_statements ORDER BY 1 DESC LIMIT {int(limit)}"
        )
        return [
            f"{ms * 1000 / max(spans, 1):6.2f} us/span {calls:6d} calls  {query}" for ms, calls, query in rows
        ]
