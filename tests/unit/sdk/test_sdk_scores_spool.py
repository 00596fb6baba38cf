"""Scores and feedback, and the spool's ordering, atomicity, cap and claims."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import watchkeep as wk
from watchkeep.sdk.client import Client
from watchkeep.sdk.errors import ErrorLog
from watchkeep.sdk.spool import Spool
from watchkeep.sdk.testing import OtlpSink


def test_scores_and_feedback_attach_to_the_current_trace(client: Client, sink: OtlpSink) -> None:
    with wk.span("answer") as span:
        assert wk.score("accuracy", 0.9, comment="ok", metadata={"grader": "exact"})
        assert wk.feedback(True, comment="thanks")
        ctx = span.get_span_context()
    assert wk.score("label", "good", trace_id=f"{ctx.trace_id:032x}", source="human", label="good")
    assert wk.score("mine", 1, trace_id=f"{ctx.trace_id:032x}", idempotency_key="feedback-event-42")
    assert wk.flush(5)
    scores = {s["name"]: s for s in sink.scores}
    # Every score carries an idempotency key, so a retried POST is stored once.
    keys = [s.pop("idempotency_key") for s in sink.scores]
    assert keys[-1] == "feedback-event-42"
    assert len(set(keys)) == 4
    assert all(len(k) == 32 for k in keys[:3])
    trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    assert scores["accuracy"] == {
        "name": "accuracy",
        "value": 0.9,
        "trace_id": trace_id,
        "span_id": span_id,
        "source": "api",
        "data_type": "numeric",
        "comment": "ok",
        "metadata": {"grader": "exact"},
    }
    assert scores["user_feedback"]["source"] == "end-user"
    assert scores["user_feedback"]["data_type"] == "boolean"
    assert scores["label"]["span_id"] is None
    assert scores["label"]["label"] == "good"
    assert client.stats().scores_sent == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"trace_id": "xyz"},
        {"trace_id": "0" * 32, "span_id": "1"},
        {"trace_id": "0" * 32, "source": "robot"},
        {"trace_id": "0" * 32, "idempotency_key": "not a key!"},
        {},
    ],
)
def test_invalid_scores_are_skipped_with_a_warning(
    client: Client, kwargs: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    assert wk.score("s", 1, **kwargs) is False  # type: ignore[arg-type]
    assert "skipped" in caplog.text


def test_scores_survive_an_outage(client: Client, sink: OtlpSink) -> None:
    sink.stop()
    assert wk.score("late", 1, trace_id="ab" * 16)
    wk.flush(2)
    sink.start()
    assert wk.flush(5)
    assert [s["name"] for s in sink.scores] == ["late"]


def test_spool_replays_in_write_order_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000, ErrorLog())
    for i in range(5):
        assert spool.write("spans", f"p{i}".encode(), i + 1)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]
    assert spool.pending() == 5
    assert spool.pending_spans() == 15
    order = []
    while (entry := spool.claim_oldest()) is not None:
        order.append(entry.payload)
        spool.complete(entry)
    assert order == [f"p{i}".encode() for i in range(5)]


def test_spool_cap_drops_oldest_files_and_counts_their_spans(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 250, ErrorLog())
    for i in range(5):
        spool.write("spans", bytes([i]) * 100, 10)
    assert spool.dropped == 30
    assert spool.pending() == 2
    kept = [spool.claim_oldest(), spool.claim_oldest()]
    assert [e.payload[0] for e in kept if e] == [3, 4]


def test_released_and_orphaned_claims_are_replayed_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000, ErrorLog())
    spool.write("spans", b"a", 1)
    entry = spool.claim_oldest()
    assert entry is not None
    assert spool.claim_oldest() is None
    spool.release(entry)
    entry = spool.claim_oldest()
    assert entry is not None
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    orphan = entry.path.with_name(f"{entry.original.name}.{dead}.claim")
    entry.path.rename(orphan)  # as if a process that has since died had claimed it
    spool.recover_claims()
    again = spool.claim_oldest()
    assert again is not None
    assert again.payload == b"a"


def test_files_an_older_sdk_left_in_the_shared_folder_are_reported_not_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "spool"
    root.mkdir()
    (root / f"{1:020d}-1-5.spans").write_bytes(b"whose?")
    spool = Spool(root / "destination", 10_000, ErrorLog(), root=root)
    assert spool.write("spans", b"mine", 1)
    entry = spool.claim_oldest()
    assert entry is not None
    assert entry.payload == b"mine"
    spool.complete(entry)
    assert spool.claim_oldest() is None
    assert "1 spool files of an older watchkeep" in caplog.text
