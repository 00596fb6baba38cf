"""Retention on both databases: each kind expires what is older than its period (spans with
their payloads and search documents, payloads alone, scores, eval results, alert history),
in batches, for that project only; the REST settings and the partition path on PostgreSQL;
two passes at once, and the pass inside a ``watchkeep worker`` process."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from tests.support.apps import Api
from tests.support.servers import run_until
from tests.support.span_rows import insert_spans
from watchkeep.config import Settings
from watchkeep.security.retention import DAY_NS, RetentionWorker
from watchkeep.store.clock import now_ns
from watchkeep.store.engine import is_sqlite, make_engine
from watchkeep.store.eval_tables import dataset_items, dataset_versions, datasets, eval_results, eval_runs
from watchkeep.store.privacy_repository import PrivacySettingsRepository
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.retention_queries import RetentionQueries
from watchkeep.store.tables import alert_events, scores, span_payloads, spans, traces

NOW = now_ns()


def search_rows(conn: Connection, span_ids: list[int]) -> int:
    """How many search documents the spans have."""
    if not span_ids:
        return 0
    table, column = (
        ("search_fts", "rowid")
        if is_sqlite(conn.engine.url.drivername)
        else ("search_documents", "span_row_id")
    )
    listed = ", ".join(str(i) for i in span_ids)
    return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {column} IN ({listed})")).scalar_one())


def seed_trace(
    conn: Connection,
    project_id: int,
    *,
    at_ns: int,
    user_id: str | None = None,
    words: str = "hello",
    spans_n: int = 2,
) -> tuple[str, list[int]]:
    """A trace of ``spans_n`` spans at ``at_ns`` with payloads, search documents, a score
    and an eval result; returns the trace id and the span row ids."""
    trace_id = uuid.uuid4().hex
    ids: list[int] = []
    conn.execute(
        traces.insert().values(
            project_id=project_id,
            trace_id=trace_id,
            name="t",
            start_time_unix_nano=at_ns,
            end_time_unix_nano=at_ns + 1000,
            has_error=False,
            user_id=user_id,
        )
    )
    for i in range(spans_n):
        span_id = uuid.uuid4().hex[:16]
        row = insert_spans(
            conn,
            [
                dict(
                    project_id=project_id,
                    trace_id=trace_id,
                    span_id=span_id,
                    name="chat",
                    kind=1,
                    status_code=0,
                    start_time_unix_nano=at_ns + i,
                    end_time_unix_nano=at_ns + 1000,
                    duration_ms=1.0,
                    user_id=user_id,
                    ingested_at_unix_nano=at_ns,
                )
            ],
        )[0]
        ids.append(row)
        conn.execute(
            span_payloads.insert().values(
                span_row_id=int(row),
                project_id=project_id,
                trace_id=trace_id,
                span_id=span_id,
                input=f'[{{"role": "user", "content": "{words}"}}]',
                output=f"answer {words}",
                created_at_unix_nano=at_ns,
            )
        )
        if is_sqlite(conn.engine.url.drivername):
            conn.execute(
                text("INSERT INTO search_fts (rowid, project_id, body) VALUES (:i, :p, :b)"),
                {"i": row, "p": project_id, "b": words},
            )
        else:
            conn.execute(
                text(
                    "INSERT INTO search_documents (span_row_id, project_id, document) "
                    "VALUES (:i, :p, to_tsvector('simple', :b))"
                ),
                {"i": row, "p": project_id, "b": words},
            )
    conn.execute(
        scores.insert().values(
            project_id=project_id,
            trace_id=trace_id,
            name="quality",
            data_type="numeric",
            value=1.0,
            source="api",
            comment=words,
            created_at_unix_nano=at_ns,
        )
    )
    return trace_id, ids


def seed_eval(
    conn: Connection, project_id: int, *, at_ns: int, trace_id: str | None = None, words: str = "q"
) -> int:
    """A dataset version with one item (from ``trace_id``), a run over it and its result."""
    dataset = conn.execute(
        datasets.insert()
        .values(project_id=project_id, name=f"d-{uuid.uuid4().hex[:8]}", created_at_unix_nano=at_ns)
        .returning(datasets.c.id)
    ).scalar_one()
    version = conn.execute(
        dataset_versions.insert()
        .values(
            dataset_id=dataset,
            project_id=project_id,
            version=1,
            content_hash="0" * 64,
            item_count=1,
            splits={},
            created_at_unix_nano=at_ns,
        )
        .returning(dataset_versions.c.id)
    ).scalar_one()
    conn.execute(
        dataset_items.insert().values(
            version_id=version,
            project_id=project_id,
            position=0,
            item_key="k1",
            item_hash="0" * 64,
            input={"q": words},
            trace_id=trace_id,
        )
    )
    run = conn.execute(
        eval_runs.insert()
        .values(
            project_id=project_id,
            name="r",
            status="completed",
            dataset_version_id=version,
            target={},
            target_version="v",
            config={},
            config_hash="h",
            seed=1,
            cases_total=1,
            cases_done=1,
            cases_failed=0,
            started_at_unix_nano=at_ns,
        )
        .returning(eval_runs.c.id)
    ).scalar_one()
    conn.execute(
        eval_results.insert().values(
            run_id=run,
            project_id=project_id,
            item_key="k1",
            repeat=0,
            variant="",
            input={"q": words},
            output=f"out {words}",
            scores={},
            cached=False,
            created_at_unix_nano=at_ns,
        )
    )
    return int(run)


def seed_alert(conn: Connection, project_id: int, at_ns: int) -> None:
    conn.execute(
        alert_events.insert().values(
            project_id=project_id,
            monitor_id=1,
            monitor_name="m",
            severity="warning",
            kind="fire",
            from_state="OK",
            to_state="ALERT",
            created_at_unix_nano=at_ns,
        )
    )


def count(engine: Engine, table: Any, project_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.project_id == project_id)
            ).scalar_one()
        )


def new_project(engine: Engine) -> int:
    return ProjectRepository(engine).get_or_create(f"ret-{uuid.uuid4().hex[:10]}").id


@pytest.fixture
def engine(database_url: str) -> Any:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_each_kind_expires_what_is_older_than_its_period_and_only_in_its_project(engine: Engine) -> None:
    mine, other = new_project(engine), new_project(engine)
    old, fresh = NOW - 40 * DAY_NS, NOW - 2 * DAY_NS
    with engine.begin() as conn:
        old_spans = [seed_trace(conn, p, at_ns=old)[1] for p in (mine, other) for _ in range(3)]
        fresh_spans = seed_trace(conn, mine, at_ns=fresh)[1]
        for p in (mine, other):
            seed_eval(conn, p, at_ns=old)
            seed_alert(conn, p, old)
            seed_alert(conn, p, fresh)
    PrivacySettingsRepository(engine).put(
        mine, actor="t", retention={"spans": 30, "scores": 30, "eval_items": 30, "alerts": 30}
    )
    worker = RetentionWorker(
        PrivacySettingsRepository(engine), RetentionQueries(engine, batch=2), interval_s=0
    )
    done = worker.run_once(NOW)

    assert done.deleted[(mine, "spans")] == 6 + 3  # six spans in three batches, then three traces
    assert count(engine, spans, mine) == 2
    assert count(engine, span_payloads, mine) == 2
    assert count(engine, traces, mine) == 1
    assert count(engine, scores, mine) == 1
    assert count(engine, eval_results, mine) == 0
    assert count(engine, eval_runs, mine) == 1  # the run and its aggregates stay
    assert count(engine, alert_events, mine) == 1
    with engine.connect() as conn:
        assert search_rows(conn, [i for ids in old_spans[:3] for i in ids]) == 0
        assert search_rows(conn, fresh_spans) == 2
        assert search_rows(conn, [i for ids in old_spans[3:] for i in ids]) == 6
    # The other project has no periods: all of its rows stay.
    assert (
        count(engine, spans, other),
        count(engine, span_payloads, other),
        count(engine, scores, other),
    ) == (6, 6, 3)
    assert (count(engine, eval_results, other), count(engine, alert_events, other)) == (1, 2)
    assert worker.run_once(NOW).total == 0  # nothing left to do


def test_payloads_expire_alone_and_spans_stay(engine: Engine) -> None:
    mine = new_project(engine)
    with engine.begin() as conn:
        _, old_ids = seed_trace(conn, mine, at_ns=NOW - 10 * DAY_NS, spans_n=3)
        _, fresh_ids = seed_trace(conn, mine, at_ns=NOW)
    PrivacySettingsRepository(engine).put(mine, actor="t", retention={"payloads": 7})
    queries = RetentionQueries(engine, batch=2, max_batches=1)  # a bounded pass leaves the rest
    worker = RetentionWorker(PrivacySettingsRepository(engine), queries, interval_s=0)
    assert worker.run_once(NOW).deleted == {(mine, "payloads"): 2}
    assert worker.run_once(NOW).deleted == {(mine, "payloads"): 1}
    assert count(engine, spans, mine) == 5
    assert count(engine, span_payloads, mine) == 2
    with engine.connect() as conn:
        assert search_rows(conn, old_ids) == 0
        assert search_rows(conn, fresh_ids) == 2


def test_partitions_are_none_on_an_unpartitioned_table(engine: Engine) -> None:
    queries = RetentionQueries(engine)
    assert queries.partitions("spans") == []
    assert queries.drop_expired_partitions("spans", {1: NOW}) == []


def test_old_partitions_are_dropped_only_when_every_project_in_them_expired(postgres: Any) -> None:
    url = postgres if isinstance(postgres, str) else postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    name = f"parted_{uuid.uuid4().hex[:8]}"
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {name} (project_id bigint, t bigint) PARTITION BY RANGE (t)"))
            for low in (0, 100, 200):
                conn.execute(
                    text(
                        f"CREATE TABLE {name}_{low} PARTITION OF {name} FOR VALUES FROM ({low}) TO ({low + 100})"
                    )
                )
            conn.execute(text(f"INSERT INTO {name} VALUES (1, 10), (2, 20), (1, 150), (3, 160), (1, 250)"))
        queries = RetentionQueries(engine)
        assert [(p.low, p.high) for p in queries.partitions(name)] == [(0, 100), (100, 200), (200, 300)]
        # Projects 1 and 2 expire everything before 200; project 3 keeps everything.
        dropped = queries.drop_expired_partitions(name, {1: 200, 2: 200})
        assert dropped == [f"{name}_0"]  # 100..200 holds a row of project 3; 200..300 is too new
        with engine.connect() as conn:
            left = conn.execute(text(f"SELECT project_id, t FROM {name} ORDER BY t")).all()
        assert [tuple(r) for r in left] == [(1, 150), (3, 160), (1, 250)]
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        engine.dispose()


def test_retention_over_rest_is_admin_only_validated_and_per_project(api: Api) -> None:
    project = f"ret-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": f"Bearer {api.key_for('admin', project)}"}
    member = {"Authorization": f"Bearer {api.key_for('member', project)}"}
    url = "/api/v1/privacy/retention"
    assert api.client.get(url, headers=member).status_code == 403
    assert api.client.put(url, headers=member, json={"spans": 3}).status_code == 403
    empty = api.client.get(url, headers=admin)
    assert empty.status_code == 200
    assert empty.json() == {
        "spans": None,
        "payloads": None,
        "scores": None,
        "eval_items": None,
        "alerts": None,
    }
    put = api.client.put(url, headers=admin, json={"spans": 30, "payloads": 7})
    assert put.status_code == 200, put.text
    assert api.client.get(url, headers=admin).json()["spans"] == 30
    for bad in ({"spans": 0}, {"spans": 40_000}, {"spans": "ten"}, {"traces": 3}, {"spans": 1.5}):
        assert api.client.put(url, headers=admin, json=bad).status_code == 422, bad
    other = {"Authorization": f"Bearer {api.key_for('admin')}"}
    assert api.client.get(url, headers=other).json()["spans"] is None  # another project's settings


def test_two_workers_at_once_delete_each_expired_row_once_and_fail_nothing(engine: Engine) -> None:
    """Several processes (workers, and the server unless WATCHKEEP_RETENTION_IN_SERVER=false)
    may run a pass at the same moment: both pick the same batches, the second finds them gone."""
    mine = new_project(engine)
    with engine.begin() as conn:
        for _ in range(6):
            seed_trace(conn, mine, at_ns=NOW - 40 * DAY_NS)
            seed_eval(conn, mine, at_ns=NOW - 40 * DAY_NS)
        seed_trace(conn, mine, at_ns=NOW)
    PrivacySettingsRepository(engine).put(mine, actor="t", retention={"spans": 30, "eval_items": 30})
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def one_pass() -> None:
        worker = RetentionWorker(
            PrivacySettingsRepository(engine), RetentionQueries(engine, batch=3), interval_s=0
        )
        start.wait()
        try:
            worker.run_once(NOW)
        except BaseException as exc:  # the test reports any failure of either
            failures.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert (count(engine, spans, mine), count(engine, span_payloads, mine)) == (2, 2)
    assert (count(engine, traces, mine), count(engine, eval_results, mine)) == (1, 0)


def test_the_worker_process_enforces_retention(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """``watchkeep worker`` runs the retention pass (issue 16: "enforced by the worker")."""
    mine = new_project(engine)
    with engine.begin() as conn:
        seed_trace(conn, mine, at_ns=NOW - 40 * DAY_NS)
        seed_trace(conn, mine, at_ns=now_ns())
    PrivacySettingsRepository(engine).put(mine, actor="t", retention={"spans": 30})
    env = {
        **os.environ,
        "WATCHKEEP_HOME": str(tmp_path),
        "WATCHKEEP_DATABASE_URL": database_url,
        "WATCHKEEP_RETENTION_CHECK_SECONDS": "0.2",
        "WATCHKEEP_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "watchkeep.cli.main", "worker", "--tick", "0.5"]
    run_until(command, env, lambda: count(engine, spans, mine) == 2)
    assert (count(engine, spans, mine), count(engine, traces, mine)) == (2, 1)  # the fresh trace stays


@pytest.mark.parametrize(
    ("in_server", "server", "runs"),
    [(True, True, True), (False, True, False), (False, False, True)],
    ids=["server-default", "server-off", "worker-always"],
)
def test_retention_in_server_setting_leaves_the_pass_to_the_workers(
    engine: Engine, database_url: str, tmp_path: Path, in_server: bool, server: bool, runs: bool
) -> None:
    settings = Settings(home=tmp_path, database_url=database_url, retention_in_server=in_server)
    worker = RetentionWorker.from_settings(engine, settings, server=server)
    worker.start()
    try:
        running = any(t.name == "watchkeep-retention-worker" for t in threading.enumerate())
    finally:
        worker.stop()
    assert running is runs
