"""The release registry's tables: model and prompt versions, and the alias event log.

Versions are immutable and numbered per (project, name); ``content_digest`` finds a
content-identical registration. ``alias_events`` is append-only and the source of truth
for aliases (the current alias is a projection of it, ``registry.aliases.project``); the
unique (project, kind, name, alias, seq) makes two concurrent moves planned from the same
state collide instead of both landing.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from watchkeep.store.tables import Json, RowId, metadata

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("backend", String(100), nullable=False),
    Column("params", Json, nullable=False),
    Column("artifact_uri", Text, nullable=True),
    Column("artifact_digest", String(200), nullable=True),
    Column("version_metadata", Json, nullable=False),
    Column("parent", Integer, nullable=True),
    Column("training_dataset", String(300), nullable=True),
    Column("eval_runs", Json, nullable=False),
    Column("content_digest", String(64), nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", "version"),
    Index(None, "project_id", "name", "content_digest"),
    sqlite_autoincrement=True,
)

prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("template", Json, nullable=False),  # a string, or a list of {role, content} messages
    Column("variables", Json, nullable=False),
    Column("model_settings", Json, nullable=False),
    Column("message", Text, nullable=True),
    Column("parent", Integer, nullable=True),
    Column("content_digest", String(64), nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", "version"),
    Index(None, "project_id", "name", "content_digest"),
    sqlite_autoincrement=True,
)

alias_events = Table(
    "alias_events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # model | prompt | dataset: what the name is
    Column("name", String(200), nullable=False),
    Column("alias", String(100), nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, ... per (kind, name, alias)
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),  # None: the alias was removed
    Column("event_kind", String(16), nullable=False),  # move | promote | forced | rollback | ...
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "kind", "name", "alias", "seq"),
    Index(None, "project_id", "kind", "name"),
    sqlite_autoincrement=True,
)

# What a move of an alias must pass first (``registry.policy.PromotionPolicy`` as JSON),
# one row per (project, kind, name, alias); no row: the alias moves without gates.
promotion_policies = Table(
    "promotion_policies",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("alias", String(100), nullable=False),
    Column("policy", Json, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "kind", "name", "alias"),
    sqlite_autoincrement=True,
)

# A canary analysis of one model name on one route: the worker compares the candidate
# alias's version with the baseline alias's, on the route's spans after ``watermark``,
# and promotes or rolls back on its own. ``state`` is ``registry.canary.CanaryState`` JSON.
canaries = Table(
    "canaries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),  # the registered model
    Column("route", String(200), nullable=False),  # the gateway route whose spans are compared
    Column("baseline_alias", String(100), nullable=False),
    Column("candidate_alias", String(100), nullable=False),
    Column("baseline_version", Integer, nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("mode", String(16), nullable=False),  # live | shadow
    Column("share", Float, nullable=False),  # the candidate's share of traffic (live)
    Column("policy", Json, nullable=False),  # registry.canary.CanaryPolicy as JSON
    Column("state", Json, nullable=False),  # registry.canary.CanaryState as JSON
    Column("status", String(16), nullable=False),  # running | promoted | rolled_back | stopped
    Column("reason", Text, nullable=True),  # why it ended
    Column("watermark_unix_nano", BigInteger, nullable=False),  # spans up to here are counted
    Column("started_by", String(200), nullable=False),
    Column("started_at_unix_nano", BigInteger, nullable=False),
    Column("updated_at_unix_nano", BigInteger, nullable=False),
    Column("ended_at_unix_nano", BigInteger, nullable=True),
    Index(None, "project_id", "status"),
    Index(None, "project_id", "name"),
    # One running canary per model and route, even when two starts race.
    Index(
        "uq_canaries_running",
        "project_id",
        "name",
        "route",
        unique=True,
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
    sqlite_autoincrement=True,
)
