"""Engine construction for the two supported databases.

SQLite gets WAL mode, a busy timeout and the configured ``synchronous`` level on every
connection, so readers never block the single group-committing writer. PostgreSQL goes
through psycopg 3 with a small pool, and with JIT compilation off: the planner's cost of a
grouped read with a per-row look-up (a user's totals over a day) passes ``jit_above_cost``
and PostgreSQL then spends about 400 ms compiling a query that runs in 70 ms. Our queries
are short and indexed; none gains from JIT.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import ConnectionPoolEntry

WAL_KEEP_BYTES = 64 * 1024 * 1024


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names an SQLite database."""
    return url.startswith("sqlite")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns through orjson: several times faster than the standard library both ways,
# which matters where rows carry JSON (evaluation results, monitor specs, route configs).
_JSON = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
# A failed statement's error (and so its log line) never shows the bound values: they are
# payloads, password hashes and key digests (issue 16: no secrets or payloads in logs).
_SAFE: dict[str, Any] = {**_JSON, "hide_parameters": True}


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 8) -> Engine:
    """An engine for ``url`` with the per-dialect settings watchkeep relies on."""
    if is_sqlite(url):
        engine = create_engine(
            url,
            **_SAFE,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # 16 MiB a connection (the ingest writer sets its own): readers touch few pages,
            # and a pool of large caches kept growing with the store.
            cur.execute("PRAGMA cache_size=-16384")
            cur.execute("PRAGMA temp_store=MEMORY")
            # Checkpoints run on a background thread (store.checkpointer), not in commits.
            cur.execute("PRAGMA wal_autocheckpoint=0")
            # A checkpoint that restarts the WAL cuts its file back to 64 MiB: otherwise the
            # file keeps the size of the largest WAL ever written (measured: 180 MB idle on a
            # 140k-span store, a third of its size on disk).
            cur.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
            cur.close()

        return engine
    return create_engine(
        url,
        **_SAFE,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"options": "-c jit=off"},
    )
