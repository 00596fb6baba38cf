"""The typed query client (``watchkeep.client``) against a real server on both databases:
every method, every filter, lazy pagination across pages, and the errors it raises."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.keys import new_key
from tests.support.otlp_json import SEC
from tests.support.query_data import send_traces
from tests.support.servers import LiveServer
from watchkeep import client as wkc
from watchkeep.api import schemas
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.monitor import quality, stats
from watchkeep.monitor.metric_queries import METRIC_NAMES

N = 12


class CountingTransport(httpx.HTTPTransport):
    """Counts the requests a client sends (to show iterators fetch lazily)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


@pytest.fixture
def loaded(live_server: LiveServer) -> tuple[LiveServer, int]:
    t0 = send_traces(live_server.url, live_server.api_key, range(1, N + 1))
    return live_server, t0


def post_score(server: LiveServer, **body: Any) -> None:
    with server.client as http:
        response = http.post("/api/v1/scores", json=body)
        assert response.status_code == 201, response.text


def ns(items: Any) -> list[int]:
    return [int(t.name.split("-")[1]) for t in items]


def test_trace_list_filters_and_counters(loaded: tuple[LiveServer, int]) -> None:
    server, t0 = loaded
    with wkc.Client(server.url, server.api_key) as c:
        page = c.list_traces()
        assert ns(page.items) == list(range(N, 0, -1))
        assert page.next_cursor is None
        three = next(t for t in page.items if t.name == "request-3")
        assert isinstance(three, wkc.TraceSummary)
        assert (three.span_count, three.input_tokens, three.output_tokens, three.total_tokens) == (
            2,
            30,
            3,
            33,
        )
        assert three.cost_usd == pytest.approx(0.003)
        assert three.models == ("gpt-4o",)
        assert set(three.tags) == {"t1", "all"}
        assert (three.user_id, three.session_id, three.environment, three.release) == (
            "u0",
            "s1",
            "prod",
            "r1",
        )
        assert three.start_time == datetime.fromtimestamp((t0 + 3 * SEC) / 1e9, tz=UTC)
        assert three.duration_ms == pytest.approx(500)
        expected = {
            "user_id": ("u1", [10, 7, 4, 1]),
            "session_id": ("s0", [12, 10, 8, 6, 4, 2]),
            "environment": ("dev", [12, 11]),
            "release": ("r1", [11, 9, 7, 5, 3, 1]),
            "status": ("error", [10, 5]),
            "name": ("REQUEST-1", [12, 11, 10, 1]),
            "model": ("claude-3-5-haiku", [12, 10, 8, 6, 4, 2]),
            "provider": ("openai", list(range(N, 0, -1))),
            "operation": ("chat", list(range(N, 0, -1))),
            "trace_id": (f"{7:032x}", [7]),
            "tags": (["t0", "all"], [12, 10, 8, 6, 4, 2]),
        }
        for key, (value, want) in expected.items():
            assert ns(c.list_traces(**{key: value}).items) == want, key  # type: ignore[misc]
        window = c.list_traces(
            start_from=datetime.fromtimestamp((t0 + 4 * SEC) / 1e9, tz=UTC),
            start_to=datetime.fromtimestamp((t0 + 7 * SEC) / 1e9, tz=UTC),
        )
        assert ns(window.items) == [6, 5, 4]
        assert ns(c.list_traces(user_id="u1", status="error").items) == [10]
        assert c.list_traces(user_id="nobody").items == ()


def test_iterators_follow_the_cursor_lazily(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded
    transport = CountingTransport()
    with wkc.Client(server.url, server.api_key, transport=transport) as c:
        first = c.list_traces(limit=5)
        assert ns(first.items) == [12, 11, 10, 9, 8]
        assert first.next_cursor
        second = c.list_traces(limit=5, cursor=first.next_cursor)
        assert ns(second.items) == [7, 6, 5, 4, 3]
        transport.paths.clear()
        it = c.iter_traces(page_size=2)
        assert ns(islice(it, 3)) == [12, 11, 10]
        assert len(transport.paths) == 2  # two pages for three items, no more
        assert ns(it) == list(range(9, 0, -1))
        assert len(transport.paths) == 6
        assert ns(c.iter_traces(page_size=5, session_id="s1")) == [11, 9, 7, 5, 3, 1]
        spans = list(c.iter_spans(page_size=5))
        assert len(spans) == 2 * N
        assert len({s.span_id for s in spans}) == 2 * N
        assert [s.start_time_unix_nano for s in spans] == sorted(
            (s.start_time_unix_nano for s in spans), reverse=True
        )
        chats = list(c.iter_spans(page_size=3, name="chat", status="error"))
        assert {s.trace_id for s in chats} == {f"{5:032x}", f"{10:032x}"}
        chat = chats[0]
        assert isinstance(chat, wkc.Span)
        assert chat.status == "error"
        assert chat.request_model == "claude-3-5-haiku"
        assert chat.user_id == "u1"
        assert chat.release == "r0"
        page = c.list_spans(limit=4, user_id="u2")
        assert len(page.items) == 4
        assert page.next_cursor
        assert {s.user_id for s in page.items} == {"u2"}


def test_trace_detail_and_scores(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded
    trace_id = f"{3:032x}"
    for i, (value, label) in enumerate([("pos", "pos"), ("neg", "pos"), ("pos", "pos")]):
        post_score(server, name="sentiment", value=value, label=label, trace_id=trace_id, source="human")
        post_score(server, name="helpful", value=i % 2 == 0, trace_id=f"{4:032x}", comment=f"c{i}")
    with wkc.Client(server.url, server.api_key) as c:
        detail = c.get_trace(trace_id.upper())
        assert detail.trace_id == trace_id
        assert detail.span_count == 2
        (root,) = detail.roots
        assert root.name == "request-3"
        assert [ch.name for ch in root.children] == ["chat"]
        chat = root.children[0]
        assert (chat.input, chat.output) == ("question 3", "answer 3")
        assert chat.cost_usd == pytest.approx(0.003)
        assert chat.input_tokens == 30
        assert [(d, s.name) for d, s in detail.spans()] == [(0, "request-3"), (1, "chat")]
        assert [s.string_value for s in detail.scores] == ["pos", "neg", "pos"]
        scores = c.list_scores(name="sentiment")
        assert [s.string_value for s in scores.items] == ["pos", "neg", "pos"][::-1]
        assert all(s.source == "human" and s.label == "pos" for s in scores.items)
        helpful = list(c.iter_scores(name="helpful", page_size=2))
        assert [s.value for s in helpful] == [1.0, 0.0, 1.0]
        assert [s.comment for s in helpful] == ["c2", "c1", "c0"]
        assert len(list(c.iter_scores(trace_id=trace_id, page_size=1))) == 3
        assert c.list_scores(source="end-user").items == ()
        report = c.quality("sentiment")
        assert report.data_type == "categorical"
        assert report.n == 3
        assert report.classification is not None
        assert report.classification.accuracy.value == pytest.approx(2 / 3)
        assert report.classification.labels == ("neg", "pos")
        rate = c.quality("helpful", confidence=0.9)
        assert rate.rate is not None
        assert rate.rate.value == pytest.approx(2 / 3)
        assert rate.rate.n == 3


def test_metrics_and_series(loaded: tuple[LiveServer, int]) -> None:
    server, t0 = loaded
    start = datetime.fromtimestamp(t0 / 1e9, tz=UTC)
    end = datetime.fromtimestamp((t0 + 20 * SEC) / 1e9, tz=UTC)
    with wkc.Client(server.url, server.api_key) as c:
        m = c.metrics(start=start, end=end)
        assert m.summary["requests"] == N
        assert m.summary["errors"] == 2
        assert m.summary["input_tokens"] == 10 * sum(range(1, N + 1))
        assert m.series == ()
        assert m.bucket_seconds is None
        series = c.metrics(start=start, end=end, bucket_seconds=10, metrics=["requests", "cost_usd"])
        assert [b.values["requests"] for b in series.series] == [9, 3]
        assert series.series[0].start == start
        assert set(series.summary) == {"requests", "cost_usd"}
        only = c.metrics(start=start, end=end, model="gpt-4o")
        assert only.summary["requests"] == 6
        assert c.metrics(start=start, end=end, tags=["t0", "all"]).summary["requests"] == 6
        assert c.metrics(start=start, end=end, release="r1", environment="dev").summary["requests"] == 1


def test_errors_carry_status_and_body(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded
    with wkc.Client(server.url, "wk_not_a_key") as bad, pytest.raises(wkc.AuthenticationError) as e401:
        bad.list_traces()
    assert e401.value.status_code == 401
    assert e401.value.code == "unauthorized"
    assert e401.value.body["error"]["code"] == "unauthorized"
    with wkc.Client(server.url, server.api_key) as c:
        with pytest.raises(wkc.NotFound) as e404:
            c.get_trace("f" * 32)
        assert e404.value.status_code == 404
        assert e404.value.code == "not_found"
        with pytest.raises(wkc.InvalidRequest) as e422:
            c.list_traces(status="broken")  # type: ignore[typeddict-item]
        assert e422.value.status_code == 422
        assert "status" in e422.value.message
        with pytest.raises(wkc.InvalidRequest) as e400:
            c.list_traces(cursor="bm90IGEgY3Vyc29y")
        assert e400.value.status_code == 400
        assert e400.value.code == "invalid_cursor"
        with pytest.raises(ValueError, match="32 hex"):
            c.get_trace("../scores")
    with wkc.Client("http://127.0.0.1:9", server.api_key) as gone, pytest.raises(wkc.TransportError):
        gone.list_traces()


def test_async_client(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded

    async def run() -> tuple[list[int], str, int]:
        async with wkc.AsyncClient(server.url, server.api_key) as c:
            names = [int(t.name.split("-")[1]) async for t in c.iter_traces(page_size=5, environment="prod")]
            detail = await c.get_trace(f"{2:032x}")
            spans = await c.list_spans(limit=1000)
            return names, detail.roots[0].name, len(spans.items)

    names, root, n_spans = asyncio.run(run())
    assert names == list(range(10, 0, -1))
    assert (root, n_spans) == ("request-2", 2 * N)


def test_environment_defaults(loaded: tuple[LiveServer, int], monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = loaded
    monkeypatch.setenv("WATCHKEEP_URL", server.url)
    monkeypatch.setenv("WATCHKEEP_API_KEY", server.api_key)
    with wkc.Client() as c:
        assert c.base_url == server.url
        assert len(c.list_traces().items) == N
    monkeypatch.delenv("WATCHKEEP_API_KEY")
    with pytest.raises(ValueError, match="WATCHKEEP_API_KEY"):
        wkc.Client()


# -- the client cannot fall behind the API --------------------------------------------

OPENAPI = create_app(Settings(home=Path("/nonexistent"), database_url="sqlite://")).openapi()
MIRRORS: dict[type, type[schemas.BaseModel]] = {
    wkc.TraceSummary: schemas.TraceSummaryOut,
    wkc.Span: schemas.SpanOut,
    wkc.SpanNode: schemas.SpanNode,
    wkc.TraceDetail: schemas.TraceDetail,
    wkc.Score: schemas.ScoreOut,
}


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", list(MIRRORS), ids=lambda c: c.__name__)
def test_dataclasses_cover_every_property_of_the_served_schema(cls: type) -> None:
    properties = set(OPENAPI["components"]["schemas"][MIRRORS[cls].__name__]["properties"])
    assert properties <= field_names(cls), f"client lacks {properties - field_names(cls)}"
    for page in ("TracePage", "SpanPage", "ScorePage"):
        assert set(OPENAPI["components"]["schemas"][page]["properties"]) <= field_names(wkc.Page)


def test_report_dataclasses_cover_the_servers() -> None:
    pairs = [
        (wkc.QualityReport, quality.QualityReport),
        (wkc.Estimate, stats.Estimate),
        (wkc.ClassMetrics, stats.ClassMetrics),
        (wkc.ClassificationReport, stats.ClassificationReport),
    ]
    for ours, theirs in pairs:
        assert field_names(theirs) <= field_names(ours), ours.__name__  # type: ignore[arg-type]


def query_params(path: str) -> set[str]:
    return {p["name"] for p in OPENAPI["paths"][path]["get"]["parameters"] if p["in"] == "query"}


def test_filters_cover_every_query_parameter() -> None:
    every = wkc.TraceFilter(
        **{
            f.name: ["x"] if f.name == "tags" else {"k": "v"} if f.name == "metadata" else "x"
            for f in dataclasses.fields(wkc.TraceFilter)
        }
    )
    sent = {name for name, _ in every.params()} | {"limit", "cursor"}
    for path in ("/api/v1/traces", "/api/v1/spans"):
        assert query_params(path) <= sent, f"{path}: client lacks {query_params(path) - sent}"
    assert query_params("/api/v1/scores") <= {
        "name", "trace_id", "source", "created_from", "created_to", "limit", "cursor",
    }  # fmt: skip
    metrics = {"from", "to", "bucket_seconds", "metrics", "tags"}
    calls = {"model", "model_version", "prompt_version", "route", "environment", "release", "provider"}
    assert query_params("/api/v1/metrics") <= metrics | calls
    assert query_params("/api/v1/quality") <= {"name", "from", "to", "model", "confidence"}
    assert set(METRIC_NAMES) >= {"requests", "cost_usd"}


def test_imports_without_the_server_extra() -> None:
    """``watchkeep.client`` with fastapi, pydantic, sqlalchemy and the rest unimportable."""
    code = textwrap.dedent(
        """
        import sys
        from importlib.abc import MetaPathFinder

        BLOCKED = {"fastapi", "starlette", "pydantic", "pydantic_settings", "sqlalchemy",
                   "alembic", "uvicorn", "typer", "rich", "numpy", "scipy", "pyarrow", "psycopg"}

        class Block(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import watchkeep.client as c
        assert c.Client("http://127.0.0.1:1", "wk_x").base_url == "http://127.0.0.1:1"
        loaded = sorted(m for m in sys.modules if m.startswith("watchkeep"))
        print(" ".join(loaded))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) <= {
        "watchkeep", "watchkeep.client", "watchkeep.client.errors", "watchkeep.client.models",
        "watchkeep.client.query", "watchkeep.semconv",
        "watchkeep.client.evals", "watchkeep.client.eval_models",
    }  # fmt: skip


class CuttingTransport(httpx.HTTPTransport):
    """Passes requests to the real server but keeps only the first ``lines`` lines of each
    answer: a connection that dropped midway through an export."""

    def __init__(self, lines: int, partial: int = 0) -> None:
        super().__init__()
        self.lines = lines
        self.partial = partial  # bytes of the next line kept too

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        kept = response.read().splitlines(keepends=True)
        body = b"".join(kept[: self.lines]) + b"".join(kept[self.lines :])[: self.partial]
        return httpx.Response(
            response.status_code, headers={"content-type": "application/x-ndjson"}, content=body
        )


def test_export_streams_every_span_with_filters(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded
    with wkc.Client(server.url, server.api_key) as c:
        exported = list(c.export_spans())
        assert exported == list(c.iter_spans(page_size=7))  # the same spans, fields and order
        assert len(exported) == 2 * N
        assert all(isinstance(s, wkc.Span) for s in exported)
        errors = [(s.trace_id, s.name) for s in c.export_spans(status="error", user_id="u1")]
        assert errors == [(f"{10:032x}", "chat")]
        tagged = {s.trace_id for s in c.export_spans(tags=["t1", "all"], environment="prod")}
        assert tagged == {s.trace_id for s in c.iter_spans(tags=["t1", "all"], environment="prod")}
        assert tagged
        assert list(c.export_spans(start_to="2000-01-01T00:00:00Z")) == []
    with server.client as http:
        response = http.get("/api/v1/export", params={"trace_id": f"{3:032x}"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    *spans, trailer = [orjson.loads(line) for line in response.content.splitlines()]
    assert trailer == {"_end": True, "count": 2}
    listed = server.spans(f"{3:032x}")
    assert spans == listed


def test_export_detects_a_cut_stream(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded
    for keep in (0, 5, 2 * N):  # nothing, midway, every span but not the trailer
        with wkc.Client(server.url, server.api_key, transport=CuttingTransport(keep)) as c:
            got: list[wkc.Span] = []
            with pytest.raises(wkc.IncompleteExport, match=f"after {keep} spans"):
                got.extend(c.export_spans())
            assert len(got) == keep
    cut_mid_line = CuttingTransport(3, partial=40)
    with (
        wkc.Client(server.url, server.api_key, transport=cut_mid_line) as c,
        pytest.raises(wkc.IncompleteExport, match="after 3 spans, within a line"),
    ):
        list(c.export_spans())
    with wkc.Client(server.url, server.api_key, transport=CuttingTransport(2 * N + 1)) as c:
        assert len(list(c.export_spans())) == 2 * N
    with wkc.Client(server.url, server.api_key, transport=CuttingTransport(5)) as c:
        rows: list[dict[str, object]] = []
        with pytest.raises(wkc.IncompleteExport, match="after 5 spans"):
            rows.extend(row for batch in c.export_rows() for row in batch)
        assert len(rows) == 5


def test_export_rows_are_the_spans_as_json(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded
    with wkc.Client(server.url, server.api_key) as c:
        rows = [row for batch in c.export_rows(status="error") for row in batch]
        assert [wkc.Span.from_json(r) for r in rows] == list(c.export_spans(status="error"))
    assert rows
    assert all(str(r["start_time"]).endswith("Z") for r in rows)  # plain JSON, not parsed

    async def run() -> list[dict[str, object]]:
        async with wkc.AsyncClient(server.url, server.api_key) as c:
            return [row async for batch in c.export_rows(status="error") for row in batch]

    assert asyncio.run(run()) == rows


def test_export_is_scoped_to_the_keys_project(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded
    other = new_key(server.database_url)
    send_traces(server.url, other, range(100, 102))
    with wkc.Client(server.url, other) as b:
        theirs = list(b.export_spans())
        assert {s.trace_id for s in theirs} == {f"{100:032x}", f"{101:032x}"}
        assert list(b.export_spans(trace_id=f"{3:032x}")) == []
    with wkc.Client(server.url, server.api_key) as a:
        assert len(list(a.export_spans())) == 2 * N


def test_async_export(loaded: tuple[LiveServer, int]) -> None:
    server, _ = loaded

    async def run() -> list[wkc.Span]:
        async with wkc.AsyncClient(server.url, server.api_key) as c:
            return [s async for s in c.export_spans(environment="dev")]

    spans = asyncio.run(run())
    assert {s.trace_id for s in spans} == {f"{11:032x}", f"{12:032x}"}
    assert len(spans) == 4
    with pytest.raises(wkc.AuthenticationError):
        asyncio.run(_export_with_key(server.url, "wk_unknownunkno_nope"))


async def _export_with_key(url: str, key: str) -> None:
    async with wkc.AsyncClient(url, key) as c:
        async for _ in c.export_spans():
            pass
