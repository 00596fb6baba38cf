"""Dataset items built from real ingested traces and from reviewers' ground-truth labels."""

from __future__ import annotations

import time

from sqlalchemy import Engine
from tests.support.apps import Api
from tests.support.otlp_json import SEC, attr
from tests.support.otlp_post import post_spans
from tests.support.people import project_of_key
from tests.support.query_data import llm_trace

from watchkeep.evals.dataset_repository import DatasetRepository
from watchkeep.evals.dataset_sources import items_from_feedback, items_from_traces, trace_item_key
from watchkeep.store.engine import make_engine
from watchkeep.store.trace_queries import TraceFilter, TraceQueries


def _ingest(api: Api, ns: range) -> int:
    t0 = (time.time_ns() // SEC - 600) * SEC
    spans: list[dict[str, object]] = []
    for n in ns:
        spans += llm_trace(n, t0 + n * SEC, error=n % 5 == 0)
    post_spans(api.client, api.key, spans)
    return t0


def _engine(api: Api) -> tuple[Engine, int]:
    engine = make_engine(api.database_url)
    return engine, project_of_key(engine, api.key)[0]


def test_items_from_traces_follow_the_trace_filters(api: Api) -> None:
    _ingest(api, range(1, 7))
    engine, project = _engine(api)
    try:
        queries = TraceQueries(engine)
        items = items_from_traces(queries, project, TraceFilter())
        # Newest trace first, one item per trace, from its chat span.
        assert [i.trace_id for i in items] == [f"{n:032x}" for n in range(6, 0, -1)]
        newest = items[0]
        assert newest.key == trace_item_key(f"{6:032x}")
        assert newest.expected == "answer 6"
        assert "question 6" in str(newest.input)
        assert newest.metadata["span_id"] == f"{6:015x}2"
        assert newest.metadata["model"] == "claude-3-5-haiku"
        # The same filters the traces API takes: model, status, user ...
        odd = items_from_traces(queries, project, TraceFilter(model="gpt-4o"))
        assert sorted(str(i.trace_id) for i in odd) == [f"{n:032x}" for n in (1, 3, 5)]
        errors = items_from_traces(queries, project, TraceFilter(status="error"))
        assert [i.trace_id for i in errors] == [f"{5:032x}"]
        assert len(items_from_traces(queries, project, TraceFilter(), limit=2)) == 2
        bare = items_from_traces(queries, project, TraceFilter(user_id="u1"), with_expected=False)
        assert [i.trace_id for i in bare] == [f"{n:032x}" for n in (4, 1)]
        assert all(i.expected is None for i in bare)
        # Storable as a version, and rebuilding from the same traces is the same version.
        repo = DatasetRepository(engine)
        info, created = repo.create_version(project, "from-traces", items)
        again, created_again = repo.create_version(
            project, "from-traces", items_from_traces(queries, project, TraceFilter())
        )
        assert created
        assert not created_again
        assert again.id == info.id
    finally:
        engine.dispose()


def test_traces_of_another_project_are_never_read(api: Api) -> None:
    _ingest(api, range(1, 3))
    engine, _ = _engine(api)
    other = project_of_key(engine, api.key_for("member", project="elsewhere-ds"))[0]
    try:
        assert items_from_traces(TraceQueries(engine), other, TraceFilter()) == []
        assert items_from_feedback(engine, other, score_name="sentiment") == []
    finally:
        engine.dispose()


def _score(api: Api, body: dict[str, object]) -> None:
    response = api.client.post("/api/v1/scores", json=body, headers=api.auth)
    assert response.status_code == 201, response.text


def test_items_from_feedback_take_the_ground_truth_label(api: Api) -> None:
    _ingest(api, range(1, 5))
    engine, project = _engine(api)
    t1, t2, t3 = (f"{n:032x}" for n in (1, 2, 3))
    _score(api, {"name": "sentiment", "value": "positive", "label": "negative", "trace_id": t1})
    _score(api, {"name": "sentiment", "value": "positive", "label": "positive", "trace_id": t1})
    _score(
        api,
        {
            "name": "sentiment",
            "value": "negative",
            "label": "negative",
            "trace_id": t2,
            "span_id": f"{2:015x}2",
        },
    )
    _score(api, {"name": "sentiment", "value": "positive", "trace_id": t3})  # a prediction, no label
    _score(api, {"name": "other", "value": "x", "label": "y", "trace_id": t3})
    try:
        items = items_from_feedback(engine, project, score_name="sentiment")
        by_trace = {i.trace_id: i for i in items}
        assert set(by_trace) == {t1, t2}
        assert by_trace[t1].expected == "positive"  # the latest label wins
        assert by_trace[t2].expected == "negative"
        assert "question 2" in str(by_trace[t2].input)
        assert by_trace[t2].metadata["span_id"] == f"{2:015x}2"
        assert by_trace[t1].metadata["prediction"] == "positive"
        assert items_from_feedback(engine, project, score_name="sentiment", limit=1)[0].trace_id == t2
        future = time.time_ns() + 3600 * SEC
        assert items_from_feedback(engine, project, score_name="sentiment", since_ns=future) == []
    finally:
        engine.dispose()


def test_messages_are_normalised_for_replay(api: Api) -> None:
    start = (time.time_ns() // SEC - 60) * SEC
    span = {
        "traceId": "cd" * 16,
        "spanId": "ef" * 8,
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + SEC),
        "attributes": [
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.request.model", "gpt-4o"),
            attr("gen_ai.system_instructions", "Be brief."),
            attr(
                "gen_ai.input.messages",
                '[{"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}]',
            ),
            attr(
                "gen_ai.output.messages",
                '[{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}]}]',
            ),
        ],
    }
    post_spans(api.client, api.key, [span])
    engine, project = _engine(api)
    try:
        (item,) = items_from_traces(TraceQueries(engine), project, TraceFilter(trace_id="cd" * 16))
    finally:
        engine.dispose()
    assert item.expected == "Paris."
    assert item.input == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
