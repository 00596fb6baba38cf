"""Which tables and indexes a SQLite span write dirties, empty and at size (issue 17).

The ingest writer's cost at size follows the pages each commit writes to the WAL (decision
0024): an index keyed by a random id dirties about one leaf per new key once it has more
leaves than a commit has keys. This writes ``--commits`` groups of ``--group`` exports (512
Phoenix-shaped spans each, as ``benchmarks/writer.py`` makes them) into a copy of a
bulk-filled store after a checkpoint, then reads the page number of every frame in the WAL
and names the b-tree that owns it (SQLite's ``dbstat`` table). Printed: WAL frames a span
by b-tree, and how many of them were distinct pages.

    python benchmarks/wal_frames.py --size 0 --size 2000000
"""

from __future__ import annotations

import argparse
import sqlite3
import struct
import tempfile
import time
from collections import Counter
from pathlib import Path

from watchkeep.devtools import bulk_fill
from watchkeep.store.engine import make_engine
from watchkeep.store.span_writer import SpanWriter
from writer import decoded_groups, store_copy

WAL_HEADER, FRAME_HEADER = 32, 24
WARM_GROUPS = 2  # written and checkpointed first, so the measured commits find a warm cache


def wal_pages(wal: Path) -> list[int]:
    """The page number of each frame in ``wal`` (the WAL format's frame headers)."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    pages, offset = [], WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(data):
        pages.append(struct.unpack(">I", data[offset : offset + 4])[0])
        offset += FRAME_HEADER + page_size
    return pages


def measure(size: int, group: int, commits: int, stores: Path) -> None:
    with store_copy(stores, size) as (db, url, project):
        need = (WARM_GROUPS * bulk_fill.GROUP_CHUNKS + group * commits) * bulk_fill.CHUNK_SPANS
        exports = [b for g in decoded_groups(project, need, time.time_ns()) for b in g]
        engine = make_engine(url)
        writer = SpanWriter(engine, sqlite_cache_mib=64)
        at = WARM_GROUPS * bulk_fill.GROUP_CHUNKS
        try:
            writer.write(exports[:at])
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.commit()
            spans = 0
            for _ in range(commits):
                spans += writer.write(exports[at : at + group])
                at += group
            # read while the engine's connections are open: the last one to close checkpoints
            frames = wal_pages(Path(f"{db}-wal"))
            raw = sqlite3.connect(db)
            try:
                owner = dict(raw.execute("SELECT pageno, name FROM dbstat"))
            finally:
                raw.close()
        finally:
            writer.close()
            engine.dispose()
        written = Counter(owner.get(p, "(free list)") for p in frames)
        distinct = Counter(owner.get(p, "(free list)") for p in set(frames))
    print(
        f"\nstore of {size:,} spans: {commits} commits of {group} x {bulk_fill.CHUNK_SPANS} spans, "
        f"{len(frames):,} WAL frames = {len(frames) / spans:.2f} a span"
    )
    print(f"  {'frames/span':>11} {'distinct':>9}  b-tree")
    for name, n in written.most_common():
        if n / spans >= 0.005:
            print(f"  {n / spans:>11.3f} {distinct[name] / spans:>9.3f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="spans stored first (repeatable)")
    parser.add_argument("--group", type=int, default=4, help="exports a commit (the server's: up to 4)")
    parser.add_argument("--commits", type=int, default=8)
    parser.add_argument("--stores", type=Path, default=Path(tempfile.gettempdir()) / "watchkeep-writer-bench")
    args = parser.parse_args()
    args.stores.mkdir(parents=True, exist_ok=True)
    for size in args.size or [0, 2_000_000]:
        measure(size, args.group, args.commits, args.stores)


if __name__ == "__main__":
    main()
