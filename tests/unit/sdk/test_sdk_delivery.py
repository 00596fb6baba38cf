"""Fail-open delivery: spool on failure, replay in order, no loss, bounded waits."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import watchkeep as wk
from watchkeep.sdk.client import Client, install
from watchkeep.sdk.pipeline import Pipeline
from watchkeep.sdk.testing import OtlpSink

API_KEY = "test-key"


@wk.observe(name="unit")
def unit(i: int) -> int:
    return i


def _workload(n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        assert unit(i) == i


def _span_ids(sink: OtlpSink) -> list[str]:
    return [s.span_id for s in sink.spans if s.name == "unit"]


@pytest.fixture
def make_client(home: Path) -> Iterator[object]:
    made: list[Client] = []

    def make(endpoint: str, **settings: object) -> Client:
        settings.setdefault("flush_interval", 0.05)
        settings.setdefault("api_key", API_KEY)
        client = wk.init(endpoint=endpoint, home=home, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(2)
    install({"enabled": False})


def test_server_down_for_the_whole_run_then_up_loses_nothing(sink: OtlpSink, make_client: object) -> None:
    sink.stop()
    client = make_client(sink.url)  # type: ignore[operator]
    _workload(1200)  # no exception reaches the workload
    assert wk.flush(2) is True  # done: everything went to the spool
    stats = client.stats()
    assert stats.exported == 0
    assert stats.spooled == 1200
    assert stats.dropped == 0
    assert stats.spool_files >= 1
    sink.start()  # same port
    assert wk.flush(10)
    ids = _span_ids(sink)
    assert len(ids) == 1200 == len(set(ids))
    stats = client.stats()
    assert stats.replayed == 1200
    assert stats.spool_files == 0


def test_503_with_retry_after_is_spooled_then_replayed_in_order(sink: OtlpSink, make_client: object) -> None:
    client = make_client(sink.url, batch_size=100)  # type: ignore[operator]
    sink.fail(503, retry_after="1")
    for batch in range(3):
        _workload(100)
        wk.flush(2)  # each flush probes once, fails, spools its batch
        assert client.stats().spooled == 100 * (batch + 1)
    sink.recover()
    assert wk.flush(10)
    received = [int(s.attributes["watchkeep.input"].split(":")[1].rstrip("}")) for s in sink.spans]
    assert len(received) == 300
    assert received[:100] == list(range(100))  # oldest file first
    assert client.stats().replayed == 300


def test_burst_beyond_the_queue_spills_instead_of_dropping(
    sink: OtlpSink, make_client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(sink.url, queue_size=256, batch_size=64)  # type: ignore[operator]
    # No export thread at all during the burst: only the callers' spill can keep spans.
    monkeypatch.setattr(Pipeline, "_start", lambda self: None)
    _workload(2000)
    stats = client.stats()
    assert stats.queued <= 256
    assert stats.queued + stats.spooled == 2000
    assert stats.dropped == 0
    monkeypatch.undo()
    assert wk.flush(10)
    assert len(set(_span_ids(sink))) == 2000


def test_rejected_payloads_are_counted_not_retried(sink: OtlpSink, make_client: object) -> None:
    client = make_client(sink.url)  # type: ignore[operator]
    sink.fail(400, times=1)
    _workload(10)
    wk.flush(5)
    _workload(5)
    wk.flush(5)
    stats = client.stats()
    assert stats.rejected == 10
    assert stats.exported == 5
    assert stats.spool_files == 0


def test_bad_key_keeps_data_for_later(
    sink: OtlpSink, make_client: object, caplog: pytest.LogCaptureFixture
) -> None:
    bad = make_client(sink.url, api_key="wrong")  # type: ignore[operator]
    _workload(3)
    wk.flush(5)
    assert bad.stats().spooled == 3
    assert "401" in caplog.text


def test_shutdown_returns_and_spools_when_the_server_hangs(home: Path, make_client: object) -> None:
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(64)  # accepts connections (backlog) but never answers
    try:
        port = hanging.getsockname()[1]
        client = make_client(
            f"http://127.0.0.1:{port}",  # type: ignore[operator]
            export_timeout=30,
        )
        _workload(50)
        assert wk.shutdown(timeout=1.0) is False  # could not deliver in time...
        assert client.stats().spooled == 50  # ...but nothing is lost
        assert client.stats().dropped == 0
    finally:
        hanging.close()


def test_spool_cap_drops_oldest_and_counts(sink: OtlpSink, make_client: object) -> None:
    sink.stop()
    client = make_client(
        sink.url,
        batch_size=50,  # type: ignore[operator]
        spool_max_bytes=20_000,
    )
    for batch in range(10):
        _workload(50, start=batch * 50)
        wk.flush(2)
    stats = client.stats()
    assert stats.dropped > 0
    assert stats.spooled == 500
    sink.start()
    assert wk.flush(10)
    assert len(_span_ids(sink)) == 500 - stats.dropped
    kept = {int(s.attributes["watchkeep.input"][5:-1]) for s in sink.spans}
    assert 499 in kept
    assert 0 not in kept


def test_forked_child_exports_its_own_spans(client: Client, sink: OtlpSink) -> None:
    unit(-1)  # the parent's thread is running before the fork
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            _workload(20)
            code = 0 if wk.flush(5) and client.stats().exported == 20 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    wk.flush(5)
    assert len(_span_ids(sink)) == 21
