"""Background upkeep of the database, off the ingest writer's critical path.

SQLite: by default SQLite checkpoints inside the commit that crosses
``wal_autocheckpoint``, which put the copy of written pages back into the database file
on the writer's critical path (measured: half of each group commit). Connections run
with automatic checkpoints off; this thread runs PASSIVE checkpoints (they never block
the writer) and a RESTART one when the WAL passes a bound, so it cannot grow without
limit under constant load.

PostgreSQL: autovacuum analyses a table only after a minute and 10 % of change, so a
freshly filled store is queried with empty statistics and bad plans (measured: 22 ms
instead of 5 ms for a trace page). This thread analyses the queried tables as soon as
they have doubled since their last analysis: a handful of analyses take a store from
empty to millions of rows (each samples at most 30,000 rows, about 0.3 s of CPU that
ingest would otherwise have), and plans only need sizes right to within a factor of
two. ``span_payloads`` is only read by its span's row id, so its statistics never matter.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import threading

from sqlalchemy import Engine, text

from watchkeep.store.engine import is_sqlite

log = logging.getLogger(__name__)
HOT_TABLES = ("spans", "traces", "scores", "span_metadata")
_PR_SET_NAME = 15


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` (at most 15 bytes) in the operating system too, so
    ``top -H``, ``py-spy`` and ``/proc/PID/task/*/comm`` tell the ingest writer and the
    upkeep thread apart from the event loop (Python 3.11 names threads only for itself)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


class StoreMaintenance:
    """Runs the dialect's upkeep every ``interval`` seconds on its own thread."""

    # Every 3 s rather than 0.5: a page dirtied several times between checkpoints is copied
    # once, which on a 1M-span store halved the checkpoints' CPU a span (7.7 against 14.2 µs,
    # decision 0024) and did not change the writer's (decision 0003, item 10).
    def __init__(self, engine: Engine, interval: float = 3.0, wal_restart_pages: int = 32_768) -> None:
        self._engine = engine
        self._sqlite = is_sqlite(engine.url.drivername)
        self._interval = interval if self._sqlite else max(interval, 5.0)
        self._restart_pages = wal_restart_pages
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchkeep-store-upkeep", daemon=True)

    def start(self) -> None:
        """Start the upkeep thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then do a final round (a truncating checkpoint on SQLite)."""
        self._stop.set()
        self._thread.join(10)
        if self._sqlite:
            self.checkpoint("TRUNCATE")

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int] | None:
        """Run one SQLite WAL checkpoint; returns (busy, WAL pages, pages checkpointed)."""
        try:
            with self._engine.connect() as conn:
                row = conn.execute(text(f"PRAGMA wal_checkpoint({mode})")).one()
                conn.commit()
                return int(row[0]), int(row[1]), int(row[2])
        except Exception:
            log.exception("WAL checkpoint failed")
            return None

    def analyze_changed(self) -> list[str]:
        """ANALYZE the PostgreSQL tables that have doubled; returns their names."""
        query = text(
            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.relname = ANY(:tables) "
            "AND s.n_mod_since_analyze > GREATEST(1000, GREATEST(c.reltuples, 0))"
        )
        done: list[str] = []
        try:
            with self._engine.connect() as conn:
                for (table,) in conn.execute(query, {"tables": list(HOT_TABLES)}).all():
                    conn.execute(text(f'ANALYZE "{table}"'))
                    done.append(str(table))
                conn.commit()
        except Exception:
            log.exception("ANALYZE failed")
        return done

    def _run(self) -> None:
        name_os_thread("wk-upkeep")
        while not self._stop.wait(self._interval):
            if not self._sqlite:
                self.analyze_changed()
                continue
            result = self.checkpoint("PASSIVE")
            if result is not None and result[1] > self._restart_pages:
                self.checkpoint("RESTART")
