"""Trace ids and span times of gateway calls (spans are built later, on the sink's thread)."""

from __future__ import annotations

import os
import re
import time

from watchkeep.gateway.tracing import CallRecord, build_span, new_ids

_HEX = re.compile(r"^[0-9a-f]+$")


def test_ids_are_fresh_hex_of_the_w3c_sizes() -> None:
    ids = [new_ids(None) for _ in range(3_000)]  # several refills of the buffer
    assert len({trace for trace, _, _ in ids}) == len(ids)
    assert len({span for _, span, _ in ids}) == len(ids)
    for trace, span, parent in ids[:50]:
        assert (len(trace), len(span), parent) == (32, 16, None)
        assert _HEX.match(trace + span)


def test_ids_join_the_callers_trace() -> None:
    trace, span, parent = new_ids("00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")
    assert (trace, parent) == ("ab" * 16, "cd" * 8)
    assert span != parent


def test_a_forked_child_never_repeats_the_parents_ids() -> None:
    new_ids(None)  # the buffer is filled before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write, "".join(new_ids(None)[0] for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.waitpid(pid, 0)
    parent = "".join(new_ids(None)[0] for _ in range(10))
    assert len(child) == 320
    assert {child[i : i + 32] for i in range(0, 320, 32)}.isdisjoint(
        {parent[i : i + 32] for i in range(0, 320, 32)}
    )


def test_a_span_lasts_until_the_call_ended_not_until_it_was_built() -> None:
    record = CallRecord(1, "chat", "m", *new_ids(None))
    record.ended = record.started + 0.010  # the call took 10 ms ...
    time.sleep(0.05)  # ... and its span is built later, as the sink's thread does
    span = build_span(record, capture_content=False)
    assert abs(span.end_time_unix_nano - span.start_time_unix_nano - 10_000_000) < 1_000
