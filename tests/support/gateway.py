"""Helpers for the gateway's integration tests: a live gateway on a YAML config, and waiting."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from fastapi import FastAPI

from tests.support.keys import new_key
from tests.support.servers import free_port, serve, stop_process
from watchkeep.app import create_app
from watchkeep.config import Settings


@dataclass
class LiveGateway:
    """A running server with the gateway mounted, and a member key of a fresh project."""

    url: str
    key: str
    database_url: str
    app: FastAPI

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.auth, timeout=30)

    def wait_spans(self, trace_id: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """At least ``count`` stored spans of ``trace_id``."""
        deadline = time.monotonic() + timeout
        with self.http() as client:
            while time.monotonic() < deadline:
                items = client.get("/api/v1/spans", params={"trace_id": trace_id}).json()["items"]
                if len(items) >= count:
                    return list(items)
                time.sleep(0.05)
        raise AssertionError(f"fewer than {count} spans stored for trace {trace_id}")

    def wait_span(self, trace_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """The stored gateway span of ``trace_id`` (traces are written in the background)."""
        deadline = time.monotonic() + timeout
        with self.http() as client:
            while time.monotonic() < deadline:
                items = client.get("/api/v1/spans", params={"trace_id": trace_id}).json()["items"]
                primary = [s for s in items if s["name"].startswith(("chat", "embeddings"))]
                if primary:
                    return dict(primary[0])
                time.sleep(0.05)
        raise AssertionError(f"no span stored for trace {trace_id}")


@contextmanager
def live_gateway(
    tmp_path: Path, database_url: str, config: dict[str, Any] | None, **overrides: Any
) -> Iterator[LiveGateway]:
    """Serve a gateway whose routes file holds ``config`` (None: the embedded model)."""
    config_path = None
    if config is not None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        config_path = tmp_path / f"gateway-{uuid.uuid4().hex[:6]}.yaml"
        config_path.write_text(yaml.safe_dump(config), "utf-8")
    settings = Settings(
        home=tmp_path,
        database_url=database_url,
        ingest_decode_workers=0,
        log_format="text",
        key_cache_seconds=30,
        worker_enabled=False,
        gateway_config=config_path,
        **overrides,
    )
    app = create_app(settings)
    port = free_port()
    server, thread = serve(app, port)
    try:
        yield LiveGateway(f"http://127.0.0.1:{port}", new_key(database_url), database_url, app)
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def process(
    args: list[str], ready_url: str | None = None, ready: Any = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, stopped (and reaped) at the end."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {proc.returncode}")
            try:
                if ready_url is not None and httpx.get(ready_url, timeout=1).status_code == 200:
                    break
                if ready is not None and ready():
                    break
            except (httpx.HTTPError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not become ready")
            time.sleep(0.05)
        yield proc
    finally:
        stop_process(proc)


def mock_upstream_args(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "watchkeep.devtools.mock_upstream", "--port", str(port), *extra]


def chat(content: str = "hello", **extra: Any) -> dict[str, Any]:
    """A chat body for the route ``m``."""
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


class RecordingUpstream:
    """An OpenAI-shaped upstream on a loopback port that records what reaches it.

    The first path segment picks the answer: ``/ok/v1`` replies, ``/status401/v1`` and
    ``/status400/v1`` fail with a body holding ``LEAK`` (what a real upstream might echo:
    a key, an internal host), ``/streamerror/v1`` streams an error event holding it,
    ``/slow/v1`` replies after ``slow_s``. ``open_connections`` counts live keep-alive
    connections, so a test can see a client's pool being closed.
    """

    LEAK = "sk-live-LEAKED-0123456789abcdef"

    def __init__(self, host: str = "127.0.0.1", slow_s: float = 1.0) -> None:
        self.authorizations: list[str | None] = []
        self.open_connections = 0
        self.slow_s = slow_s
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with upstream._lock:
                    upstream.open_connections += 1

            def finish(self) -> None:
                super().finish()
                with upstream._lock:
                    upstream.open_connections -= 1

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with upstream._lock:
                    upstream.authorizations.append(self.headers.get("Authorization"))
                mode = self.path.strip("/").split("/", 1)[0]
                if mode.startswith("status"):
                    error = {"error": {"message": f"bad key {upstream.LEAK} for 10.0.0.7", "type": "x"}}
                    self._send(int(mode[6:]), orjson.dumps(error))
                elif mode == "streamerror":
                    first = {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "u",
                        "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
                    }
                    failure = {"error": {"message": f"boom at {upstream.LEAK}"}}
                    events = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in (first, failure))
                    self._send(200, events, "text/event-stream")
                else:
                    if mode == "slow":
                        time.sleep(upstream.slow_s)
                    self._send(200, orjson.dumps(_completion("from the upstream")))

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, mode: str = "ok", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{mode}/v1"

    def __enter__(self) -> RecordingUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-rec",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
    }


def wait_until(probe: Any, timeout: float = 10.0) -> bool:
    """Whether ``probe()`` became truthy within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.05)
    return bool(probe())


def project_of(gw: LiveGateway) -> str:
    """The name of the project of the gateway's member key."""
    return str(gw.app.state.services.keys.verify(gw.key).project_name)
