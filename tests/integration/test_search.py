"""Full-text search of prompt and response text through the trace and span lists.

The index is filled off the ingest path (``SearchIndexer``); tests run it to completion
instead of waiting for its thread, then query through the API on both databases.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from tests.support.apps import Api
from tests.support.fuzz import examples
from tests.support.keys import new_key
from tests.support.otlp_json import attr, chat_trace, two_span_trace
from tests.support.otlp_post import post_spans as post
from tests.support.people import project_of_key
from tests.support.tenant import unique
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.security.crypto import new_key as new_encryption_key
from watchkeep.store.engine import make_engine
from watchkeep.store.project_deletion import delete_project
from watchkeep.store.text_search import SearchIndexer, lexemes, payload_text, query_words


def index(api: Api) -> None:
    api.app.state.services.search.catch_up()


def get(api: Api, path: str, key: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else api.auth
    response = api.client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_search_finds_traces_and_spans_by_prompt_and_answer(api: Api) -> None:
    post(api.client, api.key, chat_trace(1, "How do I reset my Password?", "Use the settings page."))
    post(api.client, api.key, chat_trace(2, "Tell me about zebras", "Zebras have stripes."))
    post(api.client, api.key, chat_trace(3, "user role assistant", "nothing here"))
    index(api)
    traces = get(api, "/api/v1/traces", q="password reset")
    assert [t["trace_id"] for t in traces["items"]] == [f"{1:032x}"]
    spans = get(api, "/api/v1/spans", q="STRIPES")
    assert [(s["trace_id"], s["name"]) for s in spans["items"]] == [(f"{2:032x}", "chat")]
    assert get(api, "/api/v1/spans", q="password zebras")["items"] == []  # every word must match
    # JSON structure is not text: roles do not match every message
    assert [t["trace_id"] for t in get(api, "/api/v1/traces", q="role")["items"]] == [f"{3:032x}"]
    assert get(api, "/api/v1/traces", q="!!! ---")["items"] == []  # no word: nothing, not everything
    combined = get(api, "/api/v1/traces", q="zebras", status="error")
    assert combined["items"] == []


def test_search_never_crosses_projects(api: Api, database_url: str) -> None:
    """Project B searching A's words finds nothing, even with both indexed."""
    post(api.client, api.key, chat_trace(4, "secret launch codes alpha", "ok"))
    other = new_key(database_url, project=unique("tenant-b"))
    post(api.client, other, chat_trace(5, "public notes", "fine"))
    index(api)
    assert get(api, "/api/v1/traces", key=other, q="launch codes")["items"] == []
    assert get(api, "/api/v1/spans", key=other, q="secret")["items"] == []
    assert len(get(api, "/api/v1/traces", q="launch codes")["items"]) == 1
    assert len(get(api, "/api/v1/traces", key=other, q="public")["items"]) == 1


def test_deleting_a_project_deletes_its_index_rows(api: Api, database_url: str) -> None:
    name = unique("doomed")
    key = new_key(database_url, project=name)
    post(api.client, key, chat_trace(6, "ephemeral marmalade", "gone soon"))
    index(api)
    assert len(get(api, "/api/v1/spans", key=key, q="marmalade")["items"]) == 1
    engine = make_engine(database_url)
    try:
        deleted = delete_project(engine, name)
        assert deleted is not None
        assert deleted.index_rows == 1
        table = "search_fts" if engine.url.drivername.startswith("sqlite") else "search_documents"
        with engine.connect() as conn:
            left = conn.exec_driver_sql(
                f"SELECT count(*) FROM {table} WHERE project_id = {deleted.project_id}"
            )
            assert left.scalar() == 0
    finally:
        engine.dispose()


def test_the_index_holds_each_documents_distinct_words_not_its_text(api: Api) -> None:
    """SQLite's FTS5 table keeps what it indexes as its content: the distinct words, not
    the whole text (a third less, ADR 0030); PostgreSQL's tsvector holds them anyway."""
    post(api.client, api.key, chat_trace(31, "Tea, tea and more TEA? Crème brûlée!", "tea"))
    index(api)
    engine = make_engine(api.database_url)
    try:
        project = project_of_key(engine, api.key)[0]  # other tests' projects send trace 31 too
        with engine.connect() as conn:
            (span_id,) = conn.exec_driver_sql(
                "SELECT s.id FROM spans s JOIN span_payloads p ON p.span_row_id = s.id "
                f"WHERE s.project_id = {project} AND s.trace_id = '{31:032x}'"
            ).one()
            if engine.url.drivername.startswith("sqlite"):
                stored = conn.exec_driver_sql(f"SELECT body FROM search_fts WHERE rowid = {span_id}")
            else:
                stored = conn.exec_driver_sql(
                    f"SELECT array_to_string(tsvector_to_array(document), ' ') FROM search_documents "
                    f"WHERE span_row_id = {span_id}"
                )
            words = str(stored.scalar_one()).split()
    finally:
        engine.dispose()
    assert sorted(words) == ["and", "brûlée", "crème", "more", "tea"]
    queries = ["TEA", "crème brûlée", "brûlée more"]
    if api.database_url.startswith("sqlite"):
        queries.append("creme brulee")  # unicode61 folds diacritics; PostgreSQL does not (ADR 0030)
    for q in queries:
        assert len(get(api, "/api/v1/spans", q=q)["items"]) == 1, q


def test_indexing_passes_every_new_span_once(api: Api) -> None:
    """A second indexer over the same store finds nothing left to do."""
    post(api.client, api.key, chat_trace(7, "first batch", "a"))
    index(api)
    post(api.client, api.key, chat_trace(8, "second batch", "b"))
    index(api)
    assert len(get(api, "/api/v1/spans", q="batch")["items"]) == 2
    engine = make_engine(api.database_url)
    try:
        assert SearchIndexer(engine).catch_up() == 0
    finally:
        engine.dispose()


def test_messages_sent_as_log_records_after_the_span_are_found(api: Api) -> None:
    """An LLM span indexed before its GenAI events arrive is indexed again once they do."""
    spans, records = InMemorySpanExporter(), InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(records))
    logger = logger_provider.get_logger("opentelemetry.instrumentation.openai_v2")
    with tracer_provider.get_tracer("t").start_as_current_span("chat") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        logger.emit(event_name="gen_ai.user.message", body={"content": "Which quokka?"})
        logger.emit(
            event_name="gen_ai.choice",
            body={"index": 0, "finish_reason": "stop", "message": {"content": "The happiest."}},
        )
    protobuf = {**api.auth, "Content-Type": "application/x-protobuf"}
    sent = encode_spans(spans.get_finished_spans()).SerializeToString()
    assert api.client.post("/v1/traces", content=sent, headers=protobuf).status_code == 200
    index(api)
    assert get(api, "/api/v1/spans", q="quokka")["items"] == []
    logs = encode_logs(records.get_finished_logs()).SerializeToString()
    assert api.client.post("/v1/logs", content=logs, headers=protobuf).status_code == 200
    index(api)
    assert [s["name"] for s in get(api, "/api/v1/spans", q="quokka happiest")["items"]] == ["chat"]


def test_payload_text_keeps_words_not_structure() -> None:
    raw = json.dumps([{"role": "system", "content": [{"type": "text", "text": "be brief"}]}])
    assert payload_text(raw) == "be brief"
    assert payload_text("plain words") == "plain words"
    assert query_words('"a" OR b* NEAR(c) -d') == ["a", "OR", "b", "NEAR", "c", "d"]


def test_genai_message_attributes_are_searched_as_text_not_json(api: Api) -> None:
    """OpenTelemetry GenAI messages arrive as JSON strings: their words are found (any case,
    cut at punctuation), their structure (roles, keys, types) is not."""
    system = json.dumps([{"type": "text", "content": "Answer as a Pirate would"}])
    turn = json.dumps([{"role": "user", "content": "Where's the Treasure-Map?"}])
    answer = json.dumps(
        [{"role": "assistant", "content": "Under the palm, naïve café 42x.", "finish_reason": "stop"}]
    )
    genai = [
        attr("gen_ai.operation.name", "chat"),
        attr("gen_ai.system_instructions", system),
        attr("gen_ai.input.messages", turn),
        attr("gen_ai.output.messages", answer),
    ]
    post(api.client, api.key, two_span_trace(21, [], genai))
    index(api)
    mine = f"{21:032x}"
    for q in ("pirate", "treasure map", "MAP where", "naïve café", "42x", "palm under"):
        assert mine in [t["trace_id"] for t in get(api, "/api/v1/traces", q=q)["items"]], q
    for q in ("role", "content", "user", "stop", "type text"):
        assert mine not in [t["trace_id"] for t in get(api, "/api/v1/traces", q=q)["items"]], q


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_lexemes_of_ascii_text_as_of_any_text(body: str) -> None:
    """The ASCII shortcut cuts words as the general path does (a non-ASCII word forces it)."""
    words = lexemes(body).split()
    assert len(words) == len(set(words))
    assert all(w.isalnum() and w == w.lower() for w in words)
    assert set(words) == set(lexemes(body + " é").split()) - {"é"}


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300))
def test_lexemes_are_the_distinct_lowercased_words_of_any_text(body: str) -> None:
    """The byte-table path cuts words as the Unicode rule over the whole text does."""
    reference = {w for w in re.findall(r"[^\W_]+", body.lower()) if len(w.encode()) < 2047}
    assert sorted(lexemes(body).split()) == sorted(reference)
    assert sorted(lexemes(f"{body} İstanbul→café, a_b").split()) == sorted(
        reference | {"i", "stanbul", "café", "a", "b"}
    )


def test_lexemes_leave_out_words_postgresql_would_refuse() -> None:
    """A lexeme must stay under 2,047 bytes of UTF-8 (PostgreSQL's MAXSTRLEN), counted in
    bytes, whatever the script: the words at the limit on either side of it."""
    ascii_fits, ascii_long = "a" * 2046, "b" * 2047
    cjk_fits, cjk_long = "中" * 682, "文" * 683  # 2,046 and 2,049 bytes
    assert set(lexemes(f"{ascii_fits} {ascii_long} short").split()) == {ascii_fits, "short"}
    assert set(lexemes(f"{cjk_fits} {cjk_long} short").split()) == {cjk_fits, "short"}
    assert set(lexemes(f"{'é' * 511} {cjk_long} {ascii_long}").split()) == {"é" * 511}
    assert lexemes("") == ""


@settings(
    max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    q=st.one_of(
        st.text(min_size=1, max_size=256),
        st.text(alphabet=list("\"*():^-+{}[]&|!'\\ ANDORTNEAab"), min_size=1, max_size=64),
    )
)
def test_hostile_queries_never_fail(api: Api, q: str) -> None:
    """FTS5 and tsquery syntax in user input is plain text: never a server error."""
    for path in ("/api/v1/traces", "/api/v1/spans"):
        response = api.client.get(path, params={"q": q}, headers=api.auth)
        assert response.status_code in (200, 400, 422), (q, response.text)  # 400: NUL in the URL


def test_payloads_sealed_at_rest_are_opened_for_the_index(settings: Settings, database_url: str) -> None:
    key = SecretStr(new_encryption_key())  # with a key the index is off unless turned on
    sealed = settings.model_copy(update={"encryption_key": key, "search_index": True})
    app = create_app(sealed)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        api = Api(app, client, new_key(database_url), database_url)
        post(api.client, api.key, chat_trace(7, "Where do narwhals live?", "In the Arctic ocean."))
        index(api)
        found = get(api, "/api/v1/traces", q="narwhals arctic")
        assert [t["trace_id"] for t in found["items"]] == [f"{7:032x}"]
