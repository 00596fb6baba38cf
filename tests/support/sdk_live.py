"""Helpers for the SDK integration tests: a relay that can take the server away, and a
uniform view of the server's spans (the real server's or the local sink's)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Relay:
    """A TCP relay to ``target``; ``down()`` refuses connections until ``up()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Stop listening (wakes the accept thread) and cut every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open += (client, upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@dataclass
class Backend:
    """What the tests need from a server: where it is, its key, and its spans by trace."""

    url: str
    api_key: str
    spans: Callable[[str], list[dict[str, Any]]]
    real: bool

    def wait_spans(self, trace_id: str, count: int) -> list[dict[str, Any]]:
        """The trace's spans once ``count`` have arrived (or what came within 20 s)."""
        deadline = time.monotonic() + 20
        spans = self.spans(trace_id)
        while len(spans) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            spans = self.spans(trace_id)
        return spans


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def from_live(live: Any) -> Backend:
    def spans(trace_id: str) -> list[dict[str, Any]]:
        """The stored spans, with their typed columns (user_id, input_tokens, ...)."""
        return [{**s, "attributes": s.get("attributes") or {}} for s in live.spans(trace_id)]

    return Backend(str(live.url).rstrip("/"), str(live.api_key), spans, True)
