"""The values of drift features in a time window, fetched from the store.

Numeric features (latency, TTFT, tokens, cost, prompt and response length), categorical
ones (model, finish reason, a score's predicted label) and texts for embeddings. Payload
lengths are computed by the database. Features read from the same rows form a family
(the span columns; the payload lengths): ``load_many`` reads any of a family's features
in one scan, which is what a cold reference pass needs (one scan per filter and window,
not one per monitor). Rows come straight off the DB-API cursor: references run to a
million rows, and SQLAlchemy's per-row objects were most of their cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import Engine, func, or_, select

from watchkeep.monitor.metric_queries import MetricFilter, llm_span_conditions
from watchkeep.monitor.payloads import payload_text
from watchkeep.store.sealing import Sealer, open_text, row_aad
from watchkeep.store.tables import scores, span_payloads, spans

FeatureKind = Literal["numeric", "categorical", "text"]
MAX_TEXTS = 1000

_SPAN_NUMERIC: dict[str, Any] = {
    "latency_ms": spans.c.duration_ms,
    "ttft_ms": spans.c.time_to_first_token_ms,
    "input_tokens": spans.c.input_tokens,
    "output_tokens": spans.c.output_tokens,
    "cost_usd": spans.c.cost_usd,
}
_PAYLOAD_NUMERIC: dict[str, Any] = {
    "prompt_length": func.length(span_payloads.c.input),
    "response_length": func.length(span_payloads.c.output),
}
_CATEGORICAL: dict[str, Any] = {
    "model": func.coalesce(spans.c.response_model, spans.c.request_model),
    "finish_reason": spans.c.finish_reason,
}
_TEXT: dict[str, Any] = {"prompt_text": span_payloads.c.input, "response_text": span_payloads.c.output}
# The payload side each payload feature reads: encrypted payloads are opened and measured here.
_SIDE = {
    "prompt_length": "input",
    "response_length": "output",
    "prompt_text": "input",
    "response_text": "output",
}
_COLUMNS: dict[str, Any] = {**_SPAN_NUMERIC, **_PAYLOAD_NUMERIC, **_CATEGORICAL, **_TEXT}
FAMILIES: tuple[tuple[str, ...], ...] = (
    (*_SPAN_NUMERIC, *_CATEGORICAL),
    tuple(_PAYLOAD_NUMERIC),
)
"""Features read from the same rows, so one scan can load them together."""
FEATURES: dict[str, FeatureKind] = {
    **dict.fromkeys(_SPAN_NUMERIC, "numeric"),
    **dict.fromkeys(_PAYLOAD_NUMERIC, "numeric"),
    **dict.fromkeys(_CATEGORICAL, "categorical"),
    "predicted_label": "categorical",
    **dict.fromkeys(_TEXT, "text"),
}


class UnknownFeature(ValueError):
    """A drift feature name this module cannot load."""


@dataclass(frozen=True, slots=True)
class FeatureRequest:
    """Which feature, for which calls; ``score_name`` is needed for ``predicted_label``."""

    feature: str
    filter: MetricFilter = field(default_factory=MetricFilter)
    score_name: str | None = None

    @property
    def kind(self) -> FeatureKind:
        kind = FEATURES.get(self.feature)
        if kind is None:
            raise UnknownFeature(f"unknown feature {self.feature!r}; known: {', '.join(FEATURES)}")
        if self.feature == "predicted_label" and not self.score_name:
            raise UnknownFeature("predicted_label needs score_name")
        return kind


class FeatureLoader:
    """Reads one feature's values for one project and window."""

    def __init__(self, engine: Engine, *, sealer: Sealer | None = None) -> None:
        self._engine = engine
        self._sealer = sealer  # payloads are encrypted: lengths and texts are read after opening

    def _opener(self, project_id: int, feature: str) -> Callable[[Any], str | None]:
        aad = row_aad("span_payloads", _SIDE[feature], project_id)
        return lambda value: open_text(self._sealer, value, aad)

    @staticmethod
    def family(feature: str) -> tuple[str, ...]:
        """The features one scan loads together with ``feature`` (empty: it is loaded alone)."""
        return next((f for f in FAMILIES if feature in f), ())

    def load(self, project_id: int, req: FeatureRequest, start_ns: int, end_ns: int) -> Any:
        """A float array (numeric), a list of strings (categorical, text)."""
        kind = req.kind
        if self.family(req.feature):
            return self.load_many(project_id, req.filter, (req.feature,), start_ns, end_ns)[req.feature]
        if req.feature == "predicted_label":
            c = scores.c
            query: Any = select(c.string_value).where(
                c.project_id == project_id,
                c.name == req.score_name,
                c.created_at_unix_nano >= start_ns,
                c.created_at_unix_nano < end_ns,
                c.string_value.is_not(None),
            )
            return self._column(query, kind)
        column = _COLUMNS[req.feature]
        opened = self._opener(project_id, req.feature) if req.feature in _SIDE else None
        query = (
            self._query(project_id, req.filter, [column], start_ns, end_ns)
            .order_by(spans.c.start_time_unix_nano.desc())
            .limit(MAX_TEXTS)
        )
        return self._column(query, kind, opened)

    def load_many(
        self, project_id: int, f: MetricFilter, features: Sequence[str], start_ns: int, end_ns: int
    ) -> dict[str, Any]:
        """The values of ``features`` (all of one family) in one scan, as ``load`` gives them."""
        family = self.family(features[0]) if features else ()
        if not family or any(name not in family for name in features):
            raise ValueError(f"not features of one family: {list(features)}")
        sealed = self._sealer is not None and set(features) <= set(_PAYLOAD_NUMERIC)
        # Encrypted payloads: SQL's length() would measure ciphertext, so the text is read and opened.
        chosen = (
            [_TEXT["prompt_text" if _SIDE[n] == "input" else "response_text"] for n in features]
            if sealed
            else None
        )
        query = self._query(project_id, f, chosen or [_COLUMNS[name] for name in features], start_ns, end_ns)
        with self._engine.connect() as conn:
            result = conn.execute(query)
            rows = result.cursor.fetchall() if result.cursor is not None else []
            result.close()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in features]
        out: dict[str, Any] = {}
        for name, values in zip(features, columns, strict=True):
            if sealed:
                opened = self._opener(project_id, name)
                values = tuple(None if v is None else len(opened(v) or "") for v in values)
            if FEATURES[name] == "numeric":
                array = np.array(values, dtype=float)  # None becomes NaN, dropped as before
                out[name] = array[~np.isnan(array)]
            else:
                out[name] = list(values)
        return out

    def _query(self, project_id: int, f: MetricFilter, columns: list[Any], start_ns: int, end_ns: int) -> Any:
        """The LLM calls' ``columns`` (with the payload join when one is a payload's)."""
        cond = llm_span_conditions(project_id, f, start_ns, end_ns)
        query = select(*columns).where(*cond)
        if not any(c is _COLUMNS[name] for c in columns for name in (*_PAYLOAD_NUMERIC, *_TEXT)):
            return query
        p = span_payloads.c
        joined = spans.join(span_payloads, p.span_row_id == spans.c.id)
        return query.select_from(joined).where(or_(*(c.is_not(None) for c in columns)))

    def _column(
        self, query: Any, kind: FeatureKind, opened: Callable[[Any], str | None] | None = None
    ) -> Any:
        with self._engine.connect() as conn:
            result = conn.execute(query)
            if kind == "text":
                return [payload_text(opened(v) if opened else v) or "" for v in result.scalars()]
            return result.scalars().all()
