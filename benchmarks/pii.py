"""PII detection quality on the labelled corpus, and what redaction costs per span.

Prints precision and recall per entity (with n and 95 % Wilson intervals) over
``tests/data/pii_corpus.jsonl``'s generator, then the p50 cost per span (µs of this
thread's CPU time, so other work on a shared machine does not count) of redacting a
realistic span payload (chat messages in, an answer out; with and without PII) with
redaction on and off, as ingest does it (``PiiService.redact_payloads``), and the CPU µs
a span of redacting whole Phoenix-shaped exports (512 LLM spans, about 800 characters of
messages each) as the decode workers do (``PortablePolicy``: payload rows and span rows, one
trigger pass a batch), without PII and with an email, a card and a phone number in each span.

    .venv/bin/python benchmarks/pii.py
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from watchkeep.config import Settings
from watchkeep.devtools.pii_corpus import build, evaluate
from watchkeep.devtools.synthetic_otlp import build_llm_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.monitor.stats import wilson
from watchkeep.sdk.redact import find_pii
from watchkeep.security.pii import PiiService, PortablePolicy, default_actions
from watchkeep.store.privacy_repository import StoredPrivacy
from watchkeep.store.rows import SPAN_COLUMNS

SPANS = 2000
EXPORTS = 10  # of 512 spans each, for the batch cost


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


Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]  # payload rows, span rows


def _with_pii(batch: Batch) -> Batch:
    """The same rows with an email and a card in each input message and a phone number in
    each span's attributes."""
    payloads, spans = batch
    at = SPAN_COLUMNS.index("attributes")
    dirty = []
    for i, r in enumerate(payloads):
        given = json.loads(r[3])
        messages = json.loads(given["messages"])
        messages[0]["content"] += f" my email is user{i}@example.com, card 4111 1111 1111 1111"
        dirty.append((*r[:3], json.dumps({**given, "messages": json.dumps(messages)}), *r[4:]))
    noted = [(*s[:at], json.dumps({"note": "call +1 202 555 0143"}), *s[at + 1 :]) for s in spans]
    return dirty, noted


def batch_cost() -> None:
    rng = random.Random(1)
    start = 1_700_000_000_000_000_000
    bodies = [build_llm_request(512, rng=rng, start_ns=start)[0] for _ in range(EXPORTS)]
    prepared = [prepare(1, b, Encoding.PROTOBUF, start, None).batch for b in bodies]
    clean: list[Batch] = [(p.payloads, p.spans) for p in prepared]
    policy = PortablePolicy(tuple(sorted(default_actions().items())), b"k" * 32)
    spans = sum(len(s) for _, s in clean)
    for label, batches in (("no PII  ", clean), ("with PII", [_with_pii(b) for b in clean])):
        best = float("inf")
        for _ in range(3):  # the best of three: least disturbed by other work
            began = time.process_time()
            for payloads, rows in batches:
                policy.redact_payloads(payloads)
                policy.redact_spans(rows)
            best = min(best, time.process_time() - began)
        print(
            f"Phoenix-shaped exports {label}: {best / spans * 1e6:6.2f} CPU µs/span "
            f"(payload and span rows, {EXPORTS} exports of 512 spans, best of 3)"
        )


if __name__ == "__main__":
    quality()
    cost()
    batch_cost()
