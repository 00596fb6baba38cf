"""Real HTTP servers on loopback: a free port, uvicorn on a thread, and a client view of it."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
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


def run_until(
    command: list[str], env: dict[str, str], done: Callable[[], object], timeout: float = 60
) -> bytes:
    """Run a long-lived command until ``done()`` holds, stop it with SIGTERM and return its
    stderr; fails if it exited early, did not stop cleanly (exit 0) or printed a traceback."""
    from tests.support.gateway import wait_until

    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: bool(done()) or proc.poll() is not None, timeout=timeout)
        assert proc.poll() is None, proc.communicate()[1].decode()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return err
