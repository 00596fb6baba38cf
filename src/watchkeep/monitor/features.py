"""The values of a drift feature in a time window, fetched column by column from the store.

Numeric features (latency, TTFT, tokens, cost, prompt and response length), categorical
ones (model, finish reason, a score's predicted label) and texts for embeddings. Only
the one needed column is read; payload lengths are computed by the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import Engine, and_, func, select

from watchkeep.monitor.metric_queries import MetricFilter, llm_span_conditions
from watchkeep.monitor.payloads import payload_text
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

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def load(self, project_id: int, req: FeatureRequest, start_ns: int, end_ns: int) -> Any:
        """A float array (numeric), a list of strings (categorical, text)."""
        kind = req.kind
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
        cond = llm_span_conditions(project_id, req.filter, start_ns, end_ns)
        column = {**_SPAN_NUMERIC, **_PAYLOAD_NUMERIC, **_CATEGORICAL, **_TEXT}[req.feature]
        query = select(column).where(*cond)
        if req.feature in _PAYLOAD_NUMERIC or req.feature in _TEXT:
            p = span_payloads.c
            query = query.select_from(
                spans.join(
                    span_payloads,
                    and_(
                        p.project_id == spans.c.project_id,
                        p.trace_id == spans.c.trace_id,
                        p.span_id == spans.c.span_id,
                    ),
                )
            ).where(column.is_not(None))
        if kind == "text":
            query = query.order_by(spans.c.start_time_unix_nano.desc()).limit(MAX_TEXTS)
        return self._column(query, kind)

    def _column(self, query: Any, kind: FeatureKind) -> Any:
        with self._engine.connect() as conn:
            result = conn.execute(query)
            # Scalars straight into their container: references run to a million values.
            if kind == "numeric":
                return np.fromiter((v for v in result.scalars() if v is not None), dtype=float)
            if kind == "text":
                return [payload_text(v) or "" for v in result.scalars()]
            return result.scalars().all()
