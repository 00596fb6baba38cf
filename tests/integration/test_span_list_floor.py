"""The span list by user, session or tags reads only the traces that end after a bound
(``span_list.span_page``) and still pages through exactly the spans of the whole list, the
late spans of long traces included. Ingest refuses a span that ends before it starts; a
trace row still ends no earlier than any of its spans starts (``rows.summarise_traces``,
its property test), and revision 0026 makes stored rows so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text

from tests.support.apps import Api
from tests.support.databases import fresh_database_url
from watchkeep.store import span_list
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import alembic_config
from watchkeep.store.tables import traces

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def _span(
    trace: int, index: int, start_ms: int, end_ms: int, attributes: dict[str, str] | None = None
) -> dict[str, object]:
    out: dict[str, object] = {
        "traceId": f"{trace:032x}",
        "spanId": f"{trace:012x}{index:04x}",
        "name": f"call-{trace}-{index}",
        "startTimeUnixNano": str(T0 + start_ms * MS),
        "endTimeUnixNano": str(T0 + end_ms * MS),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in (attributes or {}).items()],
    }
    if index:
        out["parentSpanId"] = f"{trace:012x}0000"
    return out


def _post(api: Api, spans: list[dict[str, object]]) -> None:
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    response = api.client.post(
        "/v1/traces", content=body, headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def _seed(api: Api) -> None:
    """Alice's traces 1-8 (two spans each, 10 ms apart), Bob's between them; traces 20 and
    21 are Alice's oldest, but their second spans (20's exported later) start after every
    other span."""
    who = {"watchkeep.user.id": "alice", "watchkeep.session.id": "s-alice"}
    model = {"gen_ai.request.model": "gpt-x"}
    for n in range(1, 9):
        extra = model if n % 4 == 0 else {}
        _post(
            api,
            [
                _span(n, 0, 100 + 10 * n, 105 + 10 * n, who),
                _span(n, 1, 101 + 10 * n, 102 + 10 * n, extra),
            ],
        )
        _post(api, [_span(100 + n, 0, 104 + 10 * n, 106 + 10 * n, {"watchkeep.user.id": "bob"})])
    _post(api, [_span(20, 0, 1, 2, who)])
    _post(api, [_span(20, 1, 900, 950, model)])  # the long trace's late span
    _post(api, [_span(21, 0, 3, 4, who), _span(21, 1, 800, 805, model)])


def _ids(api: Api, **params: Any) -> tuple[list[str], str | None]:
    response = api.client.get("/api/v1/spans", params=params, headers=api.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    return [i["span_id"] for i in body["items"]], body["next_cursor"]


def _paged(api: Api, **params: Any) -> list[str]:
    """Every span id of the span list for ``params``, one span a page."""
    paged: list[str] = []
    cursor = None
    for _ in range(40):
        page, cursor = _ids(api, limit=1, **params, **({"cursor": cursor} if cursor else {}))
        paged += page
        if cursor is None:
            return paged
    raise AssertionError(f"more pages than spans: {paged}")


@pytest.mark.parametrize(
    "steps",
    [(1, 8, 64), (1, 2, 3), ()],
    ids=["bounded by the page's newest traces", "bounded in short steps, then one query", "one query"],
)
def test_the_span_list_by_user_pages_through_every_span_of_the_users_traces(
    api: Api, steps: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(span_list, "TRACE_WALK_STEPS", steps)
    _seed(api)
    for params in ({"user_id": "alice"}, {"session_id": "s-alice"}):
        every, _ = _ids(api, limit=100, **params)
        assert every[:2] == [f"{20:012x}0001", f"{21:012x}0001"], params  # the long traces' late spans
        assert sorted(every) == sorted(
            [f"{n:012x}{i:04x}" for n in (*range(1, 9), 20, 21) for i in (0, 1)]
        ), params
        assert _paged(api, **params) == every, params
        assert _ids(api, limit=3, **params)[0] == every[:3], params
    with_model, _ = _ids(api, limit=100, user_id="alice", model="gpt-x")  # most spans rejected
    assert with_model == [f"{n:012x}0001" for n in (20, 21, 8, 4)]
    assert _paged(api, user_id="alice", model="gpt-x") == with_model
    assert _ids(api, user_id="carol")[0] == []


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    return fresh_database_url(request, database_url, tmp_path)


def test_the_migration_ends_each_trace_no_earlier_than_its_spans_start(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    span = (
        "INSERT INTO spans (project_id, trace_id, span_id, name, kind, status_code, start_time_unix_nano, "
        "end_time_unix_nano, duration_ms, ingested_at_unix_nano, trace_row_id) "
        "VALUES (1, :t, :s, 'x', 0, 0, :start, :end, 0, 0, :row)"
    )
    try:
        command.upgrade(alembic_config(fresh_url), "0025")
        with engine.begin() as conn:
            for row, (trace_end, spans) in enumerate(
                [(20, [(10, 20), (15, 12)]), (20, [(10, 20), (40, 30), (35, 5)]), (50, [(10, 50), (40, 30)])],
                1,
            ):
                conn.execute(
                    text(
                        "INSERT INTO traces (id, project_id, trace_id, start_time_unix_nano, end_time_unix_nano, "
                        "has_error) VALUES (:row, 1, :t, 10, :end, false)"
                    ),
                    {"row": row, "t": f"t{row}", "end": trace_end},
                )
                for n, (start, end) in enumerate(spans):
                    conn.execute(
                        text(span), {"t": f"t{row}", "s": f"s{n}", "start": start, "end": end, "row": row}
                    )
        command.upgrade(alembic_config(fresh_url), "head")
        with engine.connect() as conn:
            ends = conn.execute(select(traces.c.id, traces.c.end_time_unix_nano).order_by(traces.c.id)).all()
        assert [tuple(r) for r in ends] == [(1, 20), (2, 40), (3, 50)]  # only trace 2 ended too early
        command.downgrade(alembic_config(fresh_url), "0025")
    finally:
        engine.dispose()
