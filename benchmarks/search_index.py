"""Search indexer benchmark: cost per span of the full-text index, on each database.

Stores spans of two shapes, then times ``SearchIndexer.catch_up`` over them: ``chat``,
LLM-shaped spans with chat messages drawn from 11 words (``--chars`` of message text a
span, the default 800 as in docs/api.md), stored straight through the span writer; and
``phoenix``, the ingest benchmark's spans (``devtools.bulk_fill``: every span an LLM call
with about 800 characters of messages over a 70-word vocabulary, system instructions
and messages as OpenTelemetry GenAI attributes); and ``prose``, the chat shape with
messages cut from this repository's English documentation (``docs/*.md``: a real
vocabulary, which small word lists flatter). For each it prints the wall time and
this process's CPU a span, on PostgreSQL the database's CPU a span (all its processes,
from /proc), the spans/s the indexer keeps up with flat out and within the default
budget (a quarter of each second on PostgreSQL, a tenth on SQLite), and the index's bytes
a span (SQLite: the FTS5 table's pages, ``dbstat``; PostgreSQL: ``search_documents`` with
its indexes).

    python benchmarks/search_index.py                     # both databases, every shape, 50,000 spans
    python benchmarks/search_index.py --db sqlite --shape chat --spans 5000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from sqlalchemy import Engine

from watchkeep.devtools.bulk_fill import fill_store
from watchkeep.devtools.postgres import TempPostgres
from watchkeep.devtools.synthetic_calls import Traffic, generate, write
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.text_search import SearchIndexer, default_budget

WORDS = [
    "refund",
    "policy",
    "invoice",
    "shipping",
    "delay",
    "contract",
    "renewal",
    "account",
    "password",
    "reset",
    "order",
]


PROSE = " ".join(
    p.read_text() for p in sorted((Path(__file__).resolve().parent.parent / "docs").glob("*.md"))
)


def _messages(rng: np.random.Generator, chars: int, prose: bool = False) -> tuple[str, str]:
    words = PROSE.split()

    def text(n: int) -> str:
        if prose:  # a run of the documentation's words from a random place
            at = int(rng.integers(0, len(words) - n))
            out = words[at : at + n]
            return " ".join(out)[:n]
        out = []
        while sum(len(w) + 1 for w in out) < n:
            out.append(str(rng.choice(WORDS)))
        return " ".join(out)

    prompt = [{"role": "system", "content": text(chars // 4)}, {"role": "user", "content": text(chars // 4)}]
    answer = [{"role": "assistant", "content": text(chars // 2), "finish_reason": "stop"}]
    return json.dumps(prompt), json.dumps(answer)


def _fill_chat(engine: Engine, project_id: int, spans: int, chars: int, prose: bool = False) -> None:
    now = time.time_ns()
    batch = generate(project_id, spans, now - 3_600_000_000_000, now, Traffic(), seed=1)
    rng = np.random.default_rng(2)
    pool = [_messages(rng, chars, prose) for _ in range(200 if not prose else 5000)]
    batch.payloads = [(*p[:3], *pool[i % len(pool)], p[5]) for i, p in enumerate(batch.payloads)]
    write(engine, batch)


def _server_cpu(postmaster: psutil.Process | None) -> float:
    """CPU seconds of the database's processes so far (0 for SQLite: it runs in this one)."""
    if postmaster is None:
        return 0.0
    total = 0.0
    for proc in postmaster.children():
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _index_bytes(engine: Engine) -> int:
    """The search index's bytes: its FTS5 tables' pages (SQLite), its table, TOAST and
    indexes (PostgreSQL)."""
    with engine.connect() as conn:
        if engine.url.drivername.startswith("sqlite"):
            query = "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'search_fts%'"
        else:
            query = "SELECT pg_total_relation_size('search_documents')"
        return int(conn.exec_driver_sql(query).scalar() or 0)


def run(
    url: str, shape: str, spans: int, chars: int, max_chars: int, server_pid: int | None
) -> dict[str, float]:
    """Fill a fresh database at ``url`` with ``shape`` spans and index it; the measured costs."""
    engine = make_engine(url)
    upgrade(engine)
    project = ProjectRepository(engine).create("bench")
    if shape in ("chat", "prose"):
        _fill_chat(engine, project.id, spans, chars, prose=shape == "prose")
    else:
        fill_store(url, project.id, spans, end_ns=time.time_ns(), search_index=False)
    postmaster = None if server_pid is None else psutil.Process(server_pid)
    indexer = SearchIndexer(engine, max_chars=max_chars)
    wall, cpu, db = time.perf_counter(), time.process_time(), _server_cpu(postmaster)
    done = indexer.catch_up(timeout=600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    db = _server_cpu(postmaster) - db
    size = _index_bytes(engine)
    engine.dispose()
    return {
        "bytes_per_span": size / done if done else 0.0,
        "spans": done,
        "us_per_span_wall": wall / done * 1e6,
        "us_per_span_cpu": cpu / done * 1e6,
        "us_per_span_db": db / done * 1e6,
        "budget": default_budget(server_pid is None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--shape", choices=("chat", "phoenix", "prose", "all"), default="all")
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--chars", type=int, default=800, help="characters of message text a chat span")
    parser.add_argument("--max-chars", type=int, default=2000, help="WATCHKEEP_SEARCH_INDEX_MAX_CHARS")
    args = parser.parse_args()
    shapes = ("chat", "phoenix", "prose") if args.shape == "all" else (args.shape,)
    results: list[tuple[str, str, dict[str, float]]] = []
    for shape in shapes:
        if args.db in ("sqlite", "both"):
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                results.append(
                    ("sqlite", shape, run(url, shape, args.spans, args.chars, args.max_chars, None))
                )
        if args.db in ("postgres", "both"):
            with TempPostgres() as pg:
                r = run(pg.url, shape, args.spans, args.chars, args.max_chars, pg.pid())
                results.append(("postgres", shape, r))
    for db, shape, r in results:
        wall = r["us_per_span_wall"]
        server = f"{r['us_per_span_db']:6.1f} us/span DB CPU" if db == "postgres" else " " * 22
        print(
            f"{db:9s} {shape:8s} {int(r['spans']):>8,d} spans  {wall:6.1f} us/span wall  "
            f"{r['us_per_span_cpu']:6.1f} us/span CPU here  {server}  {1e6 / wall:>7,.0f} spans/s flat out  "
            f"{r['budget'] * 1e6 / wall:>6,.0f} spans/s at budget {r['budget']:g}  "
            f"{r['bytes_per_span']:>6,.0f} B/span of index"
        )


if __name__ == "__main__":
    main()
