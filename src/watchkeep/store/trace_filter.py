"""What a trace or span list filter means in SQL, and the lists' keyset cursors."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.sql import ColumnElement, Select

from watchkeep.store.json_filters import ArrayHas
from watchkeep.store.rows import METADATA_KEY_CHARS, METADATA_VALUE_CHARS
from watchkeep.store.tables import span_metadata, spans
from watchkeep.store.text_search import SpanTextMatch, query_words


class InvalidCursor(ValueError):
    """A pagination cursor that this server did not produce."""


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor for keyset pagination."""
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    """The parts of ``cursor``, checked against ``types``."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if (
        not isinstance(parts, list)
        or len(parts) != len(types)
        or not all(_cursor_part_ok(p, t) for p, t in zip(parts, types, strict=True))
    ):
        raise InvalidCursor("malformed cursor")
    return parts


def _cursor_part_ok(part: Any, expected: type) -> bool:
    """The part has the expected type and a value the databases can compare with."""
    if isinstance(part, bool) or not isinstance(part, expected):
        return False
    if isinstance(part, int):
        return -(1 << 63) <= part < (1 << 63)
    return not isinstance(part, str) or "\x00" not in part


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """What a trace or span list may be narrowed by (all optional, combined with AND)."""

    start_from_ns: int | None = None
    start_to_ns: int | None = None
    model: str | None = None
    provider: str | None = None
    operation: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    environment: str | None = None
    release: str | None = None
    status: str | None = None  # "ok" or "error"
    name: str | None = None  # substring, case-insensitive
    trace_id: str | None = None
    q: str | None = None  # words of the prompt or response text (full-text, all must match)
    tags: tuple[str, ...] = ()  # every one must be among the tags
    metadata: tuple[tuple[str, str], ...] = ()  # (key, value) pairs of SDK metadata, all must match


# Rows of ``span_metadata`` each step of the metadata walk reads, newest first
# (``TraceQueries._metadata_walk``); past the last step the list runs as one query.
METADATA_WALK_STEPS = (256, 1024, 4096)


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def span_content_conditions(
    project_id: int, f: TraceFilter, *, metadata: bool = True
) -> list[ColumnElement[bool]]:
    """Conditions on a span's own content: metadata attributes (unless ``metadata`` is
    false: the query reads them from ``span_metadata`` itself) and payload text.

    A query with no searchable word (only punctuation) matches nothing rather than all.
    """
    pairs = f.metadata if metadata else ()
    cond: list[ColumnElement[bool]] = [span_has_metadata(spans.c, k, v) for k, v in pairs]
    if f.q is not None:
        words = query_words(f.q)
        cond.append(SpanTextMatch(spans.c.id, project_id, words) if words else false())
    return cond


def _metadata_is(m: Any, key: str, value: str) -> ColumnElement[bool]:
    """Key and value as stored: cut to the column lengths (``rows.metadata_text``)."""
    return and_(m.key == key[:METADATA_KEY_CHARS], m.value == value[:METADATA_VALUE_CHARS])


def span_has_metadata(s: Any, key: str, value: str) -> ColumnElement[bool]:
    """The span ``s`` carries metadata ``key`` = ``value`` (one primary-key probe)."""
    m = span_metadata.alias()
    return exists().where(
        m.c.project_id == s.project_id,
        m.c.trace_id == s.trace_id,
        m.c.span_id == s.span_id,
        _metadata_is(m.c, key, value),
    )


def walk_metadata(f: TraceFilter) -> bool:
    """Whether the list should walk ``span_metadata`` (``TraceQueries._metadata_walk``): not
    when a user, session, release or trace id narrows the list to one short index range of
    its own, which the single query reads faster than the walk finds the same traces."""
    narrow = (f.user_id, f.session_id, f.release, f.trace_id)
    return bool(f.metadata) and all(value is None for value in narrow)


def metadata_span_rows(project_id: int, f: TraceFilter) -> tuple[Any, list[ColumnElement[bool]]]:
    """An alias of ``span_metadata`` and the conditions selecting the rows of spans that
    carry every metadata pair of ``f`` (the same span, as the JSON filter before ADR 0028):
    the first pair reads one index range, the others are probed on its spans. A span of a
    trace starts no earlier than the trace, so the list's lower time bound narrows the
    range too."""
    (key, value), rest = f.metadata[0], f.metadata[1:]
    m = span_metadata.alias()
    cond = [m.c.project_id == project_id, _metadata_is(m.c, key, value)]
    if f.start_from_ns is not None:
        cond.append(m.c.start_time_unix_nano >= f.start_from_ns)
    cond.extend(span_has_metadata(m.c, k, v) for k, v in rest)
    return m, cond


def metadata_traces(project_id: int, f: TraceFilter) -> Select[Any]:
    """Ids of the traces with a span carrying every metadata pair of ``f``."""
    m, cond = metadata_span_rows(project_id, f)
    return select(m.c.trace_id).where(*cond)


def trace_picks(t: Any, f: TraceFilter) -> list[ColumnElement[bool]]:
    """The user, session and tag conditions of ``f`` on the trace rows ``t``."""
    cond: list[ColumnElement[bool]] = [t[name] == value for name, value in picking(f)]
    if f.tags:  # implies the partial index of tagged traces: untagged ones are never read
        cond.append(t.tags.is_not(None))
    cond.extend(ArrayHas(t.tags, tag) for tag in f.tags)
    return cond


def picking(f: TraceFilter) -> list[tuple[str, str]]:
    """The (column, value) pairs of ``f``'s user and session, those it names."""
    return [
        (name, value)
        for name, value in (("user_id", f.user_id), ("session_id", f.session_id))
        if value is not None
    ]


def past_in_list_order(c: Any, start: int, trace_id: str) -> ColumnElement[bool]:
    """Rows after (start, trace_id) in the newest-first order of ``c``'s table."""
    return and_(
        c.start_time_unix_nano <= start,  # bounds the index range; the OR alone would not
        or_(c.start_time_unix_nano < start, and_(c.start_time_unix_nano == start, c.trace_id < trace_id)),
    )
