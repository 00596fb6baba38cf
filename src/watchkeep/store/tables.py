"""The relational schema: one SQLAlchemy table per stored thing.

Span rows are immutable and carry hot fields as typed columns (model, tokens, cost,
latency, status) so the common "project + time range + filter" queries hit indexes;
everything else stays in JSON. Message payloads live in ``span_payloads`` so they can be
redacted, encrypted and expired without touching span rows. ``traces`` holds one row per
trace with idempotent facts only (first start, last end, root name, error flag, trace-level
attributes): counters are summed from spans on read, so replayed spans can never double
count. The telemetry tables (spans, payloads, traces, resources) carry the project id of
the key that sent them but no foreign key: a per-row check cost a fifth of a PostgreSQL
span insert and guarded nothing the ingest path does not already guarantee (migration
0003). Times are integers in Unix nanoseconds, as in OTLP, which keeps inserts and range
scans cheap on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from watchkeep.store.rows import METADATA_KEY_CHARS, METADATA_VALUE_CHARS

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A 64-bit auto-increment key that SQLite treats as its rowid.
RowId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

projects = Table(
    "projects",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    # The organisation whose members see the project (revision 0012; no foreign key so the
    # column could be added in place; the repository sets it, to "default" when none is named).
    Column("organisation_id", BigInteger, nullable=True, index=True),
    sqlite_autoincrement=True,  # a deleted project's id goes to no one else (revision 0007)
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("key_hash", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    Column("name", String(200), nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Column("revoked_at_unix_nano", BigInteger, nullable=True),
    # A key past its expiry authenticates no more, like a revoked one (NULL: never expires).
    Column("expires_at_unix_nano", BigInteger, nullable=True),
    sqlite_autoincrement=True,
)

# The span columns metrics read or filter on, carried by the start-time index on PostgreSQL
# (environment, release and the trace's row id: the environment and release filters read a
# span's own value, else its trace's; migration 0027).
METRIC_COLUMNS = [
    "request_model",
    "response_model",
    "provider",
    "model_version",
    "prompt_version",
    "status_code",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "duration_ms",
    "time_to_first_token_ms",
    "environment",
    "release",
    "trace_row_id",
]

spans = Table(
    "spans",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("parent_span_id", String(16), nullable=True),
    Column("name", String(1024), nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("status_message", Text, nullable=True),
    Column("start_time_unix_nano", BigInteger, nullable=False),
    Column("end_time_unix_nano", BigInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("service_name", String(256), nullable=True),
    Column("operation", String(64), nullable=True),
    Column("provider", String(128), nullable=True),
    Column("request_model", String(256), nullable=True),
    Column("response_model", String(256), nullable=True),
    Column("input_tokens", BigInteger, nullable=True),
    Column("output_tokens", BigInteger, nullable=True),
    Column("total_tokens", BigInteger, nullable=True),
    Column("cost_usd", Float, nullable=True),
    Column("time_to_first_token_ms", Float, nullable=True),
    Column("finish_reason", String(64), nullable=True),
    Column("user_id", String(256), nullable=True),
    Column("session_id", String(256), nullable=True),
    Column("environment", String(128), nullable=True),
    Column("release", String(128), nullable=True),
    Column("tags", Json, nullable=True),
    Column("prompt_name", String(256), nullable=True),
    Column("prompt_version", String(128), nullable=True),
    Column("model_version", String(128), nullable=True),
    Column("attributes", Json, nullable=True),
    Column("resource_id", String(16), nullable=True),
    Column("events", Json, nullable=True),
    Column("ingested_at_unix_nano", BigInteger, nullable=False),
    # ``traces.id`` of the span's trace, upserted first: a new trace's id is the largest yet,
    # so its spans' keys append to this index (ADR 0032). ``trace_id`` is kept unindexed;
    # readers reach a trace's spans by ``trace_row_id`` (``trace_attributes.spans_of_traces``).
    Column("trace_row_id", RowId, nullable=False),
    UniqueConstraint("trace_row_id", "span_id"),
    # PostgreSQL: metrics read a window by an index-only scan (migration 0023, ADR 0026)
    Index(None, "project_id", "start_time_unix_nano", postgresql_include=METRIC_COLUMNS),
    Index(None, "project_id", "request_model", "start_time_unix_nano"),
)

# OTel resources (service, SDK, host...) are the same for every span a process sends:
# stored once per project and content hash instead of on each span row.
resources = Table(
    "resources",
    metadata,
    Column("project_id", RowId, primary_key=True),
    Column("resource_id", String(16), primary_key=True),
    Column("attributes", Json, nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Keyed by the span's row id (``spans.id``), which ingest appends: a key index on the random
# (project, trace, span) dirtied a leaf page a span at size, written to the WAL and again by
# the checkpoint (ADR 0029). Readers join ``span_row_id = spans.id``; the trace and span ids
# are kept as plain columns (the erasure and export paths name rows by them).
span_payloads = Table(
    "span_payloads",
    metadata,
    Column("span_row_id", RowId, primary_key=True, autoincrement=False),
    Column("project_id", RowId, nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("input", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    # No index by project (revision 0025): deleting a project finds its payloads by its spans.
)

# Payloads whose span is not stored yet (GenAI log records sent before their span), keyed
# as they arrive; the write that stores the span moves them into ``span_payloads``.
early_payloads = Table(
    "early_payloads",
    metadata,
    Column("project_id", RowId, primary_key=True),
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("input", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
)

# SDK metadata (``watchkeep.metadata.*`` attributes) of the spans that carry any, one row
# per key: the metadata filter reads one range of the (project, key, value, start) index
# instead of every span's JSON attributes (ADR 0028). Keys and values are stored cut to
# their column length; the filter cuts what it looks for the same way.
span_metadata = Table(
    "span_metadata",
    metadata,
    Column("project_id", RowId, primary_key=True),
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("key", String(METADATA_KEY_CHARS), primary_key=True),
    Column("value", String(METADATA_VALUE_CHARS), nullable=False),
    Column("start_time_unix_nano", BigInteger, nullable=False),
    Index("ix_span_metadata_lookup", "project_id", "key", "value", "start_time_unix_nano", "trace_id"),
    sqlite_with_rowid=False,
)

traces = Table(
    "traces",
    metadata,
    # Spans point at their trace by this id (ADR 0032); AUTOINCREMENT: never handed on.
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("name", String(1024), nullable=True),
    Column("root_span_id", String(16), nullable=True),
    Column("start_time_unix_nano", BigInteger, nullable=False),
    Column("end_time_unix_nano", BigInteger, nullable=False),
    Column("has_error", Boolean, nullable=False),
    Column("user_id", String(256), nullable=True),
    Column("session_id", String(256), nullable=True),
    Column("environment", String(128), nullable=True),
    Column("release", String(128), nullable=True),
    Column("tags", Json, nullable=True),
    UniqueConstraint("project_id", "trace_id"),
    Index(None, "project_id", "start_time_unix_nano", "trace_id"),
    # Each filter index ends with the list's whole order (start, trace_id), so a filtered
    # page is the first rows of one index range on both databases (ADR 0026). Users and
    # sessions are looked up in ``trace_lookups``, kept behind the commit (ADR 0034).
    Index(None, "project_id", "release", "start_time_unix_nano", "trace_id"),
    Index(None, "project_id", "environment", "start_time_unix_nano", "trace_id"),
    # A rowid table on SQLite (revision 0004): rows are appended and only the narrow key
    # index takes the random inserts of random trace ids, not pages of whole rows.
    sqlite_autoincrement=True,
)
# Only tagged traces: a tag filter walks these, not every trace (untagged ones cost nothing).
Index(
    "ix_traces_tagged",
    traces.c.project_id,
    traces.c.start_time_unix_nano,
    traces.c.trace_id,
    sqlite_where=traces.c.tags.is_not(None),
    postgresql_where=traces.c.tags.is_not(None),
)

scores = Table(
    "scores",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=True),
    Column("name", String(256), nullable=False),
    Column("data_type", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("string_value", String(1024), nullable=True),
    Column("label", String(1024), nullable=True),
    Column("source", String(16), nullable=False),
    Column("comment", Text, nullable=True),
    Column("metadata", Json, nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    # Set by the sender so that a retried POST stores the score once (revision 0006).
    Column("idempotency_key", String(128), nullable=True),
    Index(None, "project_id", "trace_id"),
    Index(None, "project_id", "name", "created_at_unix_nano"),
    Index(None, "project_id", "idempotency_key", unique=True),
)

# --- monitoring (revision 0002) ----------------------------------------------------
# Monitors carry their spec as JSON plus the state machine's columns; ``lease_*`` lets
# several workers share the schedule without evaluating (or alerting) a monitor twice.
monitors = Table(
    "monitors",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("spec", Json, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("state_since_unix_nano", BigInteger, nullable=False),
    Column("pending_state", String(16), nullable=True),
    Column("pending_count", Integer, nullable=False),
    Column("last_value", Float, nullable=True),
    Column("last_message", Text, nullable=True),
    Column("last_evaluated_at_unix_nano", BigInteger, nullable=True),
    Column("last_notified_at_unix_nano", BigInteger, nullable=True),
    Column("next_run_at_unix_nano", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_unix_nano", BigInteger, nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Column("updated_at_unix_nano", BigInteger, nullable=False),
    # A silence (revision 0013): the monitor is still evaluated and its state recorded, but
    # no channel is notified until this time.
    Column("silenced_until_unix_nano", BigInteger, nullable=True),
    Column("silenced_by", String(200), nullable=True),
    Column("silence_reason", Text, nullable=True),
    UniqueConstraint("project_id", "name"),
    Index(None, "enabled", "next_run_at_unix_nano"),
    sqlite_autoincrement=True,  # alert history keeps monitor ids without a foreign key
)

alert_channels = Table(
    "alert_channels",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("config", Json, nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
)

# History outlives its monitor: no foreign key on monitor_id, the name is copied.
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("monitor_id", BigInteger, nullable=False),
    Column("monitor_name", String(200), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("message", Text, nullable=True),
    Column("deliveries", Json, nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Index(None, "project_id", "created_at_unix_nano"),
    Index(None, "project_id", "monitor_id", "created_at_unix_nano"),
)

# Binned summaries of drift reference windows, computed once and reused by every run.
drift_references = Table(
    "drift_references",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("cache_key", String(64), nullable=False),
    Column("summary", Json, nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "cache_key"),
)

# Closed buckets of anomaly monitors' metric series (one row per metric and bucket), so a
# restarted worker reads a day of reference buckets back instead of rescanning its spans.
monitor_series_buckets = Table(
    "monitor_series_buckets",
    metadata,
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("series_key", String(64), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("start_unix_nano", BigInteger, primary_key=True),
    Column("value", Float, nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
)

online_evaluators = Table(
    "online_evaluators",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("evaluator", String(64), nullable=False),
    Column("params", Json, nullable=True),
    Column("sample_rate", Float, nullable=False),
    Column("model", String(256), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("last_span_row_id", BigInteger, nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
)

# Process resource use in long form (one row per process and metric): not per project.
resource_samples = Table(
    "resource_samples",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("sampled_at_unix_nano", BigInteger, nullable=False),
    Column("host", String(256), nullable=False),
    Column("process", String(128), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Index(None, "metric", "sampled_at_unix_nano"),
)

# --- gateway routes (revision 0005) --------------------------------------------------
# Routes a project adds or replaces through the API, shared by every gateway process;
# ``config_revisions`` counts edits so processes notice a change with one cheap read.
gateway_routes = Table(
    "gateway_routes",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("spec", Json, nullable=False),
    Column("updated_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
)

config_revisions = Table(
    "config_revisions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# --- people (revision 0012) -----------------------------------------------------------
# Users log in to the console; keys stay for machines. A user's role in a project is its
# project membership's role, else its organisation membership's role (owner, admin,
# member, viewer; see security.authz). Secrets (session and invitation tokens) are stored
# as SHA-256 digests only.
organisations = Table(
    "organisations",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

users = Table(
    "users",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-cased
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(256), nullable=True),  # argon2id; NULL: cannot log in by password
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Column("disabled_at_unix_nano", BigInteger, nullable=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until_unix_nano", BigInteger, nullable=True),
    Column("last_login_at_unix_nano", BigInteger, nullable=True),
    sqlite_autoincrement=True,
)

memberships = Table(
    "memberships",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("organisation_id", RowId, ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", RowId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("organisation_id", "user_id"),
    Index(None, "user_id"),
)

project_memberships = Table(
    "project_memberships",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", RowId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "user_id"),
    Index(None, "user_id"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", RowId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Column("last_seen_at_unix_nano", BigInteger, nullable=False),
    Column("expires_at_unix_nano", BigInteger, nullable=False),
    Column("user_agent", String(300), nullable=True),
    Column("address", String(64), nullable=True),
    Index(None, "user_id"),
    Index(None, "expires_at_unix_nano"),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("organisation_id", RowId, ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False),
    # Set: the invitation grants a role in this project only; NULL: in the organisation.
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("email", String(320), nullable=False),
    Column("role", String(16), nullable=False),
    Column("invited_by_user_id", BigInteger, nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Column("expires_at_unix_nano", BigInteger, nullable=False),
    Column("accepted_at_unix_nano", BigInteger, nullable=True),
    Column("accepted_by_user_id", BigInteger, nullable=True),
    Column("revoked_at_unix_nano", BigInteger, nullable=True),
    Index(None, "organisation_id", "created_at_unix_nano"),
)

# --- collaboration (revision 0013) ----------------------------------------------------
# Annotation queues: items are traces picked by a filter or a random sample; each
# annotator labels an item once (a later label replaces theirs); the agreed label becomes
# a categorical score's ground truth, so the quality metrics read it.
annotation_queues = Table(
    "annotation_queues",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("score_name", String(256), nullable=False),
    Column("labels", Json, nullable=False),  # the label choices, in shortcut order
    Column("source", Json, nullable=True),  # how it was filled: filter, sample size, seed
    Column("annotators_per_item", Integer, nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
    sqlite_autoincrement=True,
)

annotation_items = Table(
    "annotation_items",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("queue_id", RowId, ForeignKey("annotation_queues.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=True),
    Column("position", Integer, nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("queue_id", "trace_id"),
    Index(None, "queue_id", "position"),
)

annotation_labels = Table(
    "annotations",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("item_id", RowId, ForeignKey("annotation_items.id", ondelete="CASCADE"), nullable=False),
    Column("queue_id", BigInteger, nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("user_id", RowId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(1024), nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Column("updated_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("item_id", "user_id"),
    Index(None, "queue_id", "user_id"),
)

# Comments on a trace (target_kind "trace"), later on runs and versions. The author is a
# user or a key; the name is copied so a comment outlives its author.
comments = Table(
    "comments",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("target_kind", String(16), nullable=False),
    Column("target_id", String(128), nullable=False),
    Column("author_user_id", BigInteger, nullable=True),
    Column("author_key_id", BigInteger, nullable=True),
    Column("author_name", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Column("edited_at_unix_nano", BigInteger, nullable=True),
    Column("deleted_at_unix_nano", BigInteger, nullable=True),
    Index(None, "project_id", "target_kind", "target_id", "created_at_unix_nano"),
    sqlite_autoincrement=True,
)

# Who a comment mentions: each row shows in that user's feed.
mentions = Table(
    "mentions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("comment_id", RowId, ForeignKey("comments.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("user_id", RowId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Column("read_at_unix_nano", BigInteger, nullable=True),
    UniqueConstraint("comment_id", "user_id"),
    Index(None, "user_id", "created_at_unix_nano"),
)

# The project's activity feed: one row per thing a person did (commented, labelled,
# created a queue, edited a route or monitor, silenced an alert, created a key ...).
activity = Table(
    "activity",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("actor_user_id", BigInteger, nullable=True),
    Column("verb", String(32), nullable=False),
    Column("target_kind", String(32), nullable=False),
    Column("target_id", String(128), nullable=False),
    Column("summary", String(500), nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    Index(None, "project_id", "created_at_unix_nano"),
)
