"""Request and response models of the REST API (they are the OpenAPI schema)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, JsonValue, computed_field, model_validator

from watchkeep.security.authz import Role
from watchkeep.security.keys import MAX_LIFETIME_SECONDS

# Defined once in semconv (the SDK validates against the same vocabulary); re-exported here.
from watchkeep.semconv import ScoreDataType as ScoreDataType
from watchkeep.semconv import ScoreSource as ScoreSource
from watchkeep.store.projects import PROJECT_NAME
from watchkeep.store.usage_queries import UsageTotals

HEX32 = r"^[0-9a-fA-F]{32}$"
HEX16 = r"^[0-9a-fA-F]{16}$"
STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}


MAX_NS = (1 << 63) - 1
MAX_ROW_ID = (1 << 63) - 1
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A row id.")]
RowIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]


def to_unix_ns(value: datetime | None) -> int | None:
    """An aware datetime as Unix nanoseconds, clamped to the 64-bit range; naive ones are refused."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("timestamps need a time zone, e.g. 2026-01-01T00:00:00Z")
    ns = int(value.timestamp() * 1_000_000) * 1000
    return max(-MAX_NS, min(MAX_NS, ns))


def ns_to_datetime(ns: int) -> datetime:
    """Unix nanoseconds as an aware UTC datetime, truncated to the microsecond (integer
    arithmetic: a float division rounds some values up a microsecond)."""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC) + timedelta(
        microseconds=ns % 1_000_000_000 // 1000
    )


MIN_JSON_INT, MAX_JSON_INT = -(2**63), 2**64 - 1  # what the JSON encoder (orjson) carries


def check_storable_json(value: Any, path: str) -> None:
    """Refuse JSON that a database cannot store faithfully: NUL characters, NaN, infinities,
    integers past 64 bits."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(f"{where} may not contain NUL characters")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{where} must be a finite number")
        elif isinstance(item, int):
            if not MIN_JSON_INT <= item <= MAX_JSON_INT:
                raise ValueError(f"{where} must be an integer that fits in 64 bits")
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise ValueError(f"{where} keys may not contain NUL characters")
                stack.append((child, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))


METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 8
METADATA_MAX_KEYS = 256
MAX_KEY_CHARS = 256


def check_json_bounds(value: Any, where: str, *, max_bytes: int, max_depth: int, max_keys: int) -> None:
    """Refuse a free-form JSON value past a size, nesting or key-count cap (or with keys over
    ``MAX_KEY_CHARS``), so a tenant cannot store or make us walk unbounded documents."""
    keys = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and depth > max_depth:
            raise ValueError(f"{where} is nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            keys += len(item)
            if keys > max_keys:
                raise ValueError(f"{where} has more than {max_keys} keys")
            if any(len(k) > MAX_KEY_CHARS for k in item):
                raise ValueError(f"{where} keys are limited to {MAX_KEY_CHARS} characters")
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise ValueError(f"{where} is {size} bytes as JSON; the limit is {max_bytes}")


class ErrorBody(BaseModel):
    """The error object every failing API route answers with."""

    code: str = Field(description="Machine-readable error code, e.g. 'unauthorized'.")
    message: str = Field(description="What went wrong, for a human.")


class ErrorResponse(BaseModel):
    """``{"error": {...}}``"""

    error: ErrorBody


class ScoreIn(BaseModel):
    """A score or a piece of feedback about a trace or one of its spans."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256, description="What is scored, e.g. 'sentiment'.")
    value: bool | float | str = Field(
        description="Number, boolean, or category (the predicted label for classification)."
    )
    data_type: ScoreDataType | None = Field(default=None, description="Defaults from the value's JSON type.")
    label: str | None = Field(
        default=None, max_length=1024, description="Ground-truth label, when it is known."
    )
    trace_id: str = Field(pattern=HEX32)
    span_id: str | None = Field(default=None, pattern=HEX16)
    source: ScoreSource = ScoreSource.API
    comment: str | None = Field(default=None, max_length=10_000)
    metadata: dict[str, JsonValue] | None = Field(
        default=None,
        description=f"Free-form JSON: at most {METADATA_MAX_BYTES} bytes serialised, "
        f"{METADATA_MAX_DEPTH} levels deep and {METADATA_MAX_KEYS} keys in all.",
    )
    idempotency_key: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description=(
            "Chosen by the sender (e.g. a UUID): sending the same score again with the same key "
            "stores it once and answers 200 with the stored score; a different score with a "
            "used key is refused (409)."
        ),
    )

    @model_validator(mode="after")
    def _check_value(self) -> Self:
        inferred = (
            ScoreDataType.BOOLEAN
            if isinstance(self.value, bool)
            else ScoreDataType.CATEGORICAL
            if isinstance(self.value, str)
            else ScoreDataType.NUMERIC
        )
        if self.data_type is None:
            self.data_type = inferred
        if self.data_type is ScoreDataType.NUMERIC and inferred is not ScoreDataType.NUMERIC:
            raise ValueError("a numeric score needs a number as its value")
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise ValueError("value must be a finite number")
        if isinstance(self.value, str) and not 0 < len(self.value) <= 1024:
            raise ValueError("a categorical value must be 1 to 1024 characters")
        text = [self.name, self.label or "", self.comment or ""]
        if isinstance(self.value, str):
            text.append(self.value)
        if any("\x00" in t for t in text):
            raise ValueError("text fields may not contain NUL characters")
        if self.metadata is not None:
            check_json_bounds(
                self.metadata,
                "metadata",
                max_bytes=METADATA_MAX_BYTES,
                max_depth=METADATA_MAX_DEPTH,
                max_keys=METADATA_MAX_KEYS,
            )
            check_storable_json(self.metadata, "metadata")
        return self


class ScoreOut(BaseModel):
    """A stored score."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    trace_id: str
    span_id: str | None
    name: str
    data_type: str
    value: float | None
    string_value: str | None
    label: str | None
    source: str
    comment: str | None
    metadata: dict[str, Any] | None
    created_at_unix_nano: int
    idempotency_key: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at(self) -> datetime:
        return ns_to_datetime(self.created_at_unix_nano)


class ScorePage(BaseModel):
    """A page of scores."""

    items: list[ScoreOut]
    next_cursor: str | None


class TraceSummaryOut(BaseModel):
    """One trace in a list: its root, time span, trace attributes and summed counters."""

    model_config = ConfigDict(from_attributes=True)

    trace_id: str
    name: str | None
    root_span_id: str | None
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ms: float
    has_error: bool
    user_id: str | None
    session_id: str | None
    environment: str | None
    release: str | None
    tags: list[str]
    span_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    models: list[str]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def start_time(self) -> datetime:
        return ns_to_datetime(self.start_time_unix_nano)


class TracePage(BaseModel):
    """A page of traces; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[TraceSummaryOut]
    next_cursor: str | None


class SpanOut(BaseModel):
    """A stored span with its typed fields; ``attributes`` holds everything unmapped."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    status_code: int
    status_message: str | None
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ms: float
    service_name: str | None
    operation: str | None
    provider: str | None
    request_model: str | None
    response_model: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None
    time_to_first_token_ms: float | None
    finish_reason: str | None
    user_id: str | None
    session_id: str | None
    environment: str | None
    release: str | None
    tags: list[str] | None
    prompt_name: str | None
    prompt_version: str | None
    model_version: str | None
    attributes: dict[str, Any] | None
    resource_attributes: dict[str, Any] | None
    events: list[dict[str, Any]] | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> str:
        return STATUS_NAMES.get(self.status_code, "unset")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def start_time(self) -> datetime:
        return ns_to_datetime(self.start_time_unix_nano)


class SpanPage(BaseModel):
    """A page of spans."""

    items: list[SpanOut]
    next_cursor: str | None


class SpanNode(SpanOut):
    """A span in a trace tree, with its payloads and children."""

    input: Any = None
    output: Any = None
    detached: bool = Field(default=False, description="Re-rooted because it sat deeper than the tree limit.")
    children: list[SpanNode] = Field(default_factory=list)


class TraceDetail(BaseModel):
    """A whole trace: its span tree (roots first), payloads and scores."""

    trace_id: str
    span_count: int
    roots: list[SpanNode]
    scores: list[ScoreOut]


# --- API keys and projects (routes/keys.py, routes/projects.py) ---
KEY_PREFIX_PATTERN = r"^wk_[A-Za-z0-9]{12}$"
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"  # no control characters (PostgreSQL refuses NUL)
KeyState = Literal["active", "revoked", "expired"]


class KeyIn(BaseModel):
    """A key to create: its role, a note, and optionally when it stops working."""

    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="What the key may do; never more than the creating key may.")
    name: str | None = Field(default=None, max_length=200, pattern=PLAIN_TEXT, description="A note.")
    expires_at: datetime | None = Field(default=None, description="When it stops working (with a zone).")
    expires_in: int | None = Field(
        default=None, ge=1, le=MAX_LIFETIME_SECONDS, description="Or: seconds from now until it stops."
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError("give expires_at or expires_in, not both")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone, e.g. 2027-01-01T00:00:00Z")
        return self


class KeyOut(BaseModel):
    """A key as listed: its non-secret prefix and its life, never the secret or its digest."""

    model_config = ConfigDict(from_attributes=True)

    prefix: str
    project: str
    role: str
    name: str | None
    state: KeyState
    created_at_unix_nano: int
    expires_at_unix_nano: int | None
    revoked_at_unix_nano: int | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at(self) -> datetime:
        return ns_to_datetime(self.created_at_unix_nano)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expires_at(self) -> datetime | None:
        return None if self.expires_at_unix_nano is None else ns_to_datetime(self.expires_at_unix_nano)


class KeyCreated(KeyOut):
    """A new key: ``key`` is the secret, shown this once and never again."""

    key: str


class KeyPage(BaseModel):
    """A page of keys, newest first; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[KeyOut]
    next_cursor: str | None


class ProjectIn(BaseModel):
    """A project to create, optionally with its first key (an admin key, typically)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PROJECT_NAME, description="Letters, digits, '.', '_', '-'; at most 128.")
    first_key: KeyIn | None = Field(default=None, description="Also create this key and return its secret.")


class ProjectOut(BaseModel):
    """A project with the number of its keys (all, and active ones)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at_unix_nano: int
    keys: int
    active_keys: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at(self) -> datetime:
        return ns_to_datetime(self.created_at_unix_nano)


class ProjectCreated(BaseModel):
    """A new project, and its first key's secret when one was asked for."""

    project: ProjectOut
    key: KeyCreated | None


class ProjectPage(BaseModel):
    """A page of projects by id; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[ProjectOut]
    next_cursor: str | None


class UsagePage(BaseModel):
    """A page of users or sessions; pass ``next_offset`` as ``offset`` for the next one."""

    items: list[UsageTotals]
    next_offset: int | None
