"""The datasets and evaluation-runs answers as frozen dataclasses (mirroring
``watchkeep.api.eval_schemas``; unknown keys are ignored, so a newer server does not break
an older client)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchkeep.client.models import _build, parse_time


def _time_or_none(value: Any) -> datetime | None:
    return parse_time(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version of a dataset (``created``: False when an upload matched an
    existing version's content; None when not an upload's answer)."""

    id: int
    dataset: str
    version: int
    content_hash: str
    item_count: int
    splits: dict[str, int]
    source: dict[str, Any] | None
    message: str | None
    created_by: str | None
    created_at: datetime
    created: bool | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatasetVersion:
        return _build(cls, data, created_at=parse_time(data["created_at"]))


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset and its latest version."""

    id: int
    name: str
    description: str | None
    versions: int
    created_at: datetime
    latest: DatasetVersion | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dataset:
        latest = data.get("latest")
        return _build(
            cls,
            data,
            created_at=parse_time(data["created_at"]),
            latest=DatasetVersion.from_json(latest) if latest else None,
        )


@dataclass(frozen=True, slots=True)
class DatasetItem:
    """One item of a dataset version."""

    key: str
    input: Any
    expected: Any
    metadata: dict[str, Any]
    split: str | None
    trace_id: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatasetItem:
        return _build(cls, data, metadata=data.get("metadata") or {})


@dataclass(frozen=True, slots=True)
class EvalRun:
    """An evaluation run: what ran against what, progress, aggregates and gate verdict."""

    id: int
    name: str
    status: str
    dataset_version_id: int | None
    dataset: str | None
    dataset_version: int | None
    target: dict[str, Any]
    target_version: str
    config: dict[str, Any]
    config_hash: str
    seed: int
    baseline_run_id: int | None
    cases_total: int
    cases_done: int
    cases_failed: int
    aggregates: dict[str, Any] | None
    gate: dict[str, Any] | None
    error: str | None
    created_by: str | None
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalRun:
        return _build(
            cls,
            data,
            started_at=parse_time(data["started_at"]),
            finished_at=_time_or_none(data.get("finished_at")),
        )


@dataclass(frozen=True, slots=True)
class EvalScore:
    """One evaluator's verdict on a result."""

    passed: bool | None
    value: float | None
    comment: str | None
    details: dict[str, Any] | None
    error: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalScore:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One immutable per-item result of a run."""

    id: int
    item_key: str
    repeat: int
    variant: str
    family: str | None
    passed: bool | None
    messages: list[dict[str, Any]] | None
    output: str | None
    scores: dict[str, EvalScore]
    error: str | None
    error_kind: str | None
    latency_ms: float | None
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    cached: bool
    trace_id: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalResult:
        scores = {k: EvalScore.from_json(v) for k, v in (data.get("scores") or {}).items()}
        return _build(cls, data, scores=scores)


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric of a comparison: both runs' estimates, the paired delta and its test."""

    name: str
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    delta: dict[str, Any]
    p_value: float | None
    test: str
    regression: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricComparison:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Candidate against baseline: paired intervals on metric deltas, McNemar's exact test,
    the verdict (``pass``, ``regression`` or ``inconclusive``) and per-item differences."""

    baseline_run_id: int
    candidate_run_id: int
    n_paired: int
    verdict: str
    reasons: list[str]
    metrics: tuple[MetricComparison, ...]
    mcnemar: dict[str, Any]
    items: list[dict[str, Any]]
    alpha: float
    max_drop: float
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunComparison:
        return _build(
            cls,
            data,
            metrics=tuple(MetricComparison.from_json(m) for m in data.get("metrics") or ()),
            reasons=list(data.get("reasons") or ()),
            items=list(data.get("items") or ()),
            raw=data,
        )
