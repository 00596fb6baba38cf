"""A tiny OpenAI-compatible upstream that records what it was sent and answers by path mode.

``/ok/v1/chat/completions`` answers a completion (usage and cost included); ``/garbage/...``
answers text that is not JSON, ``/huge/...`` 9 MiB, ``/nochoices/...`` JSON without choices, ``/429/...`` a rate
limit with ``Retry-After: 7``, ``/500/...`` and ``/400/...`` those statuses.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class EvalUpstream:
    """Serve on loopback in a thread; ``bodies`` and ``headers`` hold what each request carried."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.bodies.append(orjson.loads(raw))
                upstream.headers.append({k.lower(): v for k, v in self.headers.items()})
                mode = self.path.strip("/").split("/", 1)[0]
                if mode == "garbage":
                    self._send(200, b"<html>oops</html>", {"Content-Type": "text/html"})
                elif mode == "huge":
                    self._send(200, b'{"choices": []}' + b" " * (9 * 1024 * 1024))
                elif mode == "nochoices":
                    self._send(200, b'{"id": "x", "choices": []}')
                elif mode == "429":
                    self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "7"})
                elif mode in ("500", "400"):
                    self._send(int(mode), b'{"error": {"message": "upstream says no"}}')
                else:
                    completion = {
                        "id": "c1",
                        "object": "chat.completion",
                        "model": "served-model",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"}}],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "cost": 0.003},
                    }
                    self._send(200, orjson.dumps(completion))

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def __enter__(self) -> EvalUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
