"""Key rotation: every value sealed under an earlier key, sealed again under the current one.

Runs in batches, each its own transaction, walking each table in primary key order, so
it can be stopped and started again (values already on the current key are skipped) and
runs beside a live server: rows written meanwhile are sealed with the current key
already, and a payload row is only replaced while it still holds the value read (compare
and set), so a concurrent fill of a payload is never lost. Once it reports nothing left,
the earlier keys can be removed from WATCHKEEP_ENCRYPTION_PREVIOUS_KEYS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, Text, and_, cast, or_, select, tuple_, update

from watchkeep.security.crypto import VERSION, Keyring
from watchkeep.store.eval_tables import dataset_items, eval_output_cache, eval_results
from watchkeep.store.sealing import SEALED_PREFIX, SECRET_CHANNEL_FIELDS, is_sealed, row_aad
from watchkeep.store.tables import alert_channels, early_payloads, span_payloads


@dataclass(frozen=True, slots=True)
class _Target:
    table: Table
    key: tuple[str, ...]
    columns: tuple[str, ...]
    json: bool  # a JSON column holding the sealed string (no equality on PostgreSQL's json)
    aad_table: str = ""  # the table name its values are bound to, when not its own


TARGETS = (
    _Target(span_payloads, ("span_row_id",), ("input", "output"), json=False),
    # sealed as span_payloads rows (they become ones when their span comes)
    _Target(
        early_payloads, ("project_id", "trace_id", "span_id"), ("input", "output"), False, "span_payloads"
    ),
    _Target(dataset_items, ("id",), ("input", "expected"), json=True),
    _Target(eval_results, ("id",), ("input",), json=True),
    _Target(eval_results, ("id",), ("output",), json=False),
)


@dataclass(frozen=True, slots=True)
class _Fields:
    """Sealed fields inside a JSON object column (a channel's secrets, a cached reply's text)."""

    table: Table
    key: tuple[str, ...]
    column: str
    fields: tuple[str, ...]
    aad: Callable[[str], str]  # the AAD column name of a field


FIELD_TARGETS = (
    _Fields(alert_channels, ("id",), "config", SECRET_CHANNEL_FIELDS, lambda field: f"config.{field}"),
    _Fields(eval_output_cache, ("project_id", "cache_key"), "reply", ("output",), lambda _field: "reply"),
)


def _stale(column: Any, current_id: str, json: bool) -> ColumnElement[bool]:
    text = cast(column, Text) if json else column
    quote = '"' if json else ""
    return and_(
        text.like(f"{quote}{SEALED_PREFIX}%"), ~text.like(f"{quote}{SEALED_PREFIX}{VERSION}:{current_id}:%")
    )


class Rotation:
    """Re-seals stored values under the keyring's current key, ``batch`` rows at a time."""

    def __init__(self, engine: Engine, keyring: Keyring, *, batch: int = 1000) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._engine = engine
        self._keyring = keyring
        self._batch = batch

    def _reseal(self, value: str, aad: bytes) -> str:
        return self._keyring.seal(self._keyring.open(value, aad), aad)

    def run(self, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
        """Rotate everything; values re-sealed per ``table.column`` (``progress`` after each batch)."""
        counts: dict[str, int] = {}
        for target in TARGETS:
            for name, n in self._rotate_table(target, progress).items():
                counts[name] = n
        for fields in FIELD_TARGETS:
            counts[f"{fields.table.name}.{fields.column}"] = self._rotate_fields(fields, progress)
        return counts

    def _rotate_table(self, t: _Target, progress: Callable[[str, int], None] | None) -> dict[str, int]:
        c = t.table.c
        key = tuple_(*(c[k] for k in t.key))
        stale = or_(*(_stale(c[col], self._keyring.current_id, t.json) for col in t.columns))
        counts = {f"{t.table.name}.{col}": 0 for col in t.columns}
        after: tuple[Any, ...] | None = None
        while True:
            query = select(*(c[k] for k in t.key), c.project_id, *(c[col] for col in t.columns)).where(stale)
            if after is not None:
                query = query.where(key > tuple_(*after))
            with self._engine.begin() as conn:
                rows = conn.execute(query.order_by(*(c[k] for k in t.key)).limit(self._batch)).all()
                for row in rows:
                    m = row._mapping
                    for col in t.columns:
                        value = m[col]
                        if not is_sealed(value) or self._keyring.is_current(value):
                            continue
                        fresh = self._reseal(
                            value, row_aad(t.aad_table or t.table.name, col, int(m["project_id"]))
                        )
                        where = [c[k] == m[k] for k in t.key]
                        if not t.json:
                            where.append(c[col] == value)  # compare and set
                        conn.execute(update(t.table).where(*where).values({col: fresh}))
                        counts[f"{t.table.name}.{col}"] += 1
            if progress is not None:
                progress(t.table.name, len(rows))
            if len(rows) < self._batch:
                return counts
            after = tuple(rows[-1]._mapping[k] for k in t.key)

    def _rotate_fields(self, t: _Fields, progress: Callable[[str, int], None] | None) -> int:
        """Sealed fields inside a JSON column, a batch of rows per transaction in key order."""
        c = t.table.c
        key = tuple_(*(c[k] for k in t.key))
        done = 0
        after: tuple[Any, ...] | None = None
        while True:
            query = select(*(c[k] for k in t.key), c.project_id, c[t.column])
            if after is not None:
                query = query.where(key > tuple_(*after))
            with self._engine.begin() as conn:
                rows = conn.execute(query.order_by(*(c[k] for k in t.key)).limit(self._batch)).all()
                for row in rows:
                    m = row._mapping
                    value = dict(m[t.column] or {})
                    changed = 0
                    for name in t.fields:
                        sealed = value.get(name)
                        if is_sealed(sealed) and not self._keyring.is_current(sealed):
                            aad = row_aad(t.table.name, t.aad(name), int(m["project_id"]))
                            value[name] = self._reseal(sealed, aad)
                            changed += 1
                    if changed:
                        where = [c[k] == m[k] for k in t.key]
                        conn.execute(update(t.table).where(*where).values({t.column: value}))
                        done += changed
            if progress is not None:
                progress(t.table.name, len(rows))
            if len(rows) < self._batch:
                return done
            after = tuple(rows[-1]._mapping[k] for k in t.key)
