"""Search indexer benchmark: cost per span of the full-text index, on each database.

Stores LLM-shaped spans with chat messages (``--chars`` of message text a span, the
default 800 as in docs/api.md) straight through the span writer, then times
``SearchIndexer.catch_up`` over them: wall time and this process's CPU per span, and
the spans per second one core of indexing keeps up with. On PostgreSQL most of the work
(``to_tsvector``, the GIN insert) is the server's, so its wall time is what counts.

    python benchmarks/search_index.py                     # both databases, 50,000 spans
    python benchmarks/search_index.py --db sqlite --spans 5000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from watchkeep.devtools.postgres import TempPostgres
from watchkeep.devtools.synthetic_calls import Traffic, generate, write
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.text_search import SearchIndexer

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


def _messages(rng: np.random.Generator, chars: int) -> tuple[str, str]:
    def text(n: int) -> str:
        out: list[str] = []
        while sum(len(w) + 1 for w in out) < n:
            out.append(str(rng.choice(WORDS)))
        return " ".join(out)

    prompt = [{"role": "system", "content": text(chars // 4)}, {"role": "user", "content": text(chars // 4)}]
    answer = [{"role": "assistant", "content": text(chars // 2), "finish_reason": "stop"}]
    return json.dumps(prompt), json.dumps(answer)


def run(url: str, spans: int, chars: int, max_chars: int) -> dict[str, float]:
    """Fill a fresh database at ``url`` and index it; the measured costs."""
    engine = make_engine(url)
    upgrade(engine)
    project = ProjectRepository(engine).create("bench")
    now = time.time_ns()
    batch = generate(project.id, spans, now - 3_600_000_000_000, now, Traffic(), seed=1)
    rng = np.random.default_rng(2)
    pool = [_messages(rng, chars) for _ in range(200)]
    batch.payloads = [(*p[:3], *pool[i % len(pool)], p[5]) for i, p in enumerate(batch.payloads)]
    write(engine, batch)
    indexer = SearchIndexer(engine, max_chars=max_chars)
    wall, cpu = time.perf_counter(), time.process_time()
    done = indexer.catch_up(timeout=600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    return {"spans": done, "us_per_span_wall": wall / done * 1e6, "us_per_span_cpu": cpu / done * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--chars", type=int, default=800, help="characters of message text a span")
    parser.add_argument("--max-chars", type=int, default=2000, help="WATCHKEEP_SEARCH_INDEX_MAX_CHARS")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            results["sqlite"] = run(
                f"sqlite:///{Path(tmp) / 'bench.db'}", args.spans, args.chars, args.max_chars
            )
    if args.db in ("postgres", "both"):
        with TempPostgres() as pg:
            results["postgres"] = run(pg.url, args.spans, args.chars, args.max_chars)
    for db, r in results.items():
        print(
            f"{db:9s} {int(r['spans']):>8,d} spans  {r['us_per_span_wall']:7.1f} us/span wall  "
            f"{r['us_per_span_cpu']:7.1f} us/span CPU here  ~{1e6 / r['us_per_span_wall']:>9,.0f} spans/s a core"
        )


if __name__ == "__main__":
    main()
