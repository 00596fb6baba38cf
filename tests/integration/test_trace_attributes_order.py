"""Trace attributes reach every span of the trace, whatever the order its spans were exported in.

Each span of a four-span trace is posted in its own OTLP request; user, session,
environment, release and tags are set on one of them only (the first, a middle or the
last one exported). Span filters and the span list must treat every span as carrying
them, as the trace detail does, and the join that gives them stays on indexes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.apps import Api
from watchkeep.store import span_list
from watchkeep.store.engine import is_sqlite, make_engine
from watchkeep.store.trace_queries import TraceFilter, encode_cursor, span_list_query

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
TRACE_ID = "ab" * 16
SPAN_IDS = [f"{i:016x}" for i in range(1, 5)]
TRACE_ATTRIBUTES = {
    "watchkeep.user.id": "alice",
    "watchkeep.session.id": "s-42",
    "watchkeep.environment": "staging",
    "watchkeep.release": "2.1.0",
    "watchkeep.tags": "beta,checkout",
}
FILTERS = {"user_id": "alice", "session_id": "s-42", "environment": "staging", "release": "2.1.0"}


def string_attr(key: str, value: str) -> dict[str, object]:
    return {"key": key, "value": {"stringValue": value}}


def span(index: int, attributes: dict[str, str]) -> dict[str, object]:
    """Span ``index`` of the trace: 0 is the root, the others its children."""
    out: dict[str, object] = {
        "traceId": TRACE_ID,
        "spanId": SPAN_IDS[index],
        "name": f"step-{index}",
        "startTimeUnixNano": str(T0 + index * MS),
        "endTimeUnixNano": str(T0 + 100 * MS - index * MS),
        "attributes": [string_attr(k, v) for k, v in attributes.items()],
    }
    if index:
        out["parentSpanId"] = SPAN_IDS[0]
    return out


def post(api: Api, *spans: dict[str, object]) -> None:
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})
    response = api.client.post(
        "/v1/traces", content=body, headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def list_spans(api: Api, **params: object) -> list[dict[str, Any]]:
    """Every span the span list yields for ``params``, walking its pages."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.client.get("/api/v1/spans", params=query, headers=api.auth)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize("carrier", [0, 2, 3], ids=["first", "middle", "last"])
@pytest.mark.parametrize("export_order", [[0, 1, 2, 3], [3, 2, 1, 0]], ids=["root-first", "root-last"])
def test_span_filters_find_every_span_of_a_matching_trace(
    api: Api, carrier: int, export_order: list[int]
) -> None:
    """The attributes ride on the ``carrier``-th export; every filter still finds all four spans."""
    for position, index in enumerate(export_order):
        post(api, span(index, TRACE_ATTRIBUTES if position == carrier else {}))
    everyone = sorted(SPAN_IDS)
    for name, value in FILTERS.items():
        found = list_spans(api, **{name: value})
        assert sorted(s["span_id"] for s in found) == everyone, name
        assert all(s[name] == value for s in found), name
    paged = list_spans(api, user_id="alice", limit=3)  # keyset pages across the join
    assert [s["span_id"] for s in paged] == SPAN_IDS[::-1]
    assert all(s["tags"] == ["beta", "checkout"] for s in paged)
    assert list_spans(api, user_id="bob") == []
    assert list_spans(api, environment="staging", release="1.0.0") == []


def test_a_span_keeps_its_own_value_over_the_trace(api: Api) -> None:
    """A span exported with its own environment (another service) is filtered by its own."""
    post(api, span(0, TRACE_ATTRIBUTES))
    post(api, span(1, {"watchkeep.environment": "prod", "watchkeep.release": "9.9.9"}))
    post(api, span(2, {}))
    staging = list_spans(api, environment="staging")
    assert sorted(s["span_id"] for s in staging) == [SPAN_IDS[0], SPAN_IDS[2]]
    prod = list_spans(api, environment="prod", user_id="alice")
    assert [(s["span_id"], s["release"]) for s in prod] == [(SPAN_IDS[1], "9.9.9")]


@pytest.mark.parametrize("dense", [False, True], ids=["through the traces", "walking the spans"])
def test_user_session_and_tags_are_looked_up_through_the_traces(
    api: Api, dense: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trace row keeps the first user, session and tags exported for it; a span exported
    later with values of its own matches only where its own and its trace's agree. The
    same when the filter picks so many traces that the list walks the spans instead."""
    if dense:
        monkeypatch.setattr(span_list, "DENSE_TRACES", 1)
    post(api, span(0, TRACE_ATTRIBUTES))
    post(api, span(2, {}))  # inherits its trace's
    own = {"watchkeep.user.id": "bob", "watchkeep.session.id": "s-7", "watchkeep.tags": "solo"}
    post(api, span(1, own))
    inherited = [SPAN_IDS[2], SPAN_IDS[0]]  # newest first
    for params in ({"user_id": "alice"}, {"session_id": "s-42"}, {"tag": "beta"}):
        assert [s["span_id"] for s in list_spans(api, **params)] == inherited, params
        traces = api.client.get("/api/v1/traces", params=params, headers=api.auth).json()["items"]
        assert [t["trace_id"] for t in traces] == [TRACE_ID], params
    for params in ({"user_id": "bob"}, {"session_id": "s-7"}, {"tag": "solo"}):
        assert list_spans(api, **params) == [], params
    everything = list_spans(api, user_id="alice", tag="beta", session_id="s-42", limit=1)
    assert [s["span_id"] for s in everything] == inherited
    assert list_spans(api, user_id="alice", tag="nobody-has-it") == []


def test_filters_agree_with_the_trace_list_and_detail(api: Api) -> None:
    """The trace found by a filter shows the same spans in its detail as the span list does."""
    post(api, span(1, {}))
    post(api, span(0, {}))
    post(api, span(3, TRACE_ATTRIBUTES))
    post(api, span(2, {}))
    traces = api.client.get("/api/v1/traces", params={"session_id": "s-42"}, headers=api.auth).json()
    assert [t["trace_id"] for t in traces["items"]] == [TRACE_ID]
    assert traces["items"][0]["span_count"] == 4
    spans = list_spans(api, session_id="s-42")
    detail = api.client.get(f"/api/v1/traces/{TRACE_ID}", headers=api.auth).json()
    assert detail["span_count"] == len(spans) == 4


PLAN_PROJECT = 7_000_000_001  # rows of no real project, removed after the plan test


def explain(
    conn: Any,
    sqlite: bool,
    f: TraceFilter,
    *,
    walk: bool = False,
    floor: int | None = None,
    query: Any = None,
) -> str:
    if query is None:
        query = span_list_query(PLAN_PROJECT, f, 101, encode_cursor(T0, 10), walk=walk, floor=floor)
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    rows = conn.execute(text(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql)).all()
    return "\n".join(str(r[-1] if sqlite else r[0]) for r in rows)


def test_the_trace_join_stays_on_indexes(database_url: str) -> None:
    """Over analysed data, spans are read through their (project, start) index and each
    span's trace by the traces primary key, also under a cursor (keyset pages)."""
    engine = make_engine(database_url)
    sqlite = is_sqlite(engine.url.drivername)
    trace_rows = [
        {"p": PLAN_PROJECT, "t": f"{t:032x}", "s": T0 - t * 1000, "u": f"u{t % 50}", "se": f"s{t % 50}"}
        for t in range(5000)
    ]
    span_rows = [{**t, "sp": f"{k:016x}", "s": int(str(t["s"])) + k} for t in trace_rows for k in range(4)]
    clean = ["DELETE FROM spans WHERE project_id = :p", "DELETE FROM traces WHERE project_id = :p"]
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO traces (project_id, trace_id, name, start_time_unix_nano,"
                    " end_time_unix_nano, has_error, user_id, session_id) VALUES (:p, :t, 'x', :s, :s, false, :u, :se)"
                ),
                trace_rows,
            )
            conn.execute(
                text(
                    "INSERT INTO spans (project_id, trace_id, span_id, name, kind, status_code,"
                    " start_time_unix_nano, end_time_unix_nano, duration_ms, ingested_at_unix_nano, trace_row_id)"
                    " VALUES (:p, :t, :sp, 'x', 0, 0, :s, :s, 0, 0,"
                    " (SELECT id FROM traces WHERE project_id = :p AND trace_id = CAST(:t AS VARCHAR(32))))"
                ),
                span_rows,
            )
            conn.execute(text("ANALYZE"))
        with engine.connect() as conn:
            if not sqlite:  # small tables: ask whether the indexes can serve it, not the cheapest
                for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
                    conn.execute(text(f"SET LOCAL {setting} = off"))
            walks = [explain(conn, sqlite, TraceFilter(environment="e", release="r"))]
            # a user with many traces: the planner chooses, from an index either way
            planned = explain(conn, sqlite, TraceFilter(user_id="u7"), walk=True)
            picks = [
                explain(conn, sqlite, f, floor=floor)
                for f in (TraceFilter(user_id="u7"), TraceFilter(session_id="s7", environment="e"))
                for floor in (None, T0 - 2_000_000)  # ``span_page``'s bound: the traces ending after it
            ]
            newest = span_list._newest_picked(PLAN_PROJECT, TraceFilter(user_id="u7"), encode_cursor(T0, 10))
            assert newest is not None
            floors = explain(conn, sqlite, TraceFilter(), query=newest.offset(100).limit(1))
    finally:
        with engine.begin() as conn:
            for statement in clean:
                conn.execute(text(statement), {"p": PLAN_PROJECT})
        engine.dispose()
    for plan in picks:  # user or session: their lookup rows, their traces by id, then their spans
        if sqlite:
            assert "SEARCH trace_lookups USING PRIMARY KEY (project_id=? AND kind=? AND value=?" in plan, plan
            assert "SEARCH spans USING INDEX sqlite_autoindex_spans_1 (trace_row_id=?)" in plan, plan
            assert "SCAN" not in plan, plan
        else:
            assert re.search(r"(Index (Only )?Scan using|Bitmap Index Scan on) pk_trace_lookups", plan), plan
            assert "Index Scan using uq_spans_trace_row_id_span_id on spans" in plan, plan
            assert "Seq Scan" not in plan, plan
    # the bound: the user's traces newest first, from their lookup rows (SQLite: alone, in
    # their order; PostgreSQL may sort a few unvacuumed rows rather than visit the heap in order)
    assert re.search(
        r"(SEARCH trace_lookups USING PRIMARY KEY|Index (Only )?Scan Backward using|Bitmap Index Scan on) "
        r"(\(project_id=\? AND kind=\? AND value=\?|pk_trace_lookups)",
        floors,
    ), floors
    assert ("SCAN" if sqlite else "Seq Scan") not in floors, floors
    assert "USE TEMP B-TREE" not in floors, floors
    assert ("SCAN spans" if sqlite else "Seq Scan on spans") not in planned, planned
    assert ("SCAN traces" if sqlite else "Seq Scan on traces") not in planned, planned
    for plan in walks:  # environment and release: a span's own value counts, so the walk
        if sqlite:
            assert "SEARCH spans USING INDEX ix_spans_project_id_start_time_unix_nano" in plan, plan
            assert "SEARCH traces USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
            assert "SCAN" not in plan, plan
        else:
            # one of the spans' project-leading indexes (a tiny table may prefer a narrower one
            # than the covering start-time index for a bitmap scan)
            assert re.search(
                r"(Index Scan (Backward )?using|Bitmap Index Scan on) ix_spans_project_id_", plan
            ), plan
            assert "Index Scan using pk_traces on traces" in plan, plan
            assert "(id = spans.trace_row_id)" in plan, plan
            assert "Seq Scan on spans" not in plan, plan
            assert "Seq Scan on traces" not in plan, plan
