"""The CLI read commands (``traces list|show|tail``, ``scores list``, ``export``) against a
real server on both databases, through typer's runner: what they print and what they write."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

import watchkeep.client as wkc
from tests.support.keys import new_key
from tests.support.otlp_json import SEC
from tests.support.query_data import llm_trace, post_spans, send_traces
from tests.support.servers import LiveServer
from watchkeep.cli.export_writers import COLUMNS, JsonLinesWriter, ParquetWriter, parquet_schema
from watchkeep.cli.main import app
from watchkeep.cli.query_commands import parse_when

N = 12


def run(server: LiveServer, *args: str) -> Result:
    result = CliRunner().invoke(app, [*args, "--url", server.url, "--api-key", server.api_key])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def lines(result: Result) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def loaded(live_server: LiveServer) -> LiveServer:
    send_traces(live_server.url, live_server.api_key, range(1, N + 1))
    return live_server


def test_traces_list_with_filters(loaded: LiveServer) -> None:
    rows = lines(run(loaded, "traces", "list", "--json"))
    assert [r["name"] for r in rows] == [f"request-{n}" for n in range(N, 0, -1)]
    assert rows[-1]["total_tokens"] == 11
    assert set(rows[-1]) >= {"trace_id", "start_time", "cost_usd", "tags", "span_count"}
    cases = {
        ("--user", "u1"): [10, 7, 4, 1],
        ("--session", "s0"): [12, 10, 8, 6, 4, 2],
        ("--environment", "dev"): [12, 11],
        ("--release", "r1"): [11, 9, 7, 5, 3, 1],
        ("--name", "request-1"): [12, 11, 10, 1],
        ("--errors",): [10, 5],
        ("--tag", "t1", "--tag", "all"): [11, 9, 7, 5, 3, 1],
        ("--since", "2h", "--until", "2026-01-01T00:00:00"): [],
        ("--limit", "3"): [12, 11, 10],
    }
    for args, want in cases.items():
        got = [int(r["name"].split("-")[1]) for r in lines(run(loaded, "traces", "list", "--json", *args))]
        assert got == want, args
    table = run(loaded, "traces", "list", "--limit", "600")
    assert "trace id" in table.stdout
    assert "12 trace(s)" in table.stderr


def test_parse_when() -> None:
    now = parse_when("2026-03-01T12:00:00Z")
    assert parse_when("90m", now) == parse_when("2026-03-01T10:30:00+00:00")
    assert parse_when("2d", now).day == 27
    assert parse_when("2026-03-01T12:00:00") == now  # no zone: UTC


def test_traces_show_tree_and_json(loaded: LiveServer) -> None:
    trace_id = f"{5:032x}"
    with loaded.client as http:
        body = {"name": "verdict", "value": "bad", "label": "good", "trace_id": trace_id}
        assert http.post("/api/v1/scores", json=body).status_code == 201
    shown = run(loaded, "traces", "show", trace_id)
    for text in (
        "request-5",
        "chat",
        "gpt-4o",
        "tokens 50→5",
        "$0.005000",
        "question 5",
        "answer 5",
    ):
        assert text in shown.stdout, text
    assert "error" in shown.stdout
    assert "verdict = bad (label good)" in shown.stdout
    (detail,) = lines(run(loaded, "traces", "show", trace_id, "--json"))
    assert detail["span_count"] == 2
    assert detail["roots"][0]["children"][0]["output"] == "answer 5"
    missing = CliRunner().invoke(
        app, ["traces", "show", "f" * 32, "--url", loaded.url, "--api-key", loaded.api_key]
    )
    assert missing.exit_code == 1
    assert "404 not_found" in missing.stderr


def test_tail_prints_each_new_trace_once(loaded: LiveServer) -> None:
    """Traces sent while the tail runs are printed once each, in order; older ones are not."""
    stop = threading.Event()
    sent: list[str] = []

    def send() -> None:
        n = 100
        while not stop.is_set() and n < 160:
            post_spans(loaded.url, loaded.api_key, llm_trace(n, time.time_ns()))
            sent.append(f"{n:032x}")
            n += 1
            stop.wait(0.3)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        result = run(loaded, "traces", "tail", "--json", "--interval", "0.2", "--max-traces", "4")
    finally:
        stop.set()
        sender.join(30)
    got = [r["trace_id"] for r in lines(result)]
    assert len(got) == 4
    assert len(set(got)) == 4
    assert set(got) <= set(sent)
    assert got == sorted(got)  # oldest first, as they arrived
    again = run(loaded, "traces", "tail", "--json", "--since", "10m", "--max-traces", "3", "--user", "u1")
    assert [r["name"] for r in lines(again)] == ["request-1", "request-4", "request-7"]


def test_scores_list(loaded: LiveServer) -> None:
    with loaded.client as http:
        for i in range(3):
            body = {"name": "stars", "value": i + 1, "trace_id": f"{i + 1:032x}", "source": "end-user"}
            assert http.post("/api/v1/scores", json=body).status_code == 201
        body = {"name": "other", "value": True, "trace_id": f"{1:032x}"}
        assert http.post("/api/v1/scores", json=body).status_code == 201
    rows = lines(run(loaded, "scores", "list", "--json", "--name", "stars"))
    assert [r["value"] for r in rows] == [3.0, 2.0, 1.0]
    assert {r["source"] for r in rows} == {"end-user"}
    assert len(lines(run(loaded, "scores", "list", "--json", "--trace-id", f"{1:032x}"))) == 2
    assert len(lines(run(loaded, "scores", "list", "--json", "--limit", "2"))) == 2
    table = run(loaded, "scores", "list")
    assert "stars" in table.stdout
    assert "4 score(s)" in table.stderr


def read_back(fmt: str, path: Path) -> list[dict[str, Any]]:
    """The exported rows with JSON text decoded, so every format compares alike."""
    if fmt == "jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames or ()) == COLUMNS
            rows: list[dict[str, Any]] = [dict(r) for r in reader]
        for r in rows:
            for k in ("tags", "attributes", "resource_attributes", "events"):
                r[k] = orjson.loads(r[k]) if r[k] else None
            for k in ("input_tokens", "output_tokens", "start_time_unix_nano", "kind"):
                r[k] = int(r[k]) if r[k] else None
            r["cost_usd"] = float(r["cost_usd"]) if r["cost_usd"] else None
        return rows
    table = pq.read_table(path)
    assert tuple(table.column_names) == COLUMNS
    rows = table.to_pylist()
    for r in rows:
        for k in ("attributes", "resource_attributes", "events"):
            r[k] = orjson.loads(r[k]) if r[k] is not None else None
        r["start_time"] = r["start_time"].isoformat()
    return rows


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_round_trips(loaded: LiveServer, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"spans.{fmt}"
    result = run(loaded, "export", "--format", fmt, "--output", str(out))
    assert "exported 24 span(s)" in result.stderr
    rows = read_back(fmt, out)
    assert len(rows) == 2 * N
    assert list(rows[0]) == list(COLUMNS)
    assert len({r["span_id"] for r in rows}) == 2 * N
    chat = next(r for r in rows if r["trace_id"] == f"{3:032x}" and r["name"] == "chat")
    assert (chat["input_tokens"], chat["output_tokens"]) == (30, 3)
    assert chat["cost_usd"] == pytest.approx(0.003)
    assert chat["start_time_unix_nano"] > 0
    assert chat["start_time"].startswith(
        time.strftime("%Y-", time.gmtime(chat["start_time_unix_nano"] / SEC))
    )
    assert chat["user_id"] == "u0"  # the trace's attributes on every span
    assert set(chat["tags"]) == {"t1", "all"}
    assert (chat["operation"], chat["provider"], chat["request_model"]) == ("chat", "openai", "gpt-4o")
    assert (chat["status"], chat["parent_span_id"], chat["kind"]) == ("ok", f"{3:015x}1", 3)
    root = next(r for r in rows if r["span_id"] == f"{3:015x}1")
    assert root["input_tokens"] is None
    assert root["session_id"] == "s1"
    filtered = tmp_path / f"errors.{fmt}"
    run(loaded, "export", "--format", fmt, "-o", str(filtered), "--errors", "--user", "u1", "--quiet")
    errors = read_back(fmt, filtered)
    assert [(r["trace_id"], r["name"]) for r in errors] == [(f"{10:032x}", "chat")]


@pytest.fixture
def cutting_proxy(loaded: LiveServer) -> Iterator[str]:
    """A loopback proxy to the server that forwards only the first 5 lines of each answer,
    then closes the connection: an export cut short by the network."""

    class Cut(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            upstream = httpx.get(
                loaded.url + self.path, headers={"Authorization": self.headers["Authorization"]}
            )
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", upstream.headers["content-type"])
            self.end_headers()
            self.wfile.write(b"".join(upstream.content.splitlines(keepends=True)[:5]))

        def log_message(self, *_: Any) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Cut)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{proxy.server_address[1]}"
    proxy.shutdown()
    thread.join(10)


def test_export_fails_on_a_cut_stream(loaded: LiveServer, cutting_proxy: str, tmp_path: Path) -> None:
    out = tmp_path / "spans.jsonl"
    args = ["export", "-o", str(out), "--quiet", "--url", cutting_proxy, "--api-key", loaded.api_key]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "after 5 spans" in result.stderr
    assert "exported" not in result.stderr
    assert not out.exists()  # no partial file left to pass for a whole one


def test_export_is_scoped_to_the_keys_project(loaded: LiveServer, tmp_path: Path) -> None:
    other = LiveServer(loaded.url, new_key(loaded.database_url), loaded.database_url, loaded.app)
    send_traces(other.url, other.api_key, range(200, 203))
    out = tmp_path / "theirs.jsonl"
    assert "exported 6 span(s)" in run(other, "export", "-o", str(out), "--quiet").stderr
    rows = read_back("jsonl", out)
    assert {r["trace_id"] for r in rows} == {f"{n:032x}" for n in range(200, 203)}


def test_export_files_hold_what_the_typed_spans_hold(loaded: LiveServer, tmp_path: Path) -> None:
    """The writers work on the server's JSON rows; the file is what the ``Span`` gives."""
    out = tmp_path / "spans.jsonl"
    run(loaded, "export", "-o", str(out), "--quiet")
    with wkc.Client(loaded.url, loaded.api_key) as c:
        spans = list(c.export_spans())
    expected = [
        orjson.dumps({**{n: getattr(s, n) for n in COLUMNS}, "start_time": s.start_time.isoformat()})
        for s in spans
    ]
    assert out.read_bytes().splitlines() == expected


def test_writers_take_rows_in_any_key_order_and_keep_types(tmp_path: Path) -> None:
    base: dict[str, Any] = dict.fromkeys(COLUMNS)
    base.update(trace_id="a" * 32, span_id="b" * 16, name="x", kind=1, status_code=0, status="unset")
    base.update(start_time_unix_nano=1, end_time_unix_nano=2, duration_ms=0.5)
    rows = [
        {**base, "start_time": "2026-01-02T03:04:05.000006Z"},
        dict(reversed({**base, "start_time": "2026-01-02T03:04:05+00:00", "tags": ["t"]}.items())),
    ]
    with (tmp_path / "r.jsonl").open("wb") as f:
        JsonLinesWriter(f).write(rows)
    written = [orjson.loads(line) for line in (tmp_path / "r.jsonl").read_bytes().splitlines()]
    assert [list(r) for r in written] == [list(COLUMNS)] * 2
    assert [r["start_time"] for r in written] == [
        "2026-01-02T03:04:05.000006+00:00",
        "2026-01-02T03:04:05+00:00",
    ]
    writer = ParquetWriter(tmp_path / "r.parquet", row_group_rows=1)
    writer.write(rows[:1])  # a group whose tags and costs are all null
    writer.write(rows[1:])
    writer.close()
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.schema.equals(parquet_schema())
    assert pq.ParquetFile(tmp_path / "r.parquet").metadata.num_row_groups == 2
    assert table.column("tags").to_pylist() == [None, ["t"]]
