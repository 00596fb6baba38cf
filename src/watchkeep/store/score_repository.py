"""Repository for scores and feedback attached to traces and spans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select
from sqlalchemy.exc import IntegrityError

from watchkeep.store.clock import now_ns
from watchkeep.store.tables import scores
from watchkeep.store.trace_queries import Page, decode_cursor, encode_cursor


@dataclass(frozen=True, slots=True)
class NewScore:
    """A validated score to store (numeric value or string value, never both empty)."""

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
    idempotency_key: str | None = None


# What makes two scores the same score (a repeat with the same key must match on these).
SCORE_CONTENT = ("trace_id", "span_id", "name", "data_type", "value", "string_value", "label", "source")


class IdempotencyConflict(Exception):
    """The idempotency key was already used for a different score (the API's 409)."""

    def __init__(self) -> None:
        super().__init__("this idempotency_key was already used for a different score")
        self.message = str(self)


@dataclass(frozen=True, slots=True)
class ScoreFilter:
    """Narrowing of a score list."""

    name: str | None = None
    trace_id: str | None = None
    source: str | None = None
    created_from_ns: int | None = None
    created_to_ns: int | None = None


def _repeat_of(earlier: dict[str, Any], score: NewScore) -> dict[str, Any]:
    """``earlier`` if ``score`` repeats it; ``IdempotencyConflict`` if it differs."""
    if any(earlier[k] != getattr(score, k) for k in SCORE_CONTENT):
        raise IdempotencyConflict()
    return earlier


class ScoreRepository:
    """Stores and lists scores of one project at a time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, project_id: int, score: NewScore) -> tuple[dict[str, Any], bool]:
        """Store ``score``; the stored row and whether it is new.

        With an idempotency key the project already used, nothing is stored and the
        earlier score is returned when it is the same score (``SCORE_CONTENT``);
        ``IdempotencyConflict`` when it is not.
        """
        values = {
            "project_id": project_id,
            "trace_id": score.trace_id,
            "span_id": score.span_id,
            "name": score.name,
            "data_type": score.data_type,
            "value": score.value,
            "string_value": score.string_value,
            "label": score.label,
            "source": score.source,
            "comment": score.comment,
            "metadata": score.metadata,
            "created_at_unix_nano": now_ns(),
            "idempotency_key": score.idempotency_key,
        }
        if score.idempotency_key is not None:
            earlier = self._by_key(project_id, score.idempotency_key)
            if earlier is not None:
                return _repeat_of(earlier, score), False
        try:
            with self._engine.begin() as conn:
                key = conn.execute(insert(scores).values(**values)).inserted_primary_key
        except IntegrityError:
            # The same key arrived concurrently (a retry racing its original).
            if score.idempotency_key is None:
                raise
            earlier = self._by_key(project_id, score.idempotency_key)
            if earlier is None:
                raise
            return _repeat_of(earlier, score), False
        assert key is not None
        values["id"] = int(key[0])
        return values, True

    def _by_key(self, project_id: int, idempotency_key: str) -> dict[str, Any] | None:
        c = scores.c
        query = select(scores).where(c.project_id == project_id, c.idempotency_key == idempotency_key)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row is not None else None

    def list(
        self, project_id: int, f: ScoreFilter, limit: int = 100, cursor: str | None = None
    ) -> Page[dict[str, Any]]:
        """Newest scores first."""
        c = scores.c
        cond = [c.project_id == project_id]
        for column, value in ((c.name, f.name), (c.trace_id, f.trace_id), (c.source, f.source)):
            if value is not None:
                cond.append(column == value)
        if f.created_from_ns is not None:
            cond.append(c.created_at_unix_nano >= f.created_from_ns)
        if f.created_to_ns is not None:
            cond.append(c.created_at_unix_nano < f.created_to_ns)
        if cursor is not None:
            created, row_id = decode_cursor(cursor, (int, int))
            cond.append(
                or_(
                    c.created_at_unix_nano < created,
                    and_(c.created_at_unix_nano == created, c.id < row_id),
                )
            )
        query = (
            select(scores).where(*cond).order_by(c.created_at_unix_nano.desc(), c.id.desc()).limit(limit + 1)
        )
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = (
            encode_cursor(rows[-1]["created_at_unix_nano"], rows[-1]["id"]) if more and rows else None
        )
        return Page(rows, next_cursor)
