"""The validation pillar's tables: datasets and their immutable versions, runs and results.

A dataset version is a frozen list of items named by the SHA-256 of its content, so the
same rows imported twice are the same version. A run is one dataset version x one target
version x an evaluator set x parameters x a seed; each (item, repeat, variant) it computed
is one immutable result row, which is what makes a run resumable and a gate a pure
function of two runs' rows. The output cache is keyed per project by target version,
input, parameters and repeat index, so repeats are real samples and tenants never share.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from watchkeep.store.tables import Json, RowId, metadata

datasets = Table(
    "datasets",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_by", String(200), nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
    sqlite_autoincrement=True,
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("dataset_id", RowId, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),  # 1, 2, … per dataset
    Column("content_hash", String(64), nullable=False),  # SHA-256 of the canonical items
    Column("item_count", Integer, nullable=False),
    Column("splits", Json, nullable=False),  # {split name: item count}
    Column("source", Json, nullable=True),  # how it was built: file, trace filter, feedback
    Column("message", Text, nullable=True),
    Column("created_by", String(200), nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version"),
    Index(None, "dataset_id", "content_hash"),
    sqlite_autoincrement=True,
)

dataset_items = Table(
    "dataset_items",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("version_id", RowId, ForeignKey("dataset_versions.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("position", Integer, nullable=False),
    Column("item_key", String(200), nullable=False),  # stable across versions: what a diff pairs
    Column("item_hash", String(64), nullable=False),  # SHA-256 of the item's canonical JSON
    Column("split", String(64), nullable=True),
    Column("input", Json, nullable=False),
    Column("expected", Json, nullable=True),
    Column("item_metadata", Json, nullable=True),
    Column("trace_id", String(32), nullable=True),  # the production trace it came from
    UniqueConstraint("version_id", "position"),
    Index(None, "version_id", "item_key"),
    sqlite_autoincrement=True,
)

eval_runs = Table(
    "eval_runs",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("project_id", RowId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # running | completed | failed | interrupted
    Column(
        "dataset_version_id",
        RowId,
        ForeignKey("dataset_versions.id", ondelete="SET NULL"),
        nullable=True,  # None for a run of a built-in suite only (adversarial)
    ),
    Column("target", Json, nullable=False),  # the target's description, never its secrets
    Column("target_version", String(200), nullable=False),
    Column("config", Json, nullable=False),  # evaluators, parameters, repeats, suites, gate
    Column("config_hash", String(64), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("baseline_run_id", BigInteger, nullable=True),
    Column("cases_total", Integer, nullable=False),
    Column("cases_done", Integer, nullable=False),
    Column("cases_failed", Integer, nullable=False),
    Column("aggregates", Json, nullable=True),
    Column("gate", Json, nullable=True),  # the verdict against the baseline, when there was one
    Column("error", Text, nullable=True),
    Column("created_by", String(200), nullable=True),
    Column("started_at_unix_nano", BigInteger, nullable=False),
    Column("finished_at_unix_nano", BigInteger, nullable=True),
    Index(None, "project_id", "id"),
    Index(None, "project_id", "config_hash"),
    sqlite_autoincrement=True,
)

eval_results = Table(
    "eval_results",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", RowId, ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("item_key", String(200), nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("variant", String(64), nullable=False),  # "" for the item as written
    Column("family", String(64), nullable=True),  # probe family or perturbation kind
    Column("input", Json, nullable=True),  # the messages sent (after perturbation)
    Column("output", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("error_kind", String(32), nullable=True),  # timeout | rate_limited | target | garbage | input
    Column("latency_ms", Float, nullable=True),
    Column("cost_usd", Float, nullable=True),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Column("scores", Json, nullable=False),  # {evaluator: {passed, value, comment, details, error}}
    Column("passed", Boolean, nullable=True),  # every evaluator passed; None when the call failed
    Column("cached", Boolean, nullable=False),
    Column("trace_id", String(32), nullable=True),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    UniqueConstraint("run_id", "item_key", "repeat", "variant"),
    sqlite_autoincrement=True,
)

eval_output_cache = Table(
    "eval_output_cache",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("cache_key", String(64), nullable=False),  # SHA-256 of target version, input, params, repeat
    Column("reply", Json, nullable=False),
    Column("created_at_unix_nano", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "cache_key"),
)
