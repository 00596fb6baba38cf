"""The ``span_metadata`` side table (ADR 0028) on both databases: the metadata filter finds
the traces it found before, replays add no rows, and every deletion path removes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text

from tests.support.apps import Api
from tests.support.databases import fresh_database_url
from tests.support.otlp_json import T0, attr, two_span_trace
from tests.support.otlp_post import post_spans as post
from watchkeep.security.keys import key_prefix
from watchkeep.store import span_list, trace_queries
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import alembic_config
from watchkeep.store.project_deletion import delete_project
from watchkeep.store.retention_queries import RetentionQueries
from watchkeep.store.tables import api_keys, projects, span_metadata


def _ids(api: Api, path: str, **params: Any) -> tuple[list[str], str | None]:
    response = api.client.get(path, params=params, headers=api.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    return [i.get("span_id") or i["trace_id"] for i in body["items"]], body.get("next_cursor")


def _project(engine: Engine, key: str) -> int:
    with engine.connect() as conn:
        query = select(api_keys.c.project_id).where(api_keys.c.prefix == key_prefix(key))
        return int(conn.execute(query).scalar_one())


def _paged(api: Api, **params: Any) -> list[str]:
    """Every span id of the span list for ``params``, one span a page."""
    paged: list[str] = []
    cursor = None
    for _ in range(20):
        page, cursor = _ids(api, "/api/v1/spans", limit=1, **params, **({"cursor": cursor} if cursor else {}))
        paged += page
        if cursor is None:
            return paged
    raise AssertionError(f"more pages than spans: {paged}")


def _rows(engine: Engine, project_id: int) -> list[tuple[Any, ...]]:
    m = span_metadata.c
    query = select(m.trace_id, m.span_id, m.key, m.value).where(m.project_id == project_id)
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(query))


CUSTOMER = "watchkeep.metadata.customer"


def model(n: int) -> list[dict[str, object]]:
    """The request model attribute on traces 1 and 2 only."""
    return [attr("gen_ai.request.model", "gpt-x")] if n <= 2 else []


def _seed(api: Api) -> None:
    for n in range(1, 5):  # both pairs on the child span
        post(
            api.client,
            api.key,
            two_span_trace(
                n, [], [*model(n), attr(CUSTOMER, "acme"), attr("watchkeep.metadata.tier", "gold")]
            ),
        )
    # the pairs on different spans of one trace: not a match for both (same span, as before)
    post(
        api.client,
        api.key,
        two_span_trace(5, [*model(1), attr(CUSTOMER, "acme")], [attr("watchkeep.metadata.tier", "gold")]),
    )
    post(
        api.client,
        api.key,
        two_span_trace(6, [attr("watchkeep.metadata.tier", 3), attr("watchkeep.metadata.beta", True)]),
    )
    post(api.client, api.key, two_span_trace(7, [attr("unrelated", "acme")]))


@pytest.mark.parametrize(
    "steps",
    [(256, 4096), (1, 2, 3), ()],
    ids=["walk the side table", "walk in short steps, then one query", "one query"],
)
def test_the_filter_pages_through_traces_with_a_span_holding_every_pair(
    api: Api, steps: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metadata walk (``TraceQueries._metadata_walk``), stopped at any step, and the
    plain query give the same pages."""
    monkeypatch.setattr(trace_queries, "METADATA_WALK_STEPS", steps)
    _seed(api)
    both = {"metadata": ["customer:acme", "tier:gold"], "limit": 2}
    first, cursor = _ids(api, "/api/v1/traces", **both)
    assert first == [f"{4:032x}", f"{3:032x}"]
    second, cursor = _ids(api, "/api/v1/traces", cursor=cursor, **both)
    assert second == [f"{2:032x}", f"{1:032x}"]
    assert cursor is None or _ids(api, "/api/v1/traces", cursor=cursor, **both)[0] == []
    one, _ = _ids(api, "/api/v1/traces", metadata="customer:acme")
    assert sorted(one) == [f"{n:032x}" for n in range(1, 6)]
    assert _ids(api, "/api/v1/traces", metadata=["tier:3", "beta:true"])[0] == [f"{6:032x}"]
    assert _ids(api, "/api/v1/traces", metadata="customer:nobody")[0] == []
    spans, _ = _ids(api, "/api/v1/spans", metadata=["customer:acme", "tier:gold"])
    assert sorted(spans) == [f"{n:015x}2" for n in range(1, 5)]
    # the lower time bound narrows the index range; later traces still match
    late = {"metadata": "customer:acme", "start_from": "2023-11-14T22:13:24Z"}  # T0 + 4 s
    assert T0 // 10**9 + 4 == 1_700_000_004
    assert sorted(_ids(api, "/api/v1/traces", **late)[0]) == [f"{4:032x}", f"{5:032x}"]
    # with another span condition the pair must hold on the span that meets it
    with_model = _ids(api, "/api/v1/traces", metadata="customer:acme", model="gpt-x")[0]
    assert sorted(with_model) == [f"{n:032x}" for n in (1, 2, 5)]
    with_model = _ids(api, "/api/v1/traces", metadata="tier:gold", model="gpt-x")[0]
    assert sorted(with_model) == [f"{n:032x}" for n in (1, 2)]


@pytest.mark.parametrize(
    "steps",
    [(256, 4096), (1, 2, 3), ()],
    ids=["bounded by the range's 256th row", "bounded in short steps, then one query", "one query"],
)
def test_the_span_list_pages_through_the_spans_holding_the_pairs(
    api: Api, steps: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The span list read from span_metadata's range pages newest first, one span a page,
    through exactly the spans the whole list shows, other conditions applied to each span,
    however far down the range ``span_list.span_page`` bounds it."""
    monkeypatch.setattr(span_list, "METADATA_WALK_STEPS", steps)
    _seed(api)
    every, _ = _ids(api, "/api/v1/spans", metadata="customer:acme", limit=100)
    assert sorted(every) == sorted([f"{n:015x}2" for n in range(1, 5)] + [f"{5:015x}1"])
    assert _paged(api, metadata="customer:acme") == every
    starts = [
        s["start_time"]
        for s in api.client.get(
            "/api/v1/spans", params={"metadata": "customer:acme"}, headers=api.auth
        ).json()["items"]
    ]
    assert starts == sorted(starts, reverse=True)
    with_model, _ = _ids(api, "/api/v1/spans", metadata="customer:acme", model="gpt-x", limit=100)
    assert sorted(with_model) == sorted([f"{n:015x}2" for n in (1, 2)] + [f"{5:015x}1"])
    assert _paged(api, metadata="customer:acme", model="gpt-x") == with_model  # most rejected
    assert _ids(api, "/api/v1/spans", metadata="customer:nobody")[0] == []


def test_replays_add_no_rows_and_retention_and_erasure_remove_them(api: Api, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        _seed(api)
        project_id = _project(engine, api.key)
        rows = _rows(engine, project_id)
        assert len(rows) == 4 * 2 + 2 + 2  # non-metadata attributes make no rows
        assert (f"{6:032x}", f"{6:015x}1", "beta", "true") in rows
        _seed(api)  # a replay of every export
        assert _rows(engine, project_id) == rows
        queries = RetentionQueries(engine)
        queries.expire(project_id, "spans", T0 + 3 * 10**9)  # traces 1 and 2
        assert {r[0] for r in _rows(engine, project_id)} == {f"{n:032x}" for n in range(3, 7)}
        post(
            api.client,
            api.key,
            two_span_trace(8, [attr("user.id", "u-9"), attr("watchkeep.metadata.k", "v")]),
        )
        assert any(r[0] == f"{8:032x}" for r in _rows(engine, project_id))
        queries.erase_subject(project_id, "u-9")
        assert not any(r[0] == f"{8:032x}" for r in _rows(engine, project_id))
        with engine.connect() as conn:
            name = conn.execute(select(projects.c.name).where(projects.c.id == project_id)).scalar_one()
        delete_project(engine, name)
        assert _rows(engine, project_id) == []
    finally:
        engine.dispose()


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    """An empty database of the kind of ``database_url``, to migrate from an older revision."""
    return fresh_database_url(request, database_url, tmp_path)


def test_the_migration_backfills_existing_spans(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    attributes = json.dumps(
        {
            "watchkeep.metadata.customer": "acme",
            "watchkeep.metadata.n": 3,
            "watchkeep.metadata.b": False,
            "watchkeep.metadata.z": None,
            "other": "x",
        }
    )
    try:
        command.upgrade(alembic_config(fresh_url), "0020")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO spans (project_id, trace_id, span_id, name, kind, status_code, "
                    "start_time_unix_nano, end_time_unix_nano, duration_ms, attributes, ingested_at_unix_nano) "
                    "VALUES (1, 'ab', 'cd', 's', 0, 0, 5, 6, 0, :a, 0)"
                ),
                {"a": attributes},
            )
        command.upgrade(alembic_config(fresh_url), "head")
        assert _rows(engine, 1) == [
            ("ab", "cd", "b", "false"),
            ("ab", "cd", "customer", "acme"),
            ("ab", "cd", "n", "3"),
        ]
        with engine.connect() as conn:
            assert conn.execute(select(func.min(span_metadata.c.start_time_unix_nano))).scalar() == 5
        command.downgrade(alembic_config(fresh_url), "0020")
    finally:
        engine.dispose()
