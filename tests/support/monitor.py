"""Monitoring test helpers: an app whose worker the test drives, and real receivers on
loopback (a webhook server, an SMTP sink) that alerts are sent to."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.keys import new_key
from tests.support.servers import free_port
from watchkeep.api.wiring import Services
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.devtools.synthetic_calls import Traffic, generate, write
from watchkeep.store.projects import ProjectRepository

NS = 1_000_000_000
LOOPBACK = ["127.0.0.0/8"]  # the receivers below live there: the operator allow-lists it


@dataclass
class MonitorApi:
    """An app (worker loop not started: tests call ``run_once``) and an admin key."""

    app: FastAPI
    client: TestClient
    key: str
    project_id: int
    project: str
    database_url: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def services(self) -> Services:
        svc: Services = self.app.state.services
        return svc

    def auth_for(self, role: str) -> dict[str, str]:
        """Headers with a new key of ``role`` in this project."""
        return {"Authorization": f"Bearer {new_key(self.database_url, role, self.project)}"}

    def add_channel(self, channel: dict[str, Any]) -> None:
        """Create an alert channel."""
        created = self.client.post("/api/v1/alert-channels", json=channel, headers=self.auth)
        assert created.status_code == 201, created.text

    def add_monitor(self, spec: dict[str, Any]) -> int:
        """Create a monitor; its id."""
        created = self.client.post("/api/v1/monitors", json=spec, headers=self.auth)
        assert created.status_code == 201, created.text
        return int(created.json()["id"])

    def fill(self, n: int, start_ns: int, end_ns: int, traffic: Traffic | None = None, seed: int = 0) -> None:
        """Store ``n`` generated LLM calls of this project in [start, end)."""
        write(
            self.services.engine, generate(self.project_id, n, start_ns, end_ns, traffic or Traffic(), seed)
        )


def no_calls_monitor(channel: str, **fields: Any) -> dict[str, Any]:
    """A metric monitor that alerts on its first pass (fewer than one request, no minimum
    sample), delivering to ``channel``; ``fields`` add to or replace its spec."""
    return {
        "name": "no-calls",
        "kind": "metric",
        "metric": "requests",
        "min_samples": 0,
        "severity": "critical",
        "condition": {"op": "<", "alert": 1},
        "channels": [channel],
        **fields,
    }


@contextmanager
def monitor_api(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    """A started app for ``settings`` with its worker loop stopped, and an admin key."""
    app = create_app(settings.model_copy(update={"worker_enabled": False}))
    project = f"mon-{uuid.uuid4().hex[:10]}"
    key = new_key(database_url, "admin", project)
    with TestClient(app) as client:
        svc: Services = app.state.services
        project_id = ProjectRepository(svc.engine).get_or_create(project).id
        api = MonitorApi(app, client, key, project_id, project, database_url)
        yield api
        # A worker evaluates every project's due monitors: leave none behind for the next test
        # that shares this database.
        for monitor in client.get("/api/v1/monitors", headers=api.auth).json()["items"]:
            client.delete(f"/api/v1/monitors/{monitor['id']}", headers=api.auth)


class Receiver:
    """A webhook receiver on loopback that records what it was sent and answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(b) for _, b in self.requests]


@contextmanager
def running_receiver(status: int = 204) -> Iterator[Receiver]:
    receiver = Receiver(status)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


class Mailbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def running_mailbox(**controller_options: Any) -> Iterator[tuple[Mailbox, int]]:
    """An SMTP sink on loopback (``controller_options``: aiosmtpd's, e.g. a TLS context)."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **controller_options)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def fire(mon: MonitorApi, channels: list[str]) -> list[dict[str, Any]]:
    """Make a monitor naming ``channels`` fire once; the deliveries of its alert."""
    spec = {
        "name": "no-calls",
        "kind": "metric",
        "metric": "requests",
        "min_samples": 0,
        "condition": {"op": "<", "alert": 1},
        "channels": channels,
    }
    assert mon.client.post("/api/v1/monitors", json=spec, headers=mon.auth).status_code == 201
    assert mon.services.monitoring.worker.run_once(time.time_ns()).notifications == 1
    history = mon.client.get("/api/v1/alerts", headers=mon.auth).json()["items"]
    deliveries: list[dict[str, Any]] = history[0]["deliveries"]
    return deliveries
