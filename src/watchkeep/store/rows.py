"""The rows of a span write: column orders, row types and the one trace-merge rule.

Ingest builds rows here, the span writer groups them and each dialect's bulk writer
binds them; all three import this module and nothing else of each other, so the writer
and its dialects form no cycle. The trace-merge rule lives here twice over, once as
Python (``merge_trace_row``, folding the batches of one group commit) and once as the
SQL upsert (``trace_upsert_assignments``, folding a row into what is stored), written side
by side so they stay the same rule (ADR 0002; ``tests/unit/test_trace_rows.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Protocol

import orjson

from watchkeep.semconv import WK_METADATA_PREFIX

SPAN_COLUMNS: tuple[str, ...] = (
    "project_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "status_code",
    "status_message",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "duration_ms",
    "service_name",
    "operation",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "time_to_first_token_ms",
    "finish_reason",
    "user_id",
    "session_id",
    "environment",
    "release",
    "tags",
    "prompt_name",
    "prompt_version",
    "model_version",
    "attributes",
    "resource_id",
    "events",
    "ingested_at_unix_nano",
)
# A span row as stored: the writer appends the row id of the span's trace (ADR 0032).
STORED_SPAN_COLUMNS: tuple[str, ...] = (*SPAN_COLUMNS, "trace_row_id")
JSON_SPAN_COLUMNS = frozenset({"tags", "attributes", "events"})
RESOURCE_COLUMNS: tuple[str, ...] = ("project_id", "resource_id", "attributes", "created_at_unix_nano")
# A payload row as ingest builds it; stored, it also carries its span's row id (ADR 0029).
PAYLOAD_COLUMNS: tuple[str, ...] = (
    "project_id",
    "trace_id",
    "span_id",
    "input",
    "output",
    "created_at_unix_nano",
)
STORED_PAYLOAD_COLUMNS: tuple[str, ...] = ("span_row_id", *PAYLOAD_COLUMNS)
METADATA_COLUMNS: tuple[str, ...] = (
    "project_id",
    "trace_id",
    "span_id",
    "key",
    "value",
    "start_time_unix_nano",
)
# Column lengths of span_metadata; longer keys and values are stored (and looked for) cut.
METADATA_KEY_CHARS = 256
METADATA_VALUE_CHARS = 512
TRACE_COLUMNS: tuple[str, ...] = (
    "project_id",
    "trace_id",
    "name",
    "root_span_id",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "has_error",
    "user_id",
    "session_id",
    "environment",
    "release",
    "tags",
)
TRACE_ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "user_id",
    "session_id",
    "environment",
    "release",
    "tags",
)
STATUS_ERROR = 2

Row = dict[str, Any]
TraceRows = dict[tuple[int, str], Row]
SpanKey = tuple[int, str, str]  # (project id, trace id, span id)
# The keys of the spans a write inserted; None when it inserted every span it was given.
NewSpans = set[SpanKey] | None


@dataclass(slots=True)
class WriteBatch:
    """One request's rows: span and payload tuples in column order, trace summaries.

    ``sealed``: the payloads' input and output are already encrypted (by a decode worker);
    the writer seals the payloads of every other batch itself.
    """

    spans: list[tuple[Any, ...]] = field(default_factory=list)
    payloads: list[tuple[Any, ...]] = field(default_factory=list)
    traces: TraceRows = field(default_factory=dict)
    resources: dict[tuple[int, str], tuple[Any, ...]] = field(default_factory=dict)
    metadata: list[tuple[Any, ...]] = field(default_factory=list)  # METADATA_COLUMNS, few spans have any
    sealed: bool = False


def metadata_text(value: Any) -> str | None:
    """A metadata value as the filter compares it: text as is, booleans ``true``/``false``,
    numbers and lists as JSON (as PostgreSQL's ``->>`` wrote them), None for null; cut to
    ``METADATA_VALUE_CHARS``."""
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text[:METADATA_VALUE_CHARS]


def metadata_rows(
    project_id: int, trace_id: str, span_id: str, start_ns: int, attributes: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """The span_metadata rows (``METADATA_COLUMNS``) of a span's SDK metadata attributes,
    one per cut key (the first wins)."""
    names = [name for name in attributes if name.startswith(WK_METADATA_PREFIX)]
    if not names:  # the usual span: ingest asks this of every span with attributes left
        return []
    out: dict[str, tuple[Any, ...]] = {}
    skip = len(WK_METADATA_PREFIX)
    for name in names:
        key, text = name[skip:][:METADATA_KEY_CHARS], metadata_text(attributes[name])
        if text is not None and key not in out:
            out[key] = (project_id, trace_id, span_id, key, text, start_ns)
    return list(out.values())


_ATTRIBUTES_AT = SPAN_COLUMNS.index("attributes")
_START_AT = SPAN_COLUMNS.index("start_time_unix_nano")


def final_metadata(
    spans: Iterable[tuple[Any, ...]], flagged: Iterable[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """The metadata rows of the ``spans`` that ``flagged`` rows name, read again from their
    stored attributes JSON: redaction rewrites span rows after the normaliser, and the side
    table must never keep a value the span itself no longer holds. Costs nothing for the
    (usual) batch without metadata."""
    wanted = {row[:3] for row in flagged}
    out: list[tuple[Any, ...]] = []
    if not wanted:
        return out
    for span in spans:
        if span[:3] in wanted and span[_ATTRIBUTES_AT] is not None:
            attributes = orjson.loads(span[_ATTRIBUTES_AT])
            if isinstance(attributes, dict):
                out.extend(metadata_rows(span[0], span[1], span[2], span[_START_AT], attributes))
    return out


def _trace_row(s: Row) -> Row:
    is_root = s["parent_span_id"] is None
    row = {
        "project_id": s["project_id"],
        "trace_id": s["trace_id"],
        "name": s["name"],
        "root_span_id": s["span_id"] if is_root else None,
        "start_time_unix_nano": s["start_time_unix_nano"],
        # No span of a trace starts after the trace's end, even one that ends before it starts
        # (the OTLP decoders refuse one; other writers might not): the span list bounds its
        # reads by it (``span_list``).
        "end_time_unix_nano": max(s["end_time_unix_nano"], s["start_time_unix_nano"]),
        "has_error": s["status_code"] == STATUS_ERROR,
    }
    for c in TRACE_ATTRIBUTE_COLUMNS:
        row[c] = s[c]
    return row


def merge_trace_row(into: Row, other: Row) -> None:
    """Fold ``other`` into ``into`` exactly as the database upsert would."""
    if other["root_span_id"] is not None:
        into["name"], into["root_span_id"] = other["name"], other["root_span_id"]
    elif into["root_span_id"] is None and other["start_time_unix_nano"] < into["start_time_unix_nano"]:
        into["name"] = other["name"]
    into["start_time_unix_nano"] = min(into["start_time_unix_nano"], other["start_time_unix_nano"])
    into["end_time_unix_nano"] = max(into["end_time_unix_nano"], other["end_time_unix_nano"])
    into["has_error"] = into["has_error"] or other["has_error"]
    for c in TRACE_ATTRIBUTE_COLUMNS:
        if into[c] is None:
            into[c] = other[c]


def summarise_traces(spans: Iterable[Row] | Iterable[Sequence[Any]]) -> TraceRows:
    """One idempotent trace row per (project, trace) of ``spans``: dict rows, or tuples in
    ``SPAN_COLUMNS`` order as ``WriteBatch.spans`` holds them (what ingest passes: it never
    builds a dict a span).

    Trace attributes are taken from each trace's first span: the normaliser has already
    shared them across the spans of an export.
    """
    names = (
        "project_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "name",
        "start_time_unix_nano",
        "end_time_unix_nano",
        "status_code",
        *TRACE_ATTRIBUTE_COLUMNS,
    )
    head = len(names) - len(TRACE_ATTRIBUTE_COLUMNS)
    by_name, by_index = itemgetter(*names[:head]), itemgetter(*(SPAN_COLUMNS.index(n) for n in names))
    out: TraceRows = {}
    for s in spans:
        row = s if isinstance(s, dict) else None
        fields = by_index(s) if row is None else by_name(row)
        project_id, trace_id, span_id, parent, name, start, end, status = fields[:head]
        t = out.get((project_id, trace_id))
        if t is None:  # a tuple becomes a dict only for its trace's first span
            out[(project_id, trace_id)] = _trace_row(row or dict(zip(names, fields, strict=True)))
            continue
        if parent is None:
            t["name"], t["root_span_id"] = name, span_id
        elif t["root_span_id"] is None and start < t["start_time_unix_nano"]:
            t["name"] = name
        if start < t["start_time_unix_nano"]:
            t["start_time_unix_nano"] = start
        if end < start:
            end = start  # as ``_trace_row``
        if end > t["end_time_unix_nano"]:
            t["end_time_unix_nano"] = end
        if status == STATUS_ERROR:
            t["has_error"] = True
    return out


def merge_traces(parts: Iterable[TraceRows]) -> list[Row]:
    """The trace rows of several batches, one per key, in key order (lock order)."""
    merged: TraceRows = {}
    for part in parts:
        for key, row in part.items():
            found = merged.get(key)
            if found is None:
                merged[key] = dict(row)
            else:
                merge_trace_row(found, row)
    return [merged[k] for k in sorted(merged)]


# A payload sent again fills the sides (input, output) its span still lacks and changes
# nothing else: GenAI log records bring a call's input and its output in separate exports.
def payload_fill(table: str, key: str) -> str:
    """The ON CONFLICT clause of a payload insert into ``table`` keyed by ``key``."""
    return (
        f"ON CONFLICT ({key}) DO UPDATE SET "
        f"input = coalesce({table}.input, excluded.input), "
        f"output = coalesce({table}.output, excluded.output) "
        f"WHERE {table}.input IS NULL OR {table}.output IS NULL"
    )


PAYLOAD_FILL = payload_fill("span_payloads", "span_row_id")
EARLY_PAYLOAD_FILL = payload_fill("early_payloads", "project_id, trace_id, span_id")


def merge_payloads(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One payload row per span key, each side from the first row that has it."""
    merged: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        key = row[:3]
        found = merged.get(key)
        if found is None:
            merged[key] = row
        elif found[3] is None or found[4] is None:
            merged[key] = (
                *key,
                found[3] if found[3] is not None else row[3],
                found[4] if found[4] is not None else row[4],
                *found[5:],
            )
    return list(merged.values())


def place_payloads(
    payloads: Iterable[tuple[Any, ...]], ids: dict[SpanKey, int], early: Iterable[tuple[Any, ...]] = ()
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Split payload rows (``PAYLOAD_COLUMNS``) by whether their span is stored.

    Returns the ``STORED_PAYLOAD_COLUMNS`` rows of the spans ``ids`` knows (span key -> row
    id) and the rows still waiting for their span (for ``early_payloads``). ``early`` rows,
    taken from ``early_payloads``, arrived first, so each of their sides wins.
    """
    stored: list[tuple[Any, ...]] = []
    waiting: list[tuple[Any, ...]] = []
    for row in merge_payloads([*early, *payloads]) if early else payloads:
        span_row_id = ids.get(row[:3])
        if span_row_id is None:
            waiting.append(row)
        else:
            stored.append((span_row_id, *row))
    return stored, waiting


class BulkStatements(Protocol):
    """A dialect's way of writing many rows idempotently inside one transaction."""

    def live_projects(self, cursor: Any, project_ids: Sequence[int]) -> set[int]:
        """Those of ``project_ids`` (sorted) that exist, kept from deletion until commit."""

    def write(
        self,
        cursor: Any,
        spans: Sequence[tuple[Any, ...]],
        payloads: Sequence[tuple[Any, ...]],
        traces: Sequence[tuple[Any, ...]],
        resources: Sequence[tuple[Any, ...]],
        metadata: Sequence[tuple[Any, ...]] = (),
    ) -> NewSpans:
        """Insert new spans, payloads, resources and metadata rows, upsert traces.

        Returns None when every span was new, else the keys of those that were (finding
        them costs a query, so only when some were duplicates).
        """


def with_trace_row_ids(
    spans: Sequence[tuple[Any, ...]], trace_row_ids: dict[tuple[int, str], int]
) -> list[tuple[Any, ...]]:
    """Span rows (``SPAN_COLUMNS``) as stored (``STORED_SPAN_COLUMNS``): each with the row id
    of its trace, which the write upserted first (``trace_row_ids``: (project, trace) -> id)."""
    try:
        return [(*span, trace_row_ids[(span[0], span[1])]) for span in spans]
    except KeyError as exc:  # a writer bug, not bad input: every span's trace is upserted
        raise ValueError(f"no trace row was written for span trace {exc.args[0]!r}") from exc


def trace_upsert_assignments(least: str, greatest: str) -> str:
    """The ON CONFLICT ... DO UPDATE SET clause merging a trace row, as ``merge_trace_row``."""
    keep_first = ", ".join(f"{c} = COALESCE(traces.{c}, excluded.{c})" for c in TRACE_ATTRIBUTE_COLUMNS)
    return (
        "ON CONFLICT (project_id, trace_id) DO UPDATE SET "
        "name = CASE WHEN excluded.root_span_id IS NOT NULL THEN excluded.name "
        "WHEN traces.root_span_id IS NULL "
        "AND excluded.start_time_unix_nano < traces.start_time_unix_nano THEN excluded.name "
        "ELSE traces.name END, "
        "root_span_id = COALESCE(excluded.root_span_id, traces.root_span_id), "
        f"start_time_unix_nano = {least}(traces.start_time_unix_nano, excluded.start_time_unix_nano), "
        f"end_time_unix_nano = {greatest}(traces.end_time_unix_nano, excluded.end_time_unix_nano), "
        "has_error = (traces.has_error OR excluded.has_error), "
        f"{keep_first}"
    )
