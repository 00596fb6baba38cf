"""Prometheus export of LLM traffic and labelled quality, fed from ingest and scores.

OTel GenAI histograms (``gen_ai_client_operation_duration_seconds``,
``gen_ai_client_token_usage``), ``watchkeep_genai_*`` counters, and confusion counters
(``watchkeep_quality_confusion_total`` with outcome tp/fp/fn/tn per label) from which
precision, recall and F1 follow in PromQL over any window. The ingest path hands over
whole committed batches: rows are grouped per label set in one pass and binned with
numpy, so the cost is a few tuple reads per span. Label values are capped per label
(``max_values``) and folded into "other" beyond, so cardinality stays bounded whatever
clients send. True negatives are derived at scrape time (predictions - tp - fp - fn),
so they are exact for every label, including labels first seen late.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from watchkeep.store.rows import SPAN_COLUMNS

# OTel GenAI semantic-convention bucket boundaries.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
SPAN_LABELS = ("project", "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
OTHER = "other"
_I = {name: i for i, name in enumerate(SPAN_COLUMNS)}
STATUS_ERROR = 2


class LabelFolder:
    """Keeps the first ``cap`` distinct values of a label; later ones become "other"."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._seen: set[str] = set()

    def __call__(self, value: Any) -> str:
        text = "unknown" if value is None else str(value)
        if text in self._seen:
            return text
        if len(self._seen) < self._cap:
            self._seen.add(text)
            return text
        return OTHER


class _Hist:
    __slots__ = ("counts", "total")

    def __init__(self, n_buckets: int) -> None:
        self.counts = np.zeros(n_buckets + 1, dtype=np.int64)
        self.total = 0.0

    def add(self, values: list[float], edges: np.ndarray) -> None:
        x = np.asarray(values, dtype=float)
        self.counts += np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)
        self.total += float(x.sum())

    def buckets(self, edges: Sequence[float]) -> list[tuple[str, float]]:
        cumulative = np.cumsum(self.counts)
        out = [(repr(float(e)), float(c)) for e, c in zip(edges, cumulative[:-1], strict=True)]
        out.append(("+Inf", float(cumulative[-1])))
        return out


class GenAiTelemetry(Collector):
    """The collector; ``observe_spans`` after each commit, ``observe_score`` per score."""

    def __init__(self, registry: CollectorRegistry | None = None, *, max_values: int = 50) -> None:
        self._lock = threading.Lock()
        self._fold = {
            "project": LabelFolder(max_values),
            "operation": LabelFolder(max_values),
            "provider": LabelFolder(max_values),
            "model": LabelFolder(max_values),
            "score": LabelFolder(max_values),
            "label": LabelFolder(max_values),
        }
        self._dur_edges = np.asarray(DURATION_BUCKETS)
        self._tok_edges = np.asarray(TOKEN_BUCKETS, dtype=float)
        self._duration: dict[tuple[str, ...], _Hist] = {}
        self._tokens: dict[tuple[str, ...], _Hist] = {}
        self._requests: dict[tuple[str, ...], float] = defaultdict(float)
        self._errors: dict[tuple[str, ...], float] = defaultdict(float)
        self._cost: dict[tuple[str, ...], float] = defaultdict(float)
        self._confusion: dict[tuple[str, str, str], list[int]] = {}
        self._predictions: dict[tuple[str, str], int] = defaultdict(int)
        if registry is not None:
            registry.register(self)

    def observe_spans(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Account for committed span rows (tuples in ``SPAN_COLUMNS`` order)."""
        i_proj, i_op, i_prov = _I["project_id"], _I["operation"], _I["provider"]
        i_req, i_resp, i_dur = _I["request_model"], _I["response_model"], _I["duration_ms"]
        i_in, i_out, i_cost, i_status = (
            _I["input_tokens"],
            _I["output_tokens"],
            _I["cost_usd"],
            _I["status_code"],
        )
        durations: dict[tuple[Any, ...], list[float]] = defaultdict(list)
        tokens: dict[tuple[Any, ...], list[float]] = defaultdict(list)
        errors: dict[tuple[Any, ...], int] = defaultdict(int)
        cost: dict[tuple[Any, ...], float] = defaultdict(float)
        for r in rows:
            model = r[i_req] or r[i_resp]
            if model is None:
                continue  # not an LLM call
            raw = (r[i_proj], r[i_op], r[i_prov], model)
            durations[raw].append(r[i_dur] / 1000.0)
            if r[i_in] is not None:
                tokens[(*raw, "input")].append(r[i_in])
            if r[i_out] is not None:
                tokens[(*raw, "output")].append(r[i_out])
            if r[i_status] == STATUS_ERROR:
                errors[raw] += 1
            if r[i_cost]:
                cost[raw] += r[i_cost]
        if not durations:
            return
        with self._lock:
            keys = {raw: self._key(raw) for raw in durations}
            for raw, values in durations.items():
                key = keys[raw]
                hist = self._duration.get(key) or self._duration.setdefault(key, _Hist(len(DURATION_BUCKETS)))
                hist.add(values, self._dur_edges)
                self._requests[key] += len(values)
            for raw_t, values in tokens.items():
                key_t = (*keys[raw_t[:4]], raw_t[4])
                hist = self._tokens.get(key_t) or self._tokens.setdefault(key_t, _Hist(len(TOKEN_BUCKETS)))
                hist.add(values, self._tok_edges)
            for raw, n in errors.items():
                self._errors[keys[raw]] += n
            for raw, usd in cost.items():
                self._cost[keys[raw]] += usd

    def _key(self, raw: tuple[Any, ...]) -> tuple[str, ...]:
        f = self._fold
        return (f["project"](raw[0]), f["operation"](raw[1]), f["provider"](raw[2]), f["model"](raw[3]))

    def observe_score(self, project_id: int, name: str, predicted: str | None, actual: str | None) -> None:
        """Account for one labelled classification score (others are ignored)."""
        if predicted is None or actual is None:
            return
        with self._lock:
            project, score = self._fold["project"](project_id), self._fold["score"](name)
            pred, true = self._fold["label"](predicted), self._fold["label"](actual)
            self._predictions[(project, score)] += 1
            if pred == true:
                self._cell(project, score, pred)[0] += 1
            else:
                self._cell(project, score, pred)[1] += 1
                self._cell(project, score, true)[2] += 1

    def _cell(self, project: str, score: str, label: str) -> list[int]:
        key = (project, score, label)
        cell = self._confusion.get(key)
        if cell is None:
            cell = self._confusion[key] = [0, 0, 0]
        return cell

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            duration = HistogramMetricFamily(
                "gen_ai_client_operation_duration_seconds", "GenAI operation duration.", labels=SPAN_LABELS
            )
            for key, hist in self._duration.items():
                duration.add_metric(list(key), hist.buckets(DURATION_BUCKETS), hist.total)
            usage = HistogramMetricFamily(
                "gen_ai_client_token_usage",
                "Tokens used per GenAI operation.",
                labels=(*SPAN_LABELS, "gen_ai_token_type"),
            )
            for key, hist in self._tokens.items():
                usage.add_metric(list(key), hist.buckets(TOKEN_BUCKETS), hist.total)
            counters = []
            for name, doc, data in (
                ("watchkeep_genai_requests", "LLM calls stored.", self._requests),
                ("watchkeep_genai_errors", "LLM calls that ended in error.", self._errors),
                ("watchkeep_genai_cost_usd", "Cost of LLM calls in US dollars.", self._cost),
            ):
                family = CounterMetricFamily(name, doc, labels=SPAN_LABELS)
                for key, value in data.items():
                    family.add_metric(list(key), value)
                counters.append(family)
            confusion = CounterMetricFamily(
                "watchkeep_quality_confusion",
                "Labelled predictions per score and label: outcome tp, fp, fn, tn (one-vs-rest).",
                labels=("project", "score", "label", "outcome"),
            )
            for (project, score, label), (tp, fp, fn) in self._confusion.items():
                tn = self._predictions[(project, score)] - tp - fp - fn
                for outcome, value in (("tp", tp), ("fp", fp), ("fn", fn), ("tn", tn)):
                    confusion.add_metric([project, score, label, outcome], value)
            predictions = CounterMetricFamily(
                "watchkeep_quality_predictions",
                "Labelled predictions per score.",
                labels=("project", "score"),
            )
            for (project, score), value in self._predictions.items():
                predictions.add_metric([project, score], value)
        yield duration
        yield usage
        yield from counters
        yield confusion
        yield predictions
