"""PII detection quality on the labelled corpus, and what redaction costs per span.

Prints precision and recall per entity (with n and 95 % Wilson intervals) over
``tests/data/pii_corpus.jsonl``'s generator, then the p50 cost per span (µs of this
thread's CPU time, so other work on a shared machine does not count) of redacting a
realistic span payload (chat messages in, an answer out; with and without PII) with
redaction on and off, as ingest does it (``PiiService.redact_payloads``).

    .venv/bin/python benchmarks/pii.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from watchkeep.config import Settings
from watchkeep.devtools.pii_corpus import build, evaluate
from watchkeep.monitor.stats import wilson
from watchkeep.sdk.redact import find_pii
from watchkeep.security.pii import PiiService
from watchkeep.store.privacy_repository import StoredPrivacy

SPANS = 2000


class _Defaults:
    """Stands in for the settings table: every project has the defaults."""

    def get(self, project_id: int) -> StoredPrivacy:
        return StoredPrivacy(project_id)


def _interval(successes: int, n: int) -> str:
    e = wilson(successes, n)
    if e.value is None:
        return "   n/a"
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def quality() -> None:
    print(f"{'entity':<8} {'n':>4}  {'precision [95% CI]':<24} {'recall [95% CI]':<24}")
    for entity, t in evaluate(build(), find_pii).items():
        found = t.true_pos + t.false_pos
        print(
            f"{entity:<8} {t.labels:>4}  {_interval(t.true_pos, found):<24} "
            f"{_interval(t.labels - t.false_neg, t.labels):<24}"
        )


def _payload(i: int, pii: bool) -> tuple[Any, ...]:
    detail = (
        f"my email is user{i}@example.com and my card 4111 1111 1111 1111"
        if pii
        else "see the attached notes"
    )
    messages = [
        {"role": "system", "content": "You are a helpful support assistant for an online shop. " * 4},
        {
            "role": "user",
            "content": f"Order 20240315-{i} arrived damaged (photo 2024-03-15 12:30), {detail}.",
        },
    ]
    answer = "I am sorry to hear that. A replacement for order 20240315 is on its way, version 2.14.1. " * 3
    return (1, f"{i:032x}", f"{i:016x}", json.dumps(messages), json.dumps(answer), 0)


def _p50_us(service: PiiService, rows: list[tuple[Any, ...]]) -> float:
    times = []
    for row in rows:
        start = time.thread_time_ns()
        service.redact_payloads([row])
        times.append((time.thread_time_ns() - start) / 1000)
    return statistics.median(times)


def cost() -> None:
    with tempfile.TemporaryDirectory() as home:
        on = PiiService(_Defaults(), Settings(home=Path(home)))  # type: ignore[arg-type]
        off = PiiService(_Defaults(), Settings(home=Path(home), pii_redaction=False))  # type: ignore[arg-type]
        for pii in (True, False):
            rows = [_payload(i, pii) for i in range(SPANS)]
            size = len(rows[0][3]) + len(rows[0][4])
            label = "with PII" if pii else "no PII  "
            print(
                f"span payload {label} ({size} chars): redaction on {_p50_us(on, rows):8.1f} CPU µs/span p50, "
                f"off {_p50_us(off, rows):6.2f} CPU µs/span p50 (n={SPANS})"
            )


if __name__ == "__main__":
    quality()
    cost()
