"""PostgreSQL reads a window's metrics from the covering start-time index alone, also when
they are filtered by environment or release (revisions 0023 and 0027): a heap visit a span
made a day's metrics for one environment at 10M spans miss their 200 ms target."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support.databases import fresh_database_url
from watchkeep.monitor.metric_queries import PERCENTILE_METRICS, MetricFilter, _aggregate, llm_span_conditions
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade

PROJECT = 7_000_000_002  # rows of no real project, removed after the test
T0 = 1_700_000_000_000_000_000
INDEX = "ix_spans_project_id_start_time_unix_nano"


@pytest.mark.parametrize(
    "f",
    [
        MetricFilter(),
        MetricFilter(model="m1"),
        MetricFilter(environment="staging"),
        MetricFilter(release="r2"),
    ],
    ids=["all", "model", "environment", "release"],
)
def test_metrics_are_an_index_only_scan(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, f: MetricFilter
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite reads its own narrower index (no INCLUDE)")
    # A database of its own: in the session's shared one, other sessions' snapshots keep
    # VACUUM from marking the new rows all-visible, and the planner then prices the
    # index-only scan with heap visits and may take another index.
    url = fresh_database_url(request, database_url, tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    traces = [{"p": PROJECT, "t": f"{t:032x}", "s": T0 + t * 1000} for t in range(2000)]
    rows = [
        {**t, "sp": f"{k:016x}", "e": "staging" if k % 2 else None, "r": f"r{k}", "m": f"m{k}"}
        for t in traces
        for k in range(3)
    ]
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO traces (project_id, trace_id, start_time_unix_nano, end_time_unix_nano,"
                    " has_error, environment) VALUES (:p, :t, :s, :s, false, 'prod')"
                ),
                traces,
            )
            conn.execute(
                text(
                    "INSERT INTO spans (project_id, trace_id, span_id, name, kind, status_code,"
                    " start_time_unix_nano, end_time_unix_nano, duration_ms, ingested_at_unix_nano,"
                    " environment, release, request_model, trace_row_id)"
                    " SELECT :p, CAST(:t AS VARCHAR(32)), :sp, 'chat', 2, 0, :s, :s, 1.5, 0, :e, :r, :m, id"
                    " FROM traces WHERE project_id = :p AND trace_id = CAST(:t AS VARCHAR(32))"
                ),
                rows,
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) spans"))
            conn.execute(text("VACUUM (ANALYZE) traces"))
        query = _aggregate(
            llm_span_conditions(PROJECT, f, T0, T0 + 10**12), list(PERCENTILE_METRICS), counters=True
        )
        with engine.begin() as conn:
            for setting in ("enable_seqscan", "enable_bitmapscan"):  # small tables: can it, not would it
                conn.execute(text(f"SET LOCAL {setting} = off"))
            compiled = query.compile(dialect=conn.dialect)
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params))
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM spans WHERE project_id = :p"), {"p": PROJECT})
            conn.execute(text("DELETE FROM traces WHERE project_id = :p"), {"p": PROJECT})
        engine.dispose()
    assert f"Index Only Scan using {INDEX} on spans" in plan, plan
