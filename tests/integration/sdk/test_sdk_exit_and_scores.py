"""The SDK's promises at process exit and its score API, against the real server.

Exit: a script that never calls ``flush``/``shutdown`` still has its spans stored (the
atexit hook); with the server away at exit they are spooled and the next process with
the same endpoint and key replays them. Scores: ``wk.score`` and ``wk.feedback`` are
stored, listed by ``GET /api/v1/scores``, stored once per idempotency key, and feedback
feeds ``GET /api/v1/quality``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.sdk_live import Backend, Relay

import watchkeep as wk
from watchkeep.sdk.client import Client

# flush_interval is long so that nothing is sent before exit: only the atexit hook can.
SCRIPT = """
import sys
import watchkeep as wk

wk.init(endpoint=sys.argv[1], api_key=sys.argv[2], flush_interval=3600, shutdown_timeout=10)
with wk.span(sys.argv[3], kind="chain"):
    with wk.span("child"):
        print(wk.current_trace_id(), flush=True)
"""


def _run(home: Path, endpoint: str, key: str, name: str, script: str = SCRIPT) -> str:
    env = {**os.environ, "WATCHKEEP_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", script, endpoint, key, name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def _spool_files(home: Path) -> list[Path]:
    return [p for p in (home / "spool").rglob("*") if p.is_file()]


def test_spans_are_sent_at_exit_without_flush(backend: Backend, tmp_path: Path) -> None:
    trace_id = _run(tmp_path, backend.url, backend.api_key, "exit-without-flush")
    names = {s["name"] for s in backend.wait_spans(trace_id, 2)}
    assert names == {"exit-without-flush", "child"}
    assert _spool_files(tmp_path) == []


def test_server_down_at_exit_spools_and_the_next_process_replays(
    backend: Backend, relay: Relay, tmp_path: Path
) -> None:
    relay.down()
    first = _run(tmp_path, relay.url, backend.api_key, "while-down")
    assert _spool_files(tmp_path), "nothing spooled at exit with the server away"
    assert backend.spans(first) == []
    relay.up()
    second = _run(tmp_path, relay.url, backend.api_key, "after")
    assert {s["name"] for s in backend.wait_spans(first, 2)} == {"while-down", "child"}
    assert {s["name"] for s in backend.wait_spans(second, 2)} == {"after", "child"}
    assert _spool_files(tmp_path) == []


def _scores(backend: Backend, **params: Any) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {backend.api_key}"}
    response = httpx.get(f"{backend.url}/api/v1/scores", params=params, headers=headers, timeout=30)
    response.raise_for_status()
    return list(response.json()["items"])


def _wait_scores(backend: Backend, count: int, **params: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    items = _scores(backend, **params)
    while len(items) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        items = _scores(backend, **params)
    return items


def test_score_and_feedback_are_stored_and_listed(traced: Client, backend: Backend) -> None:
    with wk.span("turn"):
        trace_id = wk.current_trace_id()
        span_id = wk.current_span_id()
        assert wk.score("helpfulness", 0.8, source="evaluator", comment="fine", metadata={"grader": "g1"})
        assert wk.score("topic", "billing", label="billing", source="human")
        assert wk.feedback(True, comment="thanks!")
    assert trace_id is not None
    assert wk.flush(10)
    by_name = {s["name"]: s for s in _wait_scores(backend, 3, trace_id=trace_id)}
    assert set(by_name) == {"helpfulness", "topic", "user_feedback"}
    helpful = by_name["helpfulness"]
    assert (helpful["value"], helpful["source"], helpful["data_type"]) == (0.8, "evaluator", "numeric")
    assert (helpful["span_id"], helpful["comment"], helpful["metadata"]) == (
        span_id,
        "fine",
        {"grader": "g1"},
    )
    topic = by_name["topic"]
    assert (topic["string_value"], topic["label"], topic["data_type"]) == (
        "billing",
        "billing",
        "categorical",
    )
    feedback = by_name["user_feedback"]
    assert (feedback["source"], feedback["data_type"], feedback["value"]) == ("end-user", "boolean", 1.0)
    assert feedback["comment"] == "thanks!"
    assert [s["name"] for s in _scores(backend, trace_id=trace_id, source="end-user")] == ["user_feedback"]


def test_an_idempotency_key_stores_a_score_once(traced: Client, backend: Backend) -> None:
    trace_id = "ab" * 16
    for value in (1, 1, 1):
        assert wk.score("dedup", value, trace_id=trace_id, idempotency_key="feedback-event-42")
    assert wk.score("dedup", 0, trace_id=trace_id)  # its own fresh key: a second score
    assert wk.flush(10)  # every copy was sent and acknowledged
    stored = _wait_scores(backend, 2, trace_id=trace_id, name="dedup")
    assert sorted(s["value"] for s in stored) == [0.0, 1.0]


def test_feedback_feeds_the_quality_report(traced: Client, backend: Backend) -> None:
    votes = [True, True, True, False]
    for vote in votes:
        with wk.span("turn"):
            assert wk.feedback(vote)
    assert wk.flush(10)
    _wait_scores(backend, len(votes), name="user_feedback")
    headers = {"Authorization": f"Bearer {backend.api_key}"}
    report = httpx.get(
        f"{backend.url}/api/v1/quality", params={"name": "user_feedback"}, headers=headers, timeout=30
    ).json()
    assert (report["data_type"], report["n"]) == ("boolean", 4)
    assert report["rate"]["value"] == 0.75
    assert report["rate"]["low"] < 0.75 < report["rate"]["high"]
