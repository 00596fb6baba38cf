"""Validation and shaping of score bodies for ``POST /api/v1/scores``.

Invalid input is reported with a warning and the score skipped: a typo in an
evaluation must not raise into the application that records it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from watchkeep.sdk.config import logger
from watchkeep.semconv import ScoreDataType, ScoreSource

SOURCES = frozenset(s.value for s in ScoreSource)
DATA_TYPES = frozenset(t.value for t in ScoreDataType)
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def infer_data_type(value: float | str | bool) -> str:
    if isinstance(value, bool):
        return ScoreDataType.BOOLEAN.value
    if isinstance(value, int | float):
        return ScoreDataType.NUMERIC.value
    return ScoreDataType.CATEGORICAL.value


def build_score(
    name: str,
    value: float | str | bool,
    *,
    trace_id: str | None,
    span_id: str | None,
    source: str,
    label: str | None,
    comment: str | None,
    metadata: Mapping[str, Any] | None,
    data_type: str | None,
    redact: Callable[[str, str], str],
    idempotency_key: str | None = None,
) -> dict[str, Any] | None:
    """The JSON body of a score, or None (with a warning) when it cannot be valid.

    The body always carries an idempotency key (a fresh UUID when none is given): the
    pipeline may send a score twice (a timeout after the server stored it, a spool
    replay), and the server keeps one score per key.
    """
    problem = None
    trace_id = trace_id.lower() if isinstance(trace_id, str) else trace_id
    span_id = span_id.lower() if isinstance(span_id, str) else span_id
    if not isinstance(name, str) or not name:
        problem = "a score needs a non-empty name"
    elif not isinstance(value, bool | int | float | str):
        problem = f"score value must be a number, string or bool, not {type(value).__name__}"
    elif trace_id is None:
        problem = "no trace_id given and no current span"
    elif not _TRACE_ID.match(trace_id):
        problem = f"trace_id must be 32 hex digits, got {trace_id!r}"
    elif span_id is not None and not _SPAN_ID.match(span_id):
        problem = f"span_id must be 16 hex digits, got {span_id!r}"
    elif source not in SOURCES:
        problem = f"source must be one of {sorted(SOURCES)}, got {source!r}"
    elif data_type is not None and data_type not in DATA_TYPES:
        problem = f"data_type must be one of {sorted(DATA_TYPES)}, got {data_type!r}"
    elif idempotency_key is not None and not (
        isinstance(idempotency_key, str) and _IDEMPOTENCY_KEY.match(idempotency_key)
    ):
        problem = "idempotency_key must be 1-128 letters, digits or . _ : -"
    if problem is not None:
        logger.warning("watchkeep: score %r skipped: %s", name, problem)
        return None
    body: dict[str, Any] = {
        "name": name,
        "value": value,
        "trace_id": trace_id,
        "span_id": span_id,
        "source": source,
        "data_type": data_type or infer_data_type(value),
        "idempotency_key": idempotency_key or uuid.uuid4().hex,
    }
    if label is not None:
        body["label"] = redact("score.label", str(label))
    if comment is not None:
        body["comment"] = redact("score.comment", str(comment))
    if metadata:
        body["metadata"] = {
            str(k): redact(f"score.metadata.{k}", v) if isinstance(v, str) else v for k, v in metadata.items()
        }
    return body
