"""Tables of the indexes kept behind the commit, by a pass over new spans (``index_marks``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, SmallInteger, String, Table

from watchkeep.store.tables import RowId, metadata

# Each pass's high-water mark over ``spans.id``, by name (revision 0010; the search index
# tables themselves are raw DDL there, an FTS5 table on SQLite: see ``text_search``).
search_index_state = Table(
    "search_index_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# The gaps in span ids each pass jumped (revision 0030, PostgreSQL only: its ids are drawn
# before their transaction commits): later passes take the spans that commit into them
# (``index_gaps``). ``last_id`` is inclusive.
index_gaps = Table(
    "index_gaps",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("first_id", BigInteger, primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("jumped_at_unix_nano", BigInteger, nullable=False),
)

# Span ids the writer drew and left unused, a duplicate's (revision 0031, PostgreSQL only):
# the passes move over them at once instead of taking them for a gap (``void_ids``).
# ``last_id`` is inclusive.
void_span_ids = Table(
    "void_span_ids",
    metadata,
    Column("first_id", BigInteger, primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("voided_at_unix_nano", BigInteger, nullable=False, index=True),
)

# The traces of each user and session in the trace list's order (revision 0028, ADR 0034):
# one row a trace and kind (``trace_lookups.USER``, ``SESSION``) whose trace row names one,
# written in sorted batches by ``TraceLookupIndexer`` instead of two indexes on ``traces``
# that every new trace dirtied a random leaf of at commit. ``trace_row_id`` finds a trace's
# rows again when a later span moves its start or names its user, and when it is deleted.
# The trace's end (revision 0029) lets the span list bound a user's traces by it from the
# key's range alone: in the row on SQLite (no rowid), carried in the key on PostgreSQL.
trace_lookups = Table(
    "trace_lookups",
    metadata,
    Column("project_id", RowId, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("value", String(256), nullable=False),
    Column("start_time_unix_nano", BigInteger, nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("trace_row_id", BigInteger, nullable=False),
    Column("end_time_unix_nano", BigInteger, nullable=False),
    PrimaryKeyConstraint(
        "project_id",
        "kind",
        "value",
        "start_time_unix_nano",
        "trace_id",
        postgresql_include=["end_time_unix_nano"],
    ),
    Index("ix_trace_lookups_trace_row_id", "trace_row_id"),
    sqlite_with_rowid=False,
)
