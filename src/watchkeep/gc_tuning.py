"""Garbage-collector settings for the long-running server processes.

CPython's cyclic collector runs a young collection every 700 container allocations and,
now and then, a full one over every object the process holds. Ingest and the gateway
allocate thousands of short-lived, acyclic containers a request (spans, attribute dicts,
rows, headers), and a server holds a large heap that lives as long as it does (modules,
the app, SQLAlchemy metadata, protobuf descriptors). Measured on a Phoenix-shaped export,
the collector cost 4-6 µs of the ~35 µs it takes to decode and normalise a span
(docs/ingest.md). Freezing what start-up built keeps it out of every later collection,
and a larger young threshold makes collections ~70 times rarer; reference counting still
frees at once everything that is not in a cycle, so memory stays where it was.
"""

from __future__ import annotations

import gc

DEFAULT_YOUNG_THRESHOLD = 50_000


def tune_for_throughput(young_threshold: int = DEFAULT_YOUNG_THRESHOLD) -> None:
    """Freeze the objects made so far and collect the young generation less often.

    For a process's entry point, after start-up; ``young_threshold`` 0 leaves CPython's
    defaults. Not for tests or libraries: frozen objects are never collected. No full
    collection first: over a server's start-up heap it took about half a second of every
    process start (test suites start hundreds), for the little cyclic garbage start-up
    leaves, which then stays frozen."""
    if young_threshold <= 0:
        return
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
