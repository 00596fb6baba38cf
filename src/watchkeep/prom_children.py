"""Memoised Prometheus label children for hot paths.

``metric.labels(...)`` validates its values, builds a key and takes the metric's lock on
every call; the gateway called it about eight times a request. Children live as long as
their metric, so they are looked up once per label combination. The memo is bounded
because some label values (HTTP methods, model names) come from clients.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.metrics import MetricWrapperBase


class LabelledChildren:
    """``children(metric, *values)`` is ``metric.labels(*values)``, remembered."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def __call__(self, metric: MetricWrapperBase, *values: str) -> Any:
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*values)
            if len(self._children) < self._limit:
                self._children[key] = child
        return child
