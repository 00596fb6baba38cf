"""Measurement helpers shared by benchmarks/sdk_overhead.py and its peer subprocesses.

Standard library only: the peers run in their own virtual environments.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

CALLS = 20_000
BURST = 50_000
DOWN_CALLS = 5_000
PACE_EVERY = 100  # calls between short pauses: an app does other work between LLM calls
PACE_SECONDS = 0.002


def latency(call: Callable[[], Any], calls: int = CALLS) -> dict[str, float]:
    """p50/p99 in microseconds of ``call`` on this thread, paced like an application."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(2000):  # warm-up
        call()
    time.sleep(0.2)
    for i in range(calls):
        start = clock()
        call()
        samples.append(clock() - start)
        if i % PACE_EVERY == PACE_EVERY - 1:
            time.sleep(PACE_SECONDS)
    samples.sort()
    return {
        "p50": samples[len(samples) // 2] / 1000,
        "p99": samples[int(len(samples) * 0.99)] / 1000,
    }


def burst(call: Callable[[], Any], calls: int = BURST) -> float:
    """Seconds taken by ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return time.perf_counter() - start


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def sink_count(url: str) -> int:
    """Spans a counting sink (``python -m watchkeep.sdk.testing``) has received."""
    with urllib.request.urlopen(url + "/count", timeout=5) as response:
        return int(json.loads(response.read())["spans"])


def wait_for_count(url: str, at_least: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    count = sink_count(url)
    while count < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        count = sink_count(url)
    return count
