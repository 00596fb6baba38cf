"""The search indexer's settings: off (nothing indexed, ``q`` refused with 503), the
per-message character cap, and its lag exported as Prometheus gauges."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support.apps import Api
from tests.support.keys import new_key
from tests.support.otlp_json import chat_trace
from tests.support.otlp_post import post_spans as post
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.store.text_search import IndexLag, SearchIndexer, payload_text


def started(settings: Settings, database_url: str) -> Iterator[Api]:
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        yield Api(client.app, client, new_key(database_url), database_url)  # type: ignore[arg-type]


@pytest.fixture
def search_off(settings: Settings, database_url: str) -> Iterator[Api]:
    yield from started(settings.model_copy(update={"search_index": False}), database_url)


@pytest.fixture
def capped(settings: Settings, database_url: str) -> Iterator[Api]:
    yield from started(settings.model_copy(update={"search_index_max_chars": 40}), database_url)


def test_search_off_indexes_nothing_and_refuses_q(search_off: Api) -> None:
    post(search_off.client, search_off.key, chat_trace(1, "where is my refund", "on its way"))
    services = search_off.app.state.services
    with services.engine.connect() as conn:
        mark = conn.execute(
            text("SELECT position FROM search_index_state WHERE name = 'payload_text'")
        ).scalar_one()
    for path in ("/api/v1/traces", "/api/v1/spans"):
        refused = search_off.client.get(path, params={"q": "refund"}, headers=search_off.auth)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "search_off", refused.text
        assert "WATCHKEEP_SEARCH_INDEX" in refused.json()["error"]["message"]
        assert search_off.client.get(path, headers=search_off.auth).status_code == 200  # without q: served
    assert "watchkeep_search_index_lag" not in search_off.client.get("/metrics").text
    with services.engine.connect() as conn:  # the thread never ran: the mark did not move
        assert (
            conn.execute(
                text("SELECT position FROM search_index_state WHERE name = 'payload_text'")
            ).scalar_one()
            == mark
        )


def test_only_the_first_characters_of_each_message_are_indexed(capped: Api) -> None:
    head = "alpha " * 6  # 36 characters, within the 40 indexed
    post(capped.client, capped.key, chat_trace(1, head + "omega", head + "omega"))
    capped.app.state.services.search.catch_up()
    found = capped.client.get("/api/v1/spans", params={"q": "alpha"}, headers=capped.auth).json()["items"]
    assert [s["trace_id"] for s in found] == [f"{1:032x}"]
    beyond = capped.client.get("/api/v1/spans", params={"q": "omega"}, headers=capped.auth).json()["items"]
    assert beyond == []


def test_payload_text_cuts_each_message_not_the_payload() -> None:
    raw = json.dumps([{"role": "user", "content": "a" * 50}, {"role": "assistant", "content": "b" * 50}])
    assert payload_text(raw, 10) == "a" * 10 + "\n" + "b" * 10
    assert payload_text("not json at all", 3) == "not"


def test_lag_counts_the_spans_waiting(search_off: Api) -> None:
    # No indexing thread runs with search off: the lag is only what this test does.
    indexer = SearchIndexer(search_off.app.state.services.engine)
    indexer.catch_up()
    post(search_off.client, search_off.key, chat_trace(1, "hello", "world"))
    waiting = indexer.lag(max_age=0)
    assert waiting.spans == 2
    assert waiting.seconds > 0
    assert indexer.lag() == waiting  # measured at most once a second
    indexer.catch_up()
    assert indexer.lag(max_age=0) == IndexLag(0, 0.0)


def test_lag_is_exported_while_search_is_on(api: Api) -> None:
    metrics = api.client.get("/metrics").text
    assert "# TYPE watchkeep_search_index_lag_spans gauge" in metrics
    assert "# TYPE watchkeep_search_index_lag_seconds gauge" in metrics


class _SlowThenOvertaken(SearchIndexer):
    """Its first two batches outlast the catch-up's timeout; its third is taken by another
    process's pass (``index_batch`` answers 0 while spans are still waiting)."""

    calls = 0

    def index_batch(self) -> int:
        self.calls += 1
        if self.calls == 3:
            return 0
        if self.calls < 3:
            time.sleep(0.3)
        return super().index_batch()


def test_catch_up_outlasts_its_timeout_while_it_makes_progress(search_off: Api) -> None:
    """``timeout`` bounds waiting without progress, not a backlog: a bulk fill's catch-up
    that met a server's pass after a second gave up on the rest (issue 17, session 33)."""
    engine = search_off.app.state.services.engine
    SearchIndexer(engine).catch_up()
    for n in range(1, 7):
        post(search_off.client, search_off.key, chat_trace(n, f"backlog {n}", "ok"))
    indexer = _SlowThenOvertaken(engine, batch=2)
    indexed = indexer.catch_up(timeout=0.5)
    assert indexed == 12
    assert indexer.lag(max_age=0).spans == 0
