"""The privacy pillar's tables: the hash-chained audit log and each project's privacy settings.

``audit_events`` is append-only: each row's ``hash`` is SHA-256 over the previous row's
hash and the row's canonical content, so an edited, inserted or removed row breaks the
chain at that point (``security.audit``). It has no foreign keys on purpose: the record of
a project's deletion outlives the project. ``privacy_settings`` holds a project's PII
actions per entity and its retention periods per kind of data (JSON, validated by the
security layer).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text

from watchkeep.store.tables import Json, RowId, metadata

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", RowId, primary_key=True, autoincrement=True),
    Column("at_unix_nano", BigInteger, nullable=False),
    Column("project_id", RowId, nullable=True),  # None: organisation- or server-wide
    Column("actor", String(200), nullable=False),  # user:alice@x, key:wk_abc1, system, cli
    Column("action", String(64), nullable=False),  # key.create, route.update, alias.move, login.failed ...
    Column("target", String(300), nullable=True),  # what it acted on: "route:chat", "user:7"
    Column("before", Json, nullable=True),
    Column("after", Json, nullable=True),
    Column("detail", Text, nullable=True),  # reason, IP address, user agent
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Index(None, "project_id", "at_unix_nano"),
    Index(None, "action", "at_unix_nano"),
    sqlite_autoincrement=True,
)

privacy_settings = Table(
    "privacy_settings",
    metadata,
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("pii", Json, nullable=False),  # {"email": "mask" | "hash" | "drop" | "keep", ...}
    Column("retention", Json, nullable=False),  # {"spans": days, "payloads": days, ...}
    Column("updated_by", String(200), nullable=False),
    Column("updated_at_unix_nano", BigInteger, nullable=False),
)
