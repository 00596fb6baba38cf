"""A local OTLP/HTTP sink that records what the SDK sends: for tests, examples, benchmarks.

It speaks the server contract the SDK relies on (``POST /v1/traces`` protobuf or JSON,
``POST /api/v1/scores``, bearer auth) and can be told to fail (any status, optional
``Retry-After``) or to go down and come back on the same port. ``ChatStubServer`` is a
canned OpenAI-compatible chat endpoint for instrumentation tests. Not for production.
"""

from __future__ import annotations

import argparse
import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def attribute_value(value: Any) -> Any:
    """A decoded OTLP ``AnyValue`` as plain Python."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [attribute_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: attribute_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    """One span as the sink decoded it (ids as hex, attributes as a dict)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str
    start_ns: int
    end_ns: int


def decode_spans(request: Any) -> list[ReceivedSpan]:
    spans = []
    for rs in request.resource_spans:
        resource = {kv.key: attribute_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex() or None,
                        name=s.name,
                        kind=s.kind,
                        attributes={kv.key: attribute_value(kv.value) for kv in s.attributes},
                        status_code=s.status.code,
                        status_message=s.status.message,
                        events=[
                            (e.name, {kv.key: attribute_value(kv.value) for kv in e.attributes})
                            for e in s.events
                        ],
                        resource=resource,
                        scope=ss.scope.name,
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                    )
                )
    return spans


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    remaining: int | None  # None: until cleared


@dataclass
class SinkState:
    spans: list[ReceivedSpan] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    span_count: int = 0
    failure: _Failure | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class OtlpSink:
    """Threaded HTTP server on 127.0.0.1; ``url`` is the endpoint to give ``init``."""

    def __init__(self, api_key: str | None = None, *, keep_spans: bool = True, port: int = 0) -> None:
        self.api_key = api_key
        self.keep_spans = keep_spans
        self.state = SinkState()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> OtlpSink:
        server = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler())
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: connections are refused until ``start`` (same port) is called again."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # --- behaviour --------------------------------------------------------------------
    def fail(self, status: int, *, retry_after: str | None = None, times: int | None = None) -> None:
        """Answer ``status`` to the next ``times`` requests (all, if None)."""
        with self.state.lock:
            self.state.failure = _Failure(status, retry_after, times)

    def recover(self) -> None:
        with self.state.lock:
            self.state.failure = None

    # --- inspection -------------------------------------------------------------------
    @property
    def spans(self) -> list[ReceivedSpan]:
        with self.state.lock:
            return list(self.state.spans)

    @property
    def scores(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.scores)

    @property
    def span_count(self) -> int:
        return self.state.span_count

    def wait_for(self, predicate: Callable[[OtlpSink], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                state = sink.state
                with state.lock:
                    state.requests += 1
                    failure = state.failure
                    if failure is not None and failure.remaining is not None:
                        failure.remaining -= 1
                        if failure.remaining <= 0:
                            state.failure = None
                if failure is not None:
                    extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                    self._reply(failure.status, headers=extra)
                    return
                if sink.api_key and self.headers.get("Authorization") != f"Bearer {sink.api_key}":
                    self._reply(401)
                    return
                if self.path.endswith("/scores"):
                    with state.lock:
                        state.scores.append(orjson.loads(body))
                    self._reply(201)
                    return
                request = ExportTraceServiceRequest()
                try:
                    if "json" in (self.headers.get("Content-Type") or ""):
                        json_format.Parse(body, request)
                    else:
                        request.ParseFromString(body)
                except Exception:  # not OTLP (a peer SDK's other endpoints): accept, count 0
                    self._reply(200)
                    return
                if sink.keep_spans:
                    spans = decode_spans(request)
                    with state.lock:
                        state.spans.extend(spans)
                        state.span_count += len(spans)
                else:
                    count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
                    with state.lock:
                        state.span_count += count
                self._reply(200)

            def do_GET(self) -> None:
                """``GET /count``: spans received so far (for a sink in another process)."""
                self._reply(
                    200,
                    orjson.dumps({"spans": sink.state.span_count, "requests": sink.state.requests}),
                )

        return Handler


# --- an OpenAI-compatible chat endpoint, for instrumentation tests ------------------
CHAT_MODEL = "stub-model"
CHAT_REPLY = ["Hel", "lo", "!"]


def chat_completion(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": CHAT_MODEL,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "".join(CHAT_REPLY)},
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def chat_stream_body(request: dict[str, Any]) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": CHAT_MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""}, None)]
    chunks += [chunk({"content": part}, None) for part in CHAT_REPLY]
    chunks.append(chunk({}, "stop"))
    if (request.get("stream_options") or {}).get("include_usage"):
        chunks.append(
            {
                "id": "chatcmpl-2",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": CHAT_MODEL,
                "choices": [],
                "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
            }
        )
    events = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]
    return b"".join(events) + b"data: [DONE]\n\n"


def chat_respond(body: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for a POST to /v1/chat/completions."""
    request = orjson.loads(body)
    if request.get("model") == "fail":
        return 500, {"content-type": "application/json"}, b'{"error": {"message": "boom"}}'
    if request.get("stream"):
        return 200, {"content-type": "text/event-stream"}, chat_stream_body(request)
    return 200, {"content-type": "application/json"}, orjson.dumps(chat_completion(request))


class ChatStubServer:
    """``POST /v1/chat/completions`` answered by ``chat_respond`` on 127.0.0.1."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = chat_respond(body)
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(payload))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ChatStubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    """Run a counting sink in the foreground (the benchmark starts one in a subprocess)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sink = OtlpSink(keep_spans=False, port=args.port).start()
    print(sink.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sink.stop()


if __name__ == "__main__":
    main()
