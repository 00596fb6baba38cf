"""Retention settings are validated strictly, the worker turns periods into cutoffs (whole
partitions first), and the subject hash names no one in clear."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from watchkeep.security.erasure import InvalidSubject, check_user_id, export_line, subject_hash, subject_key
from watchkeep.security.retention import (
    DAY_NS,
    InvalidRetention,
    RetentionWorker,
    periods_of,
    validate_retention,
)
from watchkeep.store.privacy_repository import StoredPrivacy


def test_validation_completes_every_kind_and_refuses_what_it_cannot_store() -> None:
    assert validate_retention({"spans": 30}) == {
        "spans": 30,
        "payloads": None,
        "scores": None,
        "eval_items": None,
        "alerts": None,
    }
    for bad, word in (
        ({"traces": 3}, "unknown"),
        ({"spans": 0}, "between"),
        ({"spans": 36_501}, "between"),
        ({"spans": True}, "whole"),
        ({"spans": 1.5}, "whole"),
        ({"spans": "7"}, "whole"),
    ):
        with pytest.raises(InvalidRetention, match=word):
            validate_retention(bad)


def test_stored_junk_is_skipped_not_enforced() -> None:
    assert periods_of(
        {"spans": 3, "scores": None, "alerts": 0, "payloads": True, "x": 9, "eval_items": "2"}
    ) == {"spans": 3}


class FakeSettings:
    def __init__(self, *stored: StoredPrivacy) -> None:
        self.stored = list(stored)

    def all(self) -> list[StoredPrivacy]:
        return self.stored


class FakeQueries:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def expire(self, project_id: int, kind: str, before_ns: int) -> int:
        self.calls.append(("expire", project_id, kind, before_ns))
        return 3 if kind == "spans" else 0

    def drop_expired_partitions(self, table: str, cutoffs: dict[int, int]) -> list[str]:
        self.calls.append(("partitions", table, cutoffs))
        return ["spans_old"]


def test_a_pass_drops_partitions_first_then_expires_each_period_of_each_project() -> None:
    now = 1000 * DAY_NS
    settings = FakeSettings(
        StoredPrivacy(1, retention={"spans": 30, "alerts": 7}),
        StoredPrivacy(2, retention={"scores": 1}),
        StoredPrivacy(3),
    )
    queries = FakeQueries()
    done = RetentionWorker(settings, queries, interval_s=0).run_once(now)  # type: ignore[arg-type]
    assert queries.calls == [
        ("partitions", "spans", {1: now - 30 * DAY_NS}),
        ("expire", 1, "spans", now - 30 * DAY_NS),
        ("expire", 1, "alerts", now - 7 * DAY_NS),
        ("expire", 2, "scores", now - DAY_NS),
    ]
    assert (done.deleted, done.partitions, done.total) == ({(1, "spans"): 3}, ["spans_old"], 3)


def test_no_span_periods_means_no_partition_work_and_interval_zero_starts_no_thread() -> None:
    queries = FakeQueries()
    worker = RetentionWorker(FakeSettings(StoredPrivacy(1, retention={"scores": 2})), queries, interval_s=0)  # type: ignore[arg-type]
    worker.run_once(10 * DAY_NS)
    assert [c[0] for c in queries.calls] == ["expire"]
    worker.start()
    assert not any(t.name == "watchkeep-retention-worker" for t in threading.enumerate())
    worker.stop()


def test_the_subject_hash_is_keyed_stable_and_never_the_id() -> None:
    key = subject_key(b"pii-key")
    assert key != b"pii-key"  # not the key of the PII hash action itself
    one = subject_hash("alice@example.com", key)
    assert one == subject_hash("alice@example.com", key)
    assert one != subject_hash("bob@example.com", key)
    assert "alice" not in one
    assert subject_hash("alice@example.com", subject_key(b"other")) != one


def test_user_ids_are_bounded_and_export_lines_keep_rows_apart() -> None:
    assert check_user_id("u1") == "u1"
    for bad in ("", "x" * 257, "a\x00b", "a\nb"):
        with pytest.raises(InvalidSubject):
            check_user_id(bad)
    assert export_line("span", {"kind": 1, "blob": b"\x00"}) == {
        "type": "span",
        "row": {"kind": 1, "blob": "AA=="},
    }
