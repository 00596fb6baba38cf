"""Real HTTP servers on loopback: a free port, uvicorn on a thread, and a client view of it."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A real uvicorn server on loopback, for clients that speak HTTP themselves."""

    url: str
    api_key: str
    database_url: str
    app: FastAPI

    @property
    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def trace(self, trace_id: str) -> dict[str, object]:
        with self.client as c:
            response = c.get(f"/api/v1/traces/{trace_id}")
            response.raise_for_status()
            return dict(response.json())

    def spans(self, trace_id: str) -> list[dict[str, object]]:
        """Every stored span of ``trace_id`` (newest first)."""
        with self.client as c:
            response = c.get("/api/v1/spans", params={"trace_id": trace_id, "limit": 1000})
            response.raise_for_status()
            return list(response.json()["items"])


def serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """Run ``app`` with uvicorn on a thread until ``server.should_exit``."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return server, thread


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate a child process and reap it, killing it if it ignores SIGTERM for 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
