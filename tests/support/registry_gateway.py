"""Shared setup of the tests where gateway routes name registered models by alias."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

# The routes file of every such gateway: one plain mock route (the gateway is mounted with it).
FILE = {
    "routes": [{"name": "plain", "deployments": [{"name": "m", "backend": "mock"}]}],
    "allowed_upstream_origins": ["https://api.example.com"],
}
# Two primaries on one alias: a half-applied move would answer v1 and v2 in turn.
TWO_OF_ONE_ALIAS = {
    "deployments": [
        {"name": "a", "backend": "registry", "model": "bot@production", "weight": 1},
        {"name": "b", "backend": "registry", "model": "bot@production", "weight": 1},
    ]
}


def until(probe: Callable[..., Any], timeout: float = 15.0) -> Any:
    """The first truthy value of ``probe`` (polled), or AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def switches(answers: Sequence[str]) -> int:
    """How often one caller's consecutive answers changed (once per alias move when whole)."""
    return sum(1 for _ in itertools.groupby(answers)) - 1
