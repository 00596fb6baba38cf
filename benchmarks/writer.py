"""Writer-only benchmark: the ingest writer thread's CPU a span, empty and at size (issue 17).

Phoenix-shaped exports (``synthetic_otlp.build_llm_request``, 512 spans each) are decoded
and normalised by ``decode_pool.prepare`` before any timing, in a process pool; then the
real ``SpanWriter`` writes them in groups of 8 exports on this thread, with SQLite's
checkpoints on their own thread (``StoreMaintenance``, as the server runs them). Reported
per 100k spans written: the writer's and the checkpoint thread's CPU µs a span (thread CPU
time, not wall clock: the machine may be shared), and the bytes a span added to the file.

A store "at size" is a copy of one filled once by ``devtools.bulk_fill`` (kept under
``--stores``), so runs of two code versions start from the same file.

    python benchmarks/writer.py --size 0 --size 1000000 --spans 200000
    python benchmarks/writer.py --size 0 --profile        # where one group's time goes
    python benchmarks/writer.py --postgres --group 2      # into a fresh PostgreSQL

With ``--postgres`` the spans go into a fresh tuned PostgreSQL (``TempPostgres``), half of
them first as a warm-up, in groups of ``--group`` exports (about two under the ingest
benchmark's load); reported per span: wall time, the writer thread's CPU and all of
PostgreSQL's CPU. Under the ingest benchmark the writer is the bottleneck on PostgreSQL,
and the gap between its wall time there and here is time spent waiting for a core.
``--size`` bulk-fills the database first (without the search index; then ``VACUUM
ANALYZE`` and a checkpoint) and ``--statements`` adds PostgreSQL's costliest statements of
the measured half (``pg_stat_statements``). On either database ``--without-index NAME``
(repeatable) drops a schema index from the filled store: what that index costs the
writer at that size.

    python benchmarks/writer.py --postgres --size 2000000 --spans 60000 --statements
    python benchmarks/writer.py --postgres --size 2000000 --spans 60000 \
        --without-index ix_traces_project_id_release_start_time_unix_nano_trace_id
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from watchkeep.devtools import bulk_fill
from watchkeep.devtools.postgres import TUNED_POSTGRES, TempPostgres
from watchkeep.store import bulk_sqlite, span_writer, tables
from watchkeep.store.engine import make_engine
from watchkeep.store.maintenance import StoreMaintenance
from watchkeep.store.migrate import upgrade
from watchkeep.store.rows import WriteBatch
from watchkeep.store.span_writer import SpanWriter

EXPORT_SPANS = bulk_fill.CHUNK_SPANS
GROUP_EXPORTS = bulk_fill.GROUP_CHUNKS
STEP_NS = 10_000_000  # new spans come after the fill's, 10 ms apart
REPORT_EVERY = 100_000
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _export(project_id: int, index: int, start_ns: int) -> WriteBatch:
    # seed 1: ids the fill (seed 0) never wrote
    return bulk_fill._chunk(project_id, 1, index, start_ns, STEP_NS, EXPORT_SPANS)


def decoded_groups(project_id: int, spans: int, start_ns: int) -> list[list[WriteBatch]]:
    """``spans`` spans as write groups, decoded before anything is timed."""
    exports = max(1, spans // EXPORT_SPANS)
    starts = [start_ns + i * EXPORT_SPANS * STEP_NS for i in range(exports)]
    with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
        batches = list(pool.map(_export, [project_id] * exports, range(exports), starts, chunksize=8))
    return [batches[i : i + GROUP_EXPORTS] for i in range(0, exports, GROUP_EXPORTS)]


def filled_store(stores: Path, size: int) -> Path:
    """A store holding ``size`` bulk-filled spans in project ``bench`` (made once, then kept)."""
    path = stores / f"fill-{size}.db"
    if not path.exists():
        part = path.with_suffix(".part")
        part.unlink(missing_ok=True)
        url = f"sqlite:///{part}"
        project = bulk_fill.project_id_of(url, "bench")
        if size:
            bulk_fill.fill_store(url, project, size, end_ns=time.time_ns() - 3600 * 10**9)
        part.rename(path)
    return path


@contextmanager
def store_copy(stores: Path, size: int) -> Iterator[tuple[Path, str, int]]:
    """A scratch copy of the ``size`` store: (file, URL, the bench project's id); removed after."""
    source = filled_store(stores, size)
    with tempfile.TemporaryDirectory(dir=stores) as work:
        db = Path(work) / "store.db"
        shutil.copyfile(source, db)
        url = f"sqlite:///{db}"
        yield db, url, bulk_fill.project_id_of(url, "bench")


def thread_cpu_s(name: str) -> float:
    """CPU seconds of this process's threads named ``name`` in the OS (10 ms resolution)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() != name:
                continue
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * TICK_S


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


@contextmanager
def profiled(totals: dict[str, float]) -> Iterator[None]:
    """Add each statement's thread CPU (keyed by its table) and the Python row work to
    ``totals``; the rest of a write is its commit."""
    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, attr: str, label: Callable[..., str]) -> None:
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                totals[label(*args)] += time.thread_time() - start

        patched.append((owner, attr, original))
        setattr(owner, attr, timed)

    def table(stmt: Any, *_: Any) -> str:
        return str(stmt._head.split("INTO ")[1].split()[0])

    wrap(bulk_sqlite.MultiRowStatement, "execute", table)
    wrap(bulk_sqlite.MultiRowStatement, "fetch", lambda *a: f"{table(*a)} (RETURNING)")
    wrap(bulk_sqlite, "with_trace_row_ids", lambda *_: "python with_trace_row_ids")
    wrap(bulk_sqlite.SqliteBulk, "live_projects", lambda *_: "live_projects (json_each)")
    wrap(bulk_sqlite, "_largest_span_id", lambda *_: "largest span id")
    wrap(bulk_sqlite, "_inserted_ids", lambda *_: "span ids (computed, or read back)")
    for name in ("merge_payloads", "merge_traces", "final_metadata"):
        wrap(span_writer, name, lambda *_, n=name: f"python {n}")
    try:
        yield
    finally:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


def run(
    size: int, spans: int, stores: Path, profile: bool, cache_mib: int = 64, without: list[str] | None = None
) -> dict[str, Any]:
    """Write ``spans`` new spans into a copy of the ``size`` store (less the indexes
    ``without``); the figures per 100k."""
    with store_copy(stores, size) as (db, url, project):
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            for name in without or []:
                conn.execute(f"DROP INDEX {schema_index(name)}")
        source_bytes = db.stat().st_size
        groups = decoded_groups(project, spans, time.time_ns())
        engine = make_engine(url)  # synchronous FULL, as the server
        upkeep = StoreMaintenance(engine)
        writer = SpanWriter(engine, sqlite_cache_mib=cache_mib)  # 64: the server's default
        totals: dict[str, float] = defaultdict(float)
        rounds: list[dict[str, float]] = []
        upkeep.start()
        try:
            written, cpu, bytes_at = 0, 0.0, store_bytes(db)
            ckpt_at = thread_cpu_s("wk-upkeep")
            round_spans, round_cpu = 0, 0.0
            for group in groups:
                start = time.thread_time()
                if profile:
                    with profiled(totals):
                        n = writer.write(group)
                    totals["write (all)"] += time.thread_time() - start
                else:
                    n = writer.write(group)
                spent = time.thread_time() - start
                written, cpu, round_spans, round_cpu = (
                    written + n,
                    cpu + spent,
                    round_spans + n,
                    round_cpu + spent,
                )
                if round_spans >= REPORT_EVERY or group is groups[-1]:
                    ckpt = thread_cpu_s("wk-upkeep")
                    now_bytes = store_bytes(db)
                    rounds.append(
                        {
                            "stored_before": size + written - round_spans,
                            "writer_us": round(round_cpu / round_spans * 1e6, 1),
                            "checkpoint_us": round((ckpt - ckpt_at) / round_spans * 1e6, 1),
                            "bytes_a_span": round((now_bytes - bytes_at) / round_spans),
                        }
                    )
                    ckpt_at, bytes_at, round_spans, round_cpu = ckpt, now_bytes, 0, 0.0
        finally:
            writer.close()
            upkeep.stop()
            engine.dispose()
        out: dict[str, Any] = {"size": size, "spans": written, "rounds": rounds}
        if without:
            out["without_indexes"] = without
        out["bytes_a_span_after_checkpoint"] = round((store_bytes(db) - source_bytes) / max(written, 1))
        if profile:
            out["profile_us_a_span"] = {
                k: round(v / max(written, 1) * 1e6, 2) for k, v in sorted(totals.items())
            }
        return out


def schema_index(name: str) -> str:
    """``name`` if it is an index of the schema (the only names ``--without-index`` takes)."""
    known = {str(index.name) for table in tables.metadata.tables.values() for index in table.indexes}
    if name not in known:
        raise SystemExit(f"--without-index: {name!r} is not an index of the schema ({len(known)} are)")
    return name


def prepare_postgres(url: str, project: int, size: int, without: list[str]) -> None:
    """Bulk-fill ``size`` spans (seed 0; the measured spans use seed 1), drop ``without``,
    then bring statistics and the visibility map up to date and checkpoint, as a store that
    has been running would be."""
    import psycopg

    if size:
        end = time.time_ns() - 3600 * 10**9  # the hour before the measured spans
        bulk_fill.fill_store(url, project, size, end_ns=end, search_index=False)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        for name in without:
            conn.execute(f"DROP INDEX {schema_index(name)}")
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def run_postgres(
    spans: int, group_exports: int, size: int = 0, without: list[str] | None = None, statements: bool = False
) -> dict[str, Any]:
    """Write ``spans`` new spans (after as many as a warm-up) into a fresh PostgreSQL that
    holds ``size`` bulk-filled spans."""
    from ingest import CpuMeter
    from ingest_probes import PG_STATEMENTS_SETTINGS, StatementMeter

    settings = {**TUNED_POSTGRES, **(PG_STATEMENTS_SETTINGS if statements else {})}
    with TempPostgres(settings=settings) as pg:
        engine = make_engine(pg.url)
        upgrade(engine)
        project = bulk_fill.project_id_of(pg.url, "bench")
        prepare_postgres(pg.url, project, size, without or [])
        meter = StatementMeter(pg.url.replace("postgresql+psycopg", "postgresql")) if statements else None
        batches = [b for group in decoded_groups(project, 2 * spans, time.time_ns()) for b in group]
        groups = [batches[i : i + group_exports] for i in range(0, len(batches), group_exports)]
        postmaster = psutil.Process(pg.pid())
        writer = SpanWriter(engine)
        out: dict[str, Any] = {
            "database": "postgres",
            "version": pg.version(),
            "size": size,
            "group_exports": group_exports,
        }
        if without:
            out["without_indexes"] = without
        try:
            for label, part in (
                ("warm_up", groups[: len(groups) // 2]),
                ("measured", groups[len(groups) // 2 :]),
            ):
                n = sum(len(b.spans) for g in part for b in g)
                if meter is not None:
                    meter.reset()
                cpu0, pg0, wall0 = time.thread_time(), CpuMeter.postgres_cpu(postmaster), time.perf_counter()
                for group in part:
                    writer.write(group)
                cpu1, pg1, wall1 = time.thread_time(), CpuMeter.postgres_cpu(postmaster), time.perf_counter()
                out[label] = {
                    "spans": n,
                    "wall_us": round((wall1 - wall0) / n * 1e6, 1),
                    "writer_cpu_us": round((cpu1 - cpu0) / n * 1e6, 1),
                    "postgres_cpu_us": round((pg1["postgres"] - pg0["postgres"]) / n * 1e6, 1),
                }
                if meter is not None:
                    out[label]["statements"] = meter.top(n, limit=6)
        finally:
            writer.close()
            engine.dispose()
        return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, action="append", help="spans stored first (repeatable; default 0)"
    )
    parser.add_argument("--spans", type=int, default=200_000, help="spans written and measured at each size")
    parser.add_argument("--stores", type=Path, default=Path(tempfile.gettempdir()) / "watchkeep-writer-bench")
    parser.add_argument("--profile", action="store_true", help="split the writer's CPU by statement")
    parser.add_argument(
        "--cache-mib", type=int, default=64, help="the writer's SQLite page cache (server: 64)"
    )
    parser.add_argument("--postgres", action="store_true", help="write into a fresh PostgreSQL instead")
    parser.add_argument("--group", type=int, default=GROUP_EXPORTS, help="exports a commit (--postgres)")
    parser.add_argument(
        "--statements", action="store_true", help="--postgres: the costliest statements (pg_stat_statements)"
    )
    parser.add_argument(
        "--without-index",
        action="append",
        default=[],
        help="drop this schema index from the store before writing (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.postgres:
        for size in args.size or [0]:
            result = run_postgres(args.spans, args.group, size, args.without_index, args.statements)
            print(json.dumps(result), flush=True)
        return
    args.stores.mkdir(parents=True, exist_ok=True)
    for size in args.size or [0]:
        result = run(size, args.spans, args.stores, args.profile, args.cache_mib, args.without_index)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
