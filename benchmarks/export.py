"""Export benchmark: ``watchkeep export`` rate and peak memory for each format, at 1M spans.

For each database it starts a real ``watchkeep server``, fills it with LLM-shaped spans
through OTLP (as ``benchmarks/ingest.py`` does), and runs ``watchkeep export`` (one
streamed ``GET /api/v1/export`` request, NDJSON) as a separate process for jsonl, csv and
parquet, first at a tenth of the size and then at the
full size: spans/s, and the exporting process's peak RSS at both sizes (flat memory means
the second is about the first). Every export's row count is checked against the fill.
The raw stream's read rate (lines counted, nothing parsed) is printed first as the
ceiling an export can approach.

    python benchmarks/export.py                        # both databases, 1M spans
    WATCHKEEP_BENCH_EXPORT_SPANS=20000 python benchmarks/export.py --db sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ingest import SPANS_PER_REQUEST, make_bodies, post_all, server
from watchkeep.devtools.postgres import TempPostgres

FORMATS = ("jsonl", "csv", "parquet")
TARGET_SPANS_PER_S = 10_000  # a 1M-span export within two minutes


def fill(url: str, key: str, stored: int, target: int, seed: int) -> int:
    """Send synthetic exports until ``target`` spans are stored; the new total."""
    while stored < target:
        n = min(100, -(-(target - stored) // SPANS_PER_REQUEST))
        asyncio.run(post_all(url, key, make_bodies(n, seed=seed)))
        stored += n * SPANS_PER_REQUEST
        seed += 1
    return stored


def export_once(url: str, key: str, fmt: str, out: Path) -> tuple[int, float, float]:
    """Run ``watchkeep export``; (spans written, seconds, peak RSS MiB of that process)."""
    env = {**os.environ, "WATCHKEEP_URL": url, "WATCHKEEP_API_KEY": key}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchkeep.cli.main", "export", "--format", fmt, "-o", str(out), "--quiet"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    message = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"export {fmt} failed: {message}")
    found = re.search(r"exported ([\d,]+) span", message)
    if found is None:
        raise RuntimeError(f"unexpected export output: {message}")
    return int(found.group(1).replace(",", "")), seconds, usage.ru_maxrss / 1024


def stream_rate(url: str, key: str) -> float:
    """Spans/s of reading ``GET /api/v1/export`` alone: the ceiling of any export."""
    started, lines = time.perf_counter(), 0
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("GET", f"{url}/api/v1/export", headers=headers, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
    return (lines - 1) / (time.perf_counter() - started)  # less the trailer


def run_one(label: str, database_url: str | None, spans: int) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as home, server(database_url, Path(home)) as started:
        url, key = started[0], started[1]  # (url, key, ...): the OTLP/gRPC address is not used here
        stored = 0
        for size in (max(spans // 10, SPANS_PER_REQUEST), spans):
            stored = fill(url, key, stored, size, seed=len(results) * 1000 + 1)
            print(f"[{label}] stored {stored:,} spans", flush=True)
            print(f"[{label}] raw stream: {stream_rate(url, key):,.0f} spans/s", flush=True)
            for fmt in FORMATS:
                out = Path(home) / f"export.{fmt}"
                count, seconds, rss = export_once(url, key, fmt, out)
                if count != stored:
                    raise RuntimeError(f"{fmt}: exported {count:,} of {stored:,} spans")
                row = {
                    "db": label,
                    "format": fmt,
                    "spans": count,
                    "rate": count / seconds,
                    "rss": rss,
                    "mib": out.stat().st_size / 2**20,
                }
                results.append(row)
                print(f"[{label}] {fmt}: {row['rate']:,.0f} spans/s, peak RSS {rss:,.0f} MiB", flush=True)
                out.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--spans",
        type=int,
        default=int(os.environ.get("WATCHKEEP_BENCH_EXPORT_SPANS", "1000000")),
        help="spans stored and exported (env WATCHKEEP_BENCH_EXPORT_SPANS)",
    )
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    if args.db in ("sqlite", "both"):
        results += run_one("sqlite", None, args.spans)
    if args.db in ("postgres", "both"):
        with TempPostgres() as pg:
            results += run_one("postgres", pg.url, args.spans)
    print()
    print(
        f"{'database':<10} {'format':<8} {'spans':>10} {'spans/s':>10} {'target':>8} {'peak RSS MiB':>13} {'file MiB':>9}"
    )
    for r in results:
        print(
            f"{r['db']:<10} {r['format']:<8} {r['spans']:>10,} {r['rate']:>10,.0f} "
            f"{TARGET_SPANS_PER_S:>8,} {r['rss']:>13,.0f} {r['mib']:>9,.1f}"
        )
    print("\nPeak RSS at a tenth of the spans and at all of them: flat memory means they are close.")


if __name__ == "__main__":
    main()
