"""The ingest benchmark's writer probe reads the server's own commit metrics correctly."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from watchkeep.ingest.telemetry import IngestMetrics


@pytest.fixture(scope="module")
def probes() -> ModuleType:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        return importlib.import_module("ingest_probes")
    finally:
        sys.path.pop(0)


def _exposition(commits: list[tuple[float, int]]) -> str:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    for seconds, requests in commits:
        metrics.commit_seconds.observe(seconds)
        metrics.commit_requests.observe(requests)
    metrics.spans.labels("stored").inc(512)  # other families are ignored
    return generate_latest(registry).decode()


def test_counters_before_any_commit_are_zero(probes: ModuleType) -> None:
    assert probes.commit_counters(_exposition([])) == {"seconds": 0.0, "commits": 0.0, "requests": 0.0}


def test_the_share_of_a_round_comes_from_the_counters_read_around_it(probes: ModuleType) -> None:
    before = probes.commit_counters(_exposition([(0.5, 3)]))
    after = probes.commit_counters(_exposition([(0.5, 3), (0.06, 2), (0.04, 1), (0.1, 3)]))
    assert after == pytest.approx({"seconds": 0.7, "commits": 4.0, "requests": 9.0})
    share = probes.writer_share(before, after, wall_s=0.4, latencies_s=[0.1, 0.3, 0.2])
    assert share.busy == pytest.approx(0.5)  # 0.2 s of commits in a 0.4 s round
    assert share.requests_per_commit == pytest.approx(2.0)
    assert share.ms_per_commit == pytest.approx(200 / 3)
    assert share.latency_p50_ms == pytest.approx(200.0)
    assert "writer busy 50%" in share.describe()


def test_a_round_without_commits_has_no_division_by_zero(probes: ModuleType) -> None:
    counters = probes.commit_counters(_exposition([(0.5, 3)]))
    share = probes.writer_share(counters, counters, wall_s=0.0, latencies_s=[])
    assert (share.busy, share.requests_per_commit, share.ms_per_commit, share.latency_p50_ms) == (0, 0, 0, 0)


def test_cpu_of_processes_that_come_and_go_never_shrinks(probes: ModuleType) -> None:
    before = {10: 3.0, 11: 1.0}  # two autovacuum workers running at the first read
    now = {10: 3.5, 12: 0.25}  # 11 ended, 12 started
    assert probes.cpu_grown(before, now) == pytest.approx(0.75)
    assert probes.cpu_grown(now, {}) == 0.0  # every worker ended: nothing known, nothing negative
