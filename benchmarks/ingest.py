"""Ingest benchmark: durable spans/s into SQLite and PostgreSQL as the store grows, bytes
per span, and trace-list latency.

For each database it starts a real ``watchkeep server`` process, has 4 concurrent OTLP
clients post pre-encoded protobuf exports of 512 spans each (every 2xx means committed),
then sends the same load over OTLP/gRPC (every OK means committed). The load is
Phoenix-shaped by default (issue 17: every span an LLM call with about 800 characters of
messages, ``synthetic_otlp.build_llm_request``); ``--shape agent`` sends the older
three-span agent traces. With ``--sizes`` the store is bulk-filled (``devtools.bulk_fill``:
the same rows, without the HTTP hop) to each size, and ``--warmup`` requests (printed apart:
the fill leaves the server's page cache cold) precede the measured round; without it,
``--rounds`` rounds run back to back from an empty store. Each round prints spans/s, the
CPU a span of the server process, its decode workers and (PostgreSQL) the database
backends, the store's bytes a span, and how busy the writer was (``ingest_probes``: the
load is a closed loop, so an idle writer means latency upstream of it bounds the round);
``--statements`` adds PostgreSQL's costliest statements of each round. Then the store is
filled to ``--fill`` spans and the trace-list query (newest page, filtered pages, second pages) is timed at that size.

    python benchmarks/ingest.py                                   # both databases, 1M spans
    python benchmarks/ingest.py --db sqlite --sizes 0,500k,1M,2M --fill 0
    python benchmarks/ingest.py --db postgres --sizes 0,2M,5M,10M --fill 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
from sqlalchemy import make_url

from ingest_probes import (
    PG_STATEMENTS_SETTINGS,
    StatementMeter,
    WriterShare,
    cpu_grown,
    read_commit_counters,
    writer_share,
)
from watchkeep.devtools.bulk_fill import DAY_NS, fill_store, project_id_of
from watchkeep.devtools.postgres import TUNED_POSTGRES, TempPostgres, free_port
from watchkeep.devtools.synthetic_otlp import MODELS, build_llm_request, build_request
from watchkeep.store.engine import is_sqlite, make_engine
from watchkeep.store.text_search import SearchIndexer

CLIENTS = 4
SPANS_PER_REQUEST = 512
TARGET_SPANS_PER_S = 20_000
TARGET_P95_MS = 50.0
FILL_DAYS = 30.0


@contextmanager
def server(database_url: str, home: Path) -> Iterator[tuple[str, str, str, int]]:
    """A running server process: its URL, a key, its OTLP/gRPC address and its pid."""
    grpc_port = free_port()
    env = {
        **os.environ,
        "WATCHKEEP_HOME": str(home),
        "WATCHKEEP_LOG_LEVEL": "WARNING",
        "WATCHKEEP_OTLP_GRPC_PORT": str(grpc_port),
        "WATCHKEEP_DATABASE_URL": database_url,
    }
    exe = [sys.executable, "-m", "watchkeep.cli.main"]
    key = (
        subprocess.run(
            [*exe, "keys", "create", "--project", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    proc = subprocess.Popen([*exe, "server", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, key, f"127.0.0.1:{grpc_port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def make_bodies(n: int, seed: int, shape: str = "phoenix") -> list[bytes]:
    """``n`` exports of SPANS_PER_REQUEST spans, timed now, of the chosen shape."""
    rng = random.Random(seed)
    if shape == "agent":
        return [build_request(SPANS_PER_REQUEST, rng=rng)[0] for _ in range(n)]
    now = time.time_ns()
    return [
        build_llm_request(
            SPANS_PER_REQUEST, rng=rng, start_ns=now + i * SPANS_PER_REQUEST * 10_000, step_ns=10_000
        )[0]
        for i in range(n)
    ]


async def post_all(url: str, key: str, bodies: list[bytes], latencies: list[float] | None = None) -> float:
    """Send ``bodies`` from CLIENTS concurrent connections; wall seconds until all 2xx
    (each request's seconds, retries included, appended to ``latencies``)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client() -> None:
        async with httpx.AsyncClient(timeout=120) as http:
            while not queue.empty():
                body = queue.get_nowait()
                sent = time.perf_counter()
                while True:
                    response = await http.post(f"{url}/v1/traces", content=body, headers=headers)
                    if response.status_code == 200:
                        if latencies is not None:
                            latencies.append(time.perf_counter() - sent)
                        break
                    if response.status_code != 503:
                        raise RuntimeError(f"ingest answered {response.status_code}: {response.text}")
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return time.perf_counter() - started


GRPC_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


async def grpc_all(target: str, key: str, bodies: list[bytes]) -> float:
    """``post_all`` over OTLP/gRPC: CLIENTS concurrent callers on one channel."""
    metadata = (("authorization", f"Bearer {key}"),)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with grpc.aio.insecure_channel(
        target, options=(("grpc.max_send_message_length", 64 * 1024 * 1024),)
    ) as channel:
        export = channel.unary_unary(GRPC_EXPORT)

        async def client() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                while True:
                    try:
                        await export(body, metadata=metadata, timeout=120)
                        break
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() not in GRPC_RETRY:
                            raise
                        await asyncio.sleep(1.0)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def time_queries(url: str, key: str, rounds: int) -> dict[str, tuple[float, float]]:
    """p50/p95 (ms) of trace-list queries of several shapes."""
    headers = {"Authorization": f"Bearer {key}"}
    shapes: dict[str, dict[str, Any]] = {
        "newest 50": {"limit": 50},
        "model filter": {"model": MODELS[1], "limit": 50},
        "user filter": {"user_id": "user-42", "limit": 50},
        "error status": {"status": "error", "limit": 50},
    }
    out: dict[str, tuple[float, float]] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        first = http.get("/api/v1/traces", params={"limit": 50}).json()
        shapes["second page"] = {"limit": 50, "cursor": first["next_cursor"]}
        for label, params in shapes.items():
            http.get("/api/v1/traces", params=params).raise_for_status()  # warm
            samples = []
            for _ in range(rounds):
                t = time.perf_counter()
                http.get("/api/v1/traces", params=params).raise_for_status()
                samples.append((time.perf_counter() - t) * 1000)
            out[label] = (statistics.median(samples), percentile(samples, 95))
    return out


def parse_size(text: str) -> int:
    """``500k``, ``2M``, ``1.5M`` or a plain number of spans."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


class CpuMeter:
    """CPU seconds of the server process, its decode workers and the database's backends."""

    def __init__(self, server_pid: int, postgres_pid: int | None) -> None:
        self._server = psutil.Process(server_pid)
        self._postgres = psutil.Process(postgres_pid) if postgres_pid else None
        self._vacuum_seen: dict[int, float] = {}  # autovacuum worker pid: its CPU at the last read
        self._vacuum_total = 0.0

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = proc.cpu_times()
            return float(t.user + t.system)
        return 0.0

    def _threads(self) -> dict[str, float]:
        """CPU seconds of the server's named threads (``store.maintenance.name_os_thread``)."""
        out: dict[str, float] = {}
        with contextlib.suppress(psutil.NoSuchProcess):
            for t in self._server.threads():
                with contextlib.suppress(OSError):
                    name = Path(f"/proc/{self._server.pid}/task/{t.id}/comm").read_text().strip()
                    if name in ("wk-writer", "wk-upkeep", "wk-lookups"):
                        out[name[3:]] = out.get(name[3:], 0.0) + t.user_time + t.system_time
                    if name == "wk-writer":  # its kernel share: WAL writes, file growth, fsync
                        out["writer_sys"] = out.get("writer_sys", 0.0) + t.system_time
        return out

    def read(self) -> dict[str, float]:
        """Cumulative CPU seconds by part (ended decode workers no longer count)."""
        out = {
            "server": self._cpu(self._server),
            **self._threads(),
            "workers": sum(map(self._cpu, self._server.children())),
        }
        if self._postgres is not None:
            out.update(self.postgres_cpu(self._postgres))
            out["autovacuum"] = self._vacuum()
        return out

    def _vacuum(self) -> float:
        """Cumulative CPU seconds of autovacuum workers (``cpu_grown`` from read to read), so
        it only grows: a worker that ends mid-round was read as negative CPU before."""
        now: dict[int, float] = {}
        assert self._postgres is not None
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in self._postgres.children():
                with contextlib.suppress(psutil.Error):
                    if "autovacuum worker" in " ".join(child.cmdline()):
                        now[child.pid] = self._cpu(child)
        self._vacuum_total += cpu_grown(self._vacuum_seen, now)
        self._vacuum_seen = now
        return self._vacuum_total

    @classmethod
    def postgres_cpu(cls, postmaster: psutil.Process) -> dict[str, float]:
        """All of PostgreSQL's CPU seconds, the processes that ended included (the postmaster
        reaps them: autovacuum workers come and go within a round), and apart from it the
        autovacuum workers running now (one that ends mid-round moves into the total)."""
        vacuum = 0.0
        with contextlib.suppress(psutil.NoSuchProcess):
            t = postmaster.cpu_times()
            total = t.user + t.system + t.children_user + t.children_system
            for child in postmaster.children():
                cpu = cls._cpu(child)
                total += cpu
                with contextlib.suppress(psutil.Error):
                    if "autovacuum worker" in " ".join(child.cmdline()):
                        vacuum += cpu
            return {"postgres": total, "autovacuum": vacuum}
        return {}


def search_lag(database_url: str) -> int:
    """Spans stored but not yet indexed for search: the indexer yields to a saturated writer,
    so a round at full speed leaves a backlog (printed, not hidden)."""
    engine = make_engine(database_url)
    try:
        return SearchIndexer(engine).lag(max_age=0).spans
    finally:
        engine.dispose()


def store_size(database_url: str, detail: bool) -> tuple[int, list[tuple[str, int, int]]]:
    """Bytes on disk of the store and, with ``detail``, (table, table bytes, index bytes) of
    the largest tables: SQLite's file and WAL (``dbstat`` for the parts), PostgreSQL's
    database (``pg_table_size`` / ``pg_indexes_size``, partitions summed into their table)."""
    if is_sqlite(database_url):
        path = Path(database_url.removeprefix("sqlite:///"))
        total = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        if not detail:
            return total, []
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "SELECT coalesce(m.tbl_name, d.name), sum(CASE WHEN m.type = 'index' THEN 0 ELSE d.pgsize END), "
                "sum(CASE WHEN m.type = 'index' THEN d.pgsize ELSE 0 END) FROM dbstat d "
                "LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY 1 ORDER BY sum(d.pgsize) DESC LIMIT 8"
            ).fetchall()
        return total, [(str(r[0]), int(r[1]), int(r[2])) for r in rows]
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            total = int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
            parts: list[Any] = list(
                conn.exec_driver_sql(
                    "SELECT coalesce(pg_partition_root(c.oid), c.oid)::regclass::text, "
                    "sum(pg_table_size(c.oid)), sum(pg_indexes_size(c.oid)) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "AND c.relkind = 'r' GROUP BY 1 "
                    "ORDER BY sum(pg_table_size(c.oid)) + sum(pg_indexes_size(c.oid)) DESC LIMIT 8"
                ).all()
                if detail
                else []
            )
    finally:
        engine.dispose()
    return total, [(str(r[0]), int(r[1]), int(r[2])) for r in parts]


class Store:
    """The benchmark's store: how many spans it holds, and bulk fills along one timeline.

    Fills are slices of one 30-day history that ends when the benchmark starts, oldest
    first, so a store of any size looks like one that has been receiving traffic.
    """

    def __init__(self, database_url: str, project: str, horizon: int, *, search_index: bool = True) -> None:
        self.url = database_url
        self._search_index = search_index
        self.project = project_id_of(database_url, project)
        self.stored = 0
        self._filled = 0
        self._horizon = max(horizon, 1)
        self._step = int(FILL_DAYS * DAY_NS) // self._horizon
        self._end = time.time_ns() - 60 * 10**9

    def fill_to(self, size: int, label: str) -> None:
        """Bulk-fill until the store holds ``size`` spans (nothing if it already does)."""
        need = min(size - self.stored, self._horizon - self._filled)
        if need <= 0:
            return
        started = time.perf_counter()
        end = self._end - (self._horizon - self._filled - need) * self._step
        added = fill_store(
            self.url,
            self.project,
            need,
            end_ns=end,
            days=need * self._step / DAY_NS,
            seed=1 + self._filled,
            search_index=self._search_index,
        )
        self._filled += need
        self.stored += added
        rate = added / (time.perf_counter() - started)
        print(f"[{label}] bulk-filled {added:,} spans ({rate:,.0f}/s), store {self.stored:,}", flush=True)


def http_round(
    url: str, key: str, bodies: list[bytes], cpu: CpuMeter, statements: StatementMeter | None
) -> tuple[float, dict[str, float], WriterShare, list[str]]:
    """Post ``bodies`` over HTTP: spans/s, CPU µs a span by part, the writer's share of the
    round and (PostgreSQL, ``--statements``) its costliest statements."""
    spans = len(bodies) * SPANS_PER_REQUEST
    latencies: list[float] = []
    if statements is not None:
        statements.reset()
    counters0, cpu0 = read_commit_counters(url), cpu.read()
    wall = asyncio.run(post_all(url, key, bodies, latencies))
    cpu1, counters1 = cpu.read(), read_commit_counters(url)
    costliest = statements.top(spans) if statements is not None else []
    per_span = {k: (cpu1[k] - cpu0[k]) / spans * 1e6 for k in cpu0}
    return spans / wall, per_span, writer_share(counters0, counters1, wall, latencies), costliest


def run_one(
    label: str,
    database_url: str,
    args: argparse.Namespace,
    postgres_pid: int | None = None,
) -> dict[str, object]:
    """Measured rounds (bulk-filled to each of ``--sizes`` first, if given), then the fill
    to ``--fill`` and the query timings."""
    sizes = [parse_size(x) for x in args.sizes.split(",")] if args.sizes else []
    with tempfile.TemporaryDirectory() as home, server(database_url, Path(home)) as (url, key, target, pid):
        store = Store(
            database_url, "bench", max([*sizes, args.fill]), search_index=not args.fill_without_search
        )
        cpu = CpuMeter(pid, postgres_pid)
        statements = None
        if args.statements and not is_sqlite(make_url(database_url).drivername):
            dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
            statements = StatementMeter(dsn)
        print(f"[{label}] {SPANS_PER_REQUEST}-span {args.shape} exports, {args.requests} a round", flush=True)
        warm = make_bodies(4, seed=1000, shape=args.shape)
        asyncio.run(post_all(url, key, warm))  # warm-up (also counts toward the fill)
        store.stored += len(warm) * SPANS_PER_REQUEST
        rounds: list[dict[str, float]] = []
        for round_no, size in enumerate(sizes or [0] * args.rounds):
            if store.stored < size and args.warmup:
                store.fill_to(size, label)
                # The fill wrote through another connection, so the server's writer starts this
                # size with an empty page cache (SQLite drops it when another connection
                # commits): a first round re-reads its hot index pages. Shown, not counted.
                bodies = make_bodies(args.warmup, seed=3 + round_no * 7919, shape=args.shape)
                cpu0 = cpu.read()
                rate = args.warmup * SPANS_PER_REQUEST / asyncio.run(post_all(url, key, bodies))
                cpu1 = cpu.read()
                store.stored += args.warmup * SPANS_PER_REQUEST
                parts = ", ".join(
                    f"{k} {(cpu1[k] - cpu0[k]) / (args.warmup * SPANS_PER_REQUEST) * 1e6:.1f}" for k in cpu0
                )
                print(
                    f"[{label}] warm-up after the fill (cold caches): {rate:,.0f} spans/s over HTTP; "
                    f"CPU us/span {parts}",
                    flush=True,
                )
            store.fill_to(size, label)
            before, spans = store.stored, args.requests * SPANS_PER_REQUEST
            bodies = make_bodies(args.requests, seed=1 + round_no * 7919, shape=args.shape)
            http_rate, cpu_per_span, share, costliest = http_round(url, key, bodies, cpu, statements)
            # the same load again, new span ids, over gRPC
            bodies = make_bodies(args.requests, seed=2 + round_no * 7919, shape=args.shape)
            grpc_rate = spans / asyncio.run(grpc_all(target, key, bodies))
            store.stored += 2 * spans
            disk, _ = store_size(database_url, detail=False)
            lag = search_lag(database_url)
            r = {
                "store": before,
                "http": http_rate,
                "grpc": grpc_rate,
                "bytes": disk / store.stored,
                "lag": lag,
                "busy": share.busy,
            }
            r.update({f"cpu_{k}": v for k, v in cpu_per_span.items()})
            rounds.append(r)
            parts = ", ".join(f"{k[4:]} {v:.1f}" for k, v in r.items() if k.startswith("cpu_"))
            print(
                f"[{label}] round {round_no + 1} at {before:,} stored: {http_rate:,.0f} durable spans/s over "
                f"HTTP, {grpc_rate:,.0f} over gRPC; CPU us/span (HTTP) {parts}; {r['bytes']:,.0f} bytes/span; "
                f"search index behind by {lag:,} spans; {share.describe()}",
                flush=True,
            )
            for line in costliest:
                print(f"[{label}]   {line}", flush=True)
        store.fill_to(args.fill, label)
        disk, tables = store_size(database_url, detail=True)
        queries = time_queries(url, key, rounds=100) if store.stored >= SPANS_PER_REQUEST else {}
        return {
            "label": label,
            "rate": statistics.median(r["http"] for r in rounds),
            "grpc_rate": statistics.median(r["grpc"] for r in rounds),
            "rounds": rounds,
            "stored": store.stored,
            "bytes": disk,
            "tables": tables,
            "queries": queries,
        }


def report(results: list[dict[str, object]]) -> None:
    """The summary tables."""
    print(
        f"\n{'database':<10} {'spans/s':>10} {'grpc':>10} {'target':>8} {'stored':>10}  "
        f"query p50/p95 ms (target p95 <= {TARGET_P95_MS:g})"
    )
    for r in results:
        queries = r["queries"]
        assert isinstance(queries, dict)
        q = "  ".join(f"{k}: {p50:.1f}/{p95:.1f}" for k, (p50, p95) in queries.items())
        print(
            f"{r['label']:<10} {r['rate']:>10,.0f} {r['grpc_rate']:>10,.0f} {TARGET_SPANS_PER_S:>8,} "
            f"{r['stored']:>10,}  {q}"
        )
    for r in results:
        rounds = r["rounds"]
        assert isinstance(rounds, list)
        print(f"\n{r['label']}: spans/s is the median of these rounds")
        print(
            f"  {'stored':>10} {'HTTP/s':>8} {'gRPC/s':>8} {'B/span':>7} {'unindexed':>9} {'writer':>6}  "
            "CPU us/span during HTTP"
        )
        for x in rounds:
            parts = "  ".join(f"{k[4:]} {v:.1f}" for k, v in x.items() if k.startswith("cpu_"))
            print(
                f"  {x['store']:>10,.0f} {x['http']:>8,.0f} {x['grpc']:>8,.0f} {x['bytes']:>7,.0f} "
                f"{x['lag']:>9,.0f} {x['busy']:>6.0%}  {parts}"
            )
        stored, disk, tables = int(r["stored"]), int(r["bytes"]), r["tables"]  # type: ignore[call-overload]
        assert isinstance(tables, list)
        print(
            f"  on disk: {disk / 1e6:,.1f} MB for {stored:,} spans = {disk / max(stored, 1):,.0f} bytes/span"
        )
        for name, table, index in tables:
            print(
                f"    {name:<22} table {table / max(stored, 1):>7,.0f} B/span   "
                f"indexes {index / max(stored, 1):>6,.0f} B/span"
            )
    print(
        "\nPeer reference (issue 2, same kind of machine): Arize Phoenix 20.26 stores about 45 LLM-shaped "
        "spans/s durably and lists spans at 64/87 ms p50/p95 with 106k stored."
    )
    for r in results:
        print(f"ratio {r['label']}: {float(r['rate']) / 45:,.0f}x Phoenix's durable spans/s")  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--fill", type=int, default=1_000_000, help="spans stored before timing queries")
    parser.add_argument("--requests", type=int, default=200, help="requests in each throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds from an empty store, without --sizes")
    parser.add_argument(
        "--sizes",
        default="",
        help="store sizes for one round each, e.g. 0,500k,1M,2M (repeat one for consecutive rounds)",
    )
    parser.add_argument("--shape", choices=["phoenix", "agent"], default="phoenix")
    parser.add_argument(
        "--warmup",
        type=int,
        default=40,
        help="requests sent after each bulk fill before the measured round (0: none); printed apart",
    )
    parser.add_argument(
        "--fill-without-search",
        action="store_true",
        help="bulk fills skip the full-text index (PostgreSQL builds it at ~2k spans/s; the "
        "server's indexer then works through the backlog within its CPU budget during the rounds)",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="PostgreSQL: print each round's costliest statements (pg_stat_statements), in µs a span",
    )
    args = parser.parse_args()
    results = []
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_one("sqlite", f"sqlite:///{Path(tmp) / 'watchkeep.db'}", args))
    if args.db in ("postgres", "both"):
        settings = {**TUNED_POSTGRES, **(PG_STATEMENTS_SETTINGS if args.statements else {})}
        with TempPostgres(settings=settings) as pg:
            print(f"[postgres] PostgreSQL {pg.version()} ({pg.bin_dir}), {pg.settings}", flush=True)
            results.append(run_one("postgres", pg.url, args, pg.pid()))
    report(results)


if __name__ == "__main__":
    main()
