"""Fill a store quickly with the rows ingest would store, to measure at size (issue 17).

The rows are what the server stores: Phoenix-shaped OTLP exports from
``synthetic_otlp.build_llm_request``, decoded and normalised by the ingest code
(``decode_pool.prepare``) in a process pool, written by the real ``SpanWriter`` in
groups. Only the HTTP hop and the per-request commit are skipped. Spans are spread
evenly over ``days`` ending at ``end_ns``, in time order, as a store that has been
receiving traffic for that long would hold them; releases change every ten days.

    python -m watchkeep.devtools.bulk_fill --database-url sqlite:///x.db --project bench --spans 1000000
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from watchkeep.devtools.synthetic_otlp import build_llm_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.store.engine import is_sqlite, make_engine
from watchkeep.store.maintenance import StoreMaintenance
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.rows import WriteBatch
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.text_search import SearchIndexer
from watchkeep.store.trace_lookups import TraceLookupIndexer

CHUNK_SPANS = 512  # one export, as the benchmark's clients send
GROUP_CHUNKS = 8  # exports a commit: about what the server's group commit folds under load
DAY_NS = 86_400 * 10**9
RELEASE_EVERY_NS = 10 * DAY_NS
IN_FLIGHT = 4 * GROUP_CHUNKS


def project_id_of(database_url: str, project_name: str) -> int:
    """The id of the project called ``project_name`` (created, with the schema, if missing)."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        return ProjectRepository(engine).get_or_create(project_name).id
    finally:
        engine.dispose()


def _chunk(project_id: int, seed: int, index: int, start_ns: int, step_ns: int, n: int) -> WriteBatch:
    """Rows of export ``index``: built from its own seed, so workers need no shared state."""
    rng = random.Random(seed * 1_000_003 + index)
    release = f"1.{start_ns // RELEASE_EVERY_NS % 1000}.0"
    body, _ = build_llm_request(n, rng=rng, start_ns=start_ns, step_ns=step_ns, release=release)
    return prepare(project_id, body, Encoding.PROTOBUF, start_ns + n * step_ns, None).batch


def _plan(spans: int, end_ns: int, days: float) -> Iterator[tuple[int, int, int, int]]:
    """(index, start, step, spans) of each export, oldest first."""
    step = max(1, int(days * DAY_NS) // max(spans, 1))
    first = end_ns - spans * step
    for index, offset in enumerate(range(0, spans, CHUNK_SPANS)):
        yield index, first + offset * step, step, min(CHUNK_SPANS, spans - offset)


def _commit(
    writer: SpanWriter, group: list[WriteBatch], before: int, progress: Callable[[int], None] | None
) -> int:
    added = writer.write(group)
    if progress is not None:
        progress(before + added)
    return added


def fill_store(
    database_url: str,
    project_id: int,
    spans: int,
    *,
    end_ns: int,
    days: float = 30.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    search_index: bool = True,
) -> int:
    """Store ``spans`` new spans in ``project_id``; returns how many were new.

    With ``search_index`` the full-text index is brought up to date afterwards, as the
    server's indexer would: a store measured at size then holds it too, and the server
    does not spend the measured rounds catching up on the fill.

    Decoding runs in one worker process a spare core (at least one), the writes in this
    process; ``progress`` is called with the running total after each commit. A second
    fill with the same seed and size writes the same ids, so it adds nothing.
    """
    if spans < 0 or days <= 0:
        raise ValueError("spans must not be negative and days must be positive")
    engine = make_engine(database_url, sqlite_synchronous="OFF")  # a fill need not survive a power cut
    upkeep = StoreMaintenance(engine) if is_sqlite(database_url) else None
    writer = SpanWriter(engine, sqlite_cache_mib=256)
    workers = multiprocessing.cpu_count() or 2  # the writer mostly waits on them
    written = 0
    try:
        if upkeep is not None:
            upkeep.start()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending: deque[Future[WriteBatch]] = deque()
            group: list[WriteBatch] = []
            for i, start, step, n in _plan(spans, end_ns, days):
                pending.append(pool.submit(_chunk, project_id, seed, i, start, step, n))
                if len(pending) < IN_FLIGHT:  # bounded: a 10M fill must not hold every batch
                    continue
                group.append(pending.popleft().result())
                if len(group) == GROUP_CHUNKS:
                    written += _commit(writer, group, written, progress)
                    group = []
            group.extend(f.result() for f in pending)
            if group:
                written += _commit(writer, group, written, progress)
        TraceLookupIndexer(engine).catch_up(timeout=1.0)
        if search_index:
            SearchIndexer(engine).catch_up(timeout=1.0)
    finally:
        writer.close()
        if upkeep is not None:
            upkeep.stop()
        engine.dispose()
    return written


def main(argv: list[str] | None = None) -> None:
    """The command line: fill a project of a store to a size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--project", required=True, help="project name (created if missing)")
    parser.add_argument("--spans", type=int, required=True)
    parser.add_argument("--days", type=float, default=30.0, help="the span times cover this many days")
    parser.add_argument("--seed", type=int, default=0, help="another seed writes other ids")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def report(done: int) -> None:
        if done % 102_400 < CHUNK_SPANS * GROUP_CHUNKS or done == args.spans:
            rate = done / max(time.perf_counter() - started, 1e-9)
            print(f"{done:,} spans ({rate:,.0f}/s)", file=sys.stderr, flush=True)

    project = project_id_of(args.database_url, args.project)
    done = fill_store(
        args.database_url,
        project,
        args.spans,
        end_ns=time.time_ns(),
        days=args.days,
        seed=args.seed,
        progress=report,
    )
    print(done)


if __name__ == "__main__":
    main()
