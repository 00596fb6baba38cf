"""Quality of a model from the scores and feedback stored against its traces.

A score name is read by its data type: categorical scores with a ground-truth ``label``
give a classification report, numeric scores a mean, boolean scores (thumbs up/down,
online checks) a rate. Only the three needed columns are fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, exists, or_, select

from watchkeep.monitor.stats import (
    ClassificationReport,
    Estimate,
    classification_report,
    mean_interval,
    wilson,
)
from watchkeep.semconv import ScoreDataType
from watchkeep.store.tables import scores, spans, traces


@dataclass(frozen=True, slots=True)
class QualityReport:
    """The quality of one score name over a window."""

    name: str
    data_type: str | None
    n: int
    mean: Estimate | None = None
    rate: Estimate | None = None
    classification: ClassificationReport | None = None

    def value(self, statistic: str) -> Estimate | None:
        """A named figure for monitors: ``mean``, ``rate``, ``accuracy``, ``macro_f1``,
        ``micro_f1``, ``macro_precision``, ``macro_recall``, or ``precision:<label>``,
        ``recall:<label>``, ``f1:<label>``."""
        if statistic in ("mean", "rate"):
            return self.mean if statistic == "mean" else self.rate
        c = self.classification
        if c is None:
            return None
        if statistic in ("accuracy", "macro_f1", "micro_f1", "macro_precision", "macro_recall"):
            found: Estimate = getattr(c, statistic)
            return found
        which, _, label = statistic.partition(":")
        if which in ("precision", "recall", "f1") and label:
            for cls in c.per_class:
                if cls.label == label:
                    per: Estimate = getattr(cls, which)
                    return per
            return Estimate(None, None, None, 0, "none")
        raise ValueError(f"unknown quality statistic {statistic!r}")


class QualityQueries:
    """Computes quality reports from stored scores of one project."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def report(
        self,
        project_id: int,
        name: str,
        start_ns: int,
        end_ns: int,
        *,
        model: str | None = None,
        confidence: float = 0.95,
    ) -> QualityReport:
        """The report of score ``name`` created in [start, end), optionally for one model."""
        c = scores.c
        cond = _conditions(project_id, name, start_ns, end_ns, model)
        query = select(c.data_type, c.value, c.string_value, c.label).where(*cond)
        with self._engine.connect() as conn:
            rows = list(conn.execute(query).all())
        return summarise(name, rows, confidence)

    def report_series(
        self,
        project_id: int,
        name: str,
        start_ns: int,
        end_ns: int,
        bucket_ns: int,
        *,
        model: str | None = None,
        confidence: float = 0.95,
    ) -> list[QualityReport]:
        """``report`` per bucket of ``bucket_ns`` from ``start_ns``, from one scan of the range."""
        c = scores.c
        cond = _conditions(project_id, name, start_ns, end_ns, model)
        query = select(c.created_at_unix_nano, c.data_type, c.value, c.string_value, c.label).where(*cond)
        n_buckets = -(-(end_ns - start_ns) // bucket_ns)
        rows: list[list[Any]] = [[] for _ in range(n_buckets)]
        with self._engine.connect() as conn:
            for r in conn.execute(query):
                rows[(int(r[0]) - start_ns) // bucket_ns].append(tuple(r)[1:])
        return [summarise(name, bucket, confidence) for bucket in rows]

    def reports(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        model: str | None = None,
        confidence: float = 0.95,
        max_names: int = 12,
    ) -> list[QualityReport]:
        """``report`` of every score name created in [start, end) (the ``max_names`` most
        frequent, by name), from one scan of the range: the overview's quality panel."""
        c = scores.c
        cond = _conditions(project_id, None, start_ns, end_ns, model)
        query = select(c.name, c.data_type, c.value, c.string_value, c.label).where(*cond)
        by_name: dict[str, list[Any]] = {}
        with self._engine.connect() as conn:
            for r in conn.execute(query):
                by_name.setdefault(str(r[0]), []).append(tuple(r)[1:])
        kept = sorted(by_name, key=lambda n: -len(by_name[n]))[:max_names]
        return [summarise(n, by_name[n], confidence) for n in sorted(kept)]


def _conditions(
    project_id: int, name: str | None, start_ns: int, end_ns: int, model: str | None
) -> list[Any]:
    """The WHERE clause of a score name's rows (every name's with None) created in
    [start, end), optionally for one model."""
    c = scores.c
    cond: list[Any] = [
        c.project_id == project_id,
        c.created_at_unix_nano >= start_ns,
        c.created_at_unix_nano < end_ns,
    ]
    if name is not None:
        cond.append(c.name == name)
    if model is not None:
        s, t = spans.c, traces.c
        cond.append(
            exists().where(  # the score's trace row by its key, then its spans (ADR 0032)
                t.project_id == c.project_id,
                t.trace_id == c.trace_id,
                s.trace_row_id == t.id,
                or_(s.request_model == model, s.response_model == model),
            )
        )
    return cond


def summarise(name: str, rows: list[Any], confidence: float = 0.95) -> QualityReport:
    """A report from (data_type, value, string_value, label) rows; the commonest type wins."""
    if not rows:
        return QualityReport(name, None, 0)
    types = [r[0] for r in rows]
    data_type = max(set(types), key=types.count)
    rows = [r for r in rows if r[0] == data_type]
    if data_type == ScoreDataType.CATEGORICAL:
        pairs = [(r[3], r[2]) for r in rows if r[3] is not None and r[2] is not None]
        report = classification_report([p[0] for p in pairs], [p[1] for p in pairs], confidence=confidence)
        return QualityReport(name, data_type, report.n, classification=report)
    values = np.array([r[1] for r in rows if r[1] is not None], dtype=float)
    if data_type == ScoreDataType.BOOLEAN:
        rate = wilson(int((values > 0.5).sum()), int(values.size), confidence)
        return QualityReport(name, data_type, int(values.size), rate=rate)
    return QualityReport(name, data_type, int(values.size), mean=mean_interval(values, confidence))
