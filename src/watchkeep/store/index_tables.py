"""Tables of the indexes kept behind the commit, by a pass over new spans (``index_marks``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, SmallInteger, String, Table

from watchkeep.store.tables import RowId, metadata

# Each pass's high-water mark over ``spans.id``, by name (revision 0010; the search index
# tables themselves are raw DDL there, an FTS5 table on SQLite: see ``text_search``).
search_index_state = Table(
    "search_index_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# The traces of each user and session in the trace list's order (revision 0028, ADR 0034):
# one row a trace and kind (``trace_lookups.USER``, ``SESSION``) whose trace row names one,
# written in sorted batches by ``TraceLookupIndexer`` instead of two indexes on ``traces``
# that every new trace dirtied a random leaf of at commit. ``trace_row_id`` finds a trace's
# rows again when a later span moves its start or names its user, and when it is deleted.
trace_lookups = Table(
    "trace_lookups",
    metadata,
    Column("project_id", RowId, primary_key=True),
    Column("kind", SmallInteger, primary_key=True),
    Column("value", String(256), primary_key=True),
    Column("start_time_unix_nano", BigInteger, primary_key=True),
    Column("trace_id", String(32), primary_key=True),
    Column("trace_row_id", BigInteger, nullable=False),
    Index("ix_trace_lookups_trace_row_id", "trace_row_id"),
    sqlite_with_rowid=False,
)
