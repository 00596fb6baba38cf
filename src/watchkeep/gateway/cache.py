"""Exact-match response cache: bounded in entries and bytes, with a time to live.

A key is the digest of the caller's project, the deployment's full identity and the
normalised request (sorted keys; stream flags and the caller's ``user`` removed). The
project keeps tenants apart: one project can neither read another's answers, nor learn
from a hit what another asked, nor plant an answer another will be served (with a
project route shaped like a shared one). The identity (route, backend, origin, upstream
model, version, parameters) means a new model version or another upstream never serves
the old one's answers; it is digested once per deployment, so a request hashes only its
body. Sampled requests (temperature above 0, OpenAI's default is 1) are not cached
unless the route or the request asks. ``max_ttl`` is the operator's ceiling.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from watchkeep.gateway.config import DeploymentSpec

_IGNORED = frozenset({"stream", "stream_options", "user", "model"})


def deployment_identity(route: str, spec: DeploymentSpec) -> bytes:
    """The digest of everything that shapes a deployment's answers (its weight does not)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(route.encode() + b"\x00")
    h.update(spec.model_dump_json(exclude={"weight"}).encode())
    return h.digest()


def cache_key(project_id: int, deployment: bytes, body: dict[str, Any]) -> bytes:
    """The digest that identifies a response, for one project and one deployment identity."""
    normalised = {k: v for k, v in body.items() if k not in _IGNORED}
    h = hashlib.blake2b(project_id.to_bytes(8, "little", signed=True), digest_size=20)
    h.update(deployment)
    h.update(orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS))
    return h.digest()


class ResponseCache:
    """An LRU of response objects (one event loop: no locking)."""

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        max_ttl: float = float("inf"),
    ) -> None:
        self._max_entries = max_entries
        self._max_ttl = max_ttl
        self._max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[bytes, tuple[dict[str, Any], int, float]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        """Approximate bytes held (the JSON size of the responses)."""
        return self._bytes

    def get(self, key: bytes) -> dict[str, Any] | None:
        """The cached response, or None when absent or expired."""
        item = self._items.get(key)
        if item is None:
            return None
        if item[2] < self._clock():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: bytes, value: dict[str, Any], ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds (at most ``max_ttl``), evicting the least recently
        used beyond the bounds."""
        size = len(orjson.dumps(value))
        if size > self._max_bytes or self._max_entries == 0:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (value, size, self._clock() + min(ttl, self._max_ttl))
        self._bytes += size
        while len(self._items) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._items)))

    def _drop(self, key: bytes) -> None:
        _, size, _ = self._items.pop(key)
        self._bytes -= size
