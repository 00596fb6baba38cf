"""Trace-level attributes (user, session, tags, metadata) carried in a contextvar.

The server copies trace-level attributes onto every span, so the SDK stamps them on
every span it records. The contextvar holds one immutable, ready-made attribute dict:
a new span takes a reference to it (no copy on the caller's thread), and nested
``context()`` blocks build a merged dict once, when the block is entered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from watchkeep import semconv

EMPTY: Mapping[str, Any] = MappingProxyType({})

TRACE_ATTRS: ContextVar[Mapping[str, Any]] = ContextVar("watchkeep_trace_attrs", default=EMPTY)


def scalar(value: Any) -> str | bool | int | float:
    """An OTel-compatible scalar; anything else is stringified."""
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def merged(
    base: Mapping[str, Any],
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Mapping[str, Any]:
    """``base`` plus the given trace-level fields; tags accumulate, metadata keys override."""
    attrs = dict(base)
    if user_id is not None:
        attrs[semconv.WK_USER_ID] = str(user_id)
    if session_id is not None:
        attrs[semconv.WK_SESSION_ID] = str(session_id)
    if tags:
        current = attrs.get(semconv.WK_TAGS, ())
        attrs[semconv.WK_TAGS] = tuple(dict.fromkeys([*current, *map(str, tags)]))
    if metadata:
        for key, value in metadata.items():
            attrs[semconv.WK_METADATA_PREFIX + str(key)] = scalar(value)
    return MappingProxyType(attrs)


@contextmanager
def context(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[Mapping[str, Any]]:
    """Attach user, session, tags and metadata to every span started inside the block."""
    token = TRACE_ATTRS.set(
        merged(TRACE_ATTRS.get(), user_id=user_id, session_id=session_id, tags=tags, metadata=metadata)
    )
    try:
        yield TRACE_ATTRS.get()
    finally:
        TRACE_ATTRS.reset(token)


def current_trace_attributes() -> Mapping[str, Any]:
    """The trace-level attributes that a span started now would carry."""
    return TRACE_ATTRS.get()
