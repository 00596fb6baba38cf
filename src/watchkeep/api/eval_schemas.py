"""Request and response shapes of the datasets and evaluation-runs API.

Responses are built from the repositories' frozen dataclasses by the ``*_out`` functions,
so the routers stay a thin parse-authorise-call layer and the shapes live in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from watchkeep.api.registry_schemas import StorableIn
from watchkeep.api.schemas import ns_to_datetime
from watchkeep.evals.dataset_repository import DatasetSummary, DatasetVersionInfo
from watchkeep.evals.model import DatasetItem, ItemResult
from watchkeep.evals.run_repository import RunInfo, StoredResult

MAX_JSON_ITEMS = 10_000  # items in one JSON body (files are bounded by the body cap)
MAX_TRACE_ITEMS = 10_000
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionIn(_In):
    """A new version as JSON: the items (each ``key``, ``input``, ``expected``, ``metadata``,
    ``split``) and what to record with it."""

    items: list[dict[str, Any]] = Field(max_length=MAX_JSON_ITEMS)
    message: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=2000)
    split_by: str | None = Field(
        default=None, max_length=256, description="Split ratios, e.g. train=0.8,test=0.2 (stable per key)."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of the split assignment.")
    skip_invalid: bool = Field(default=False, description="Drop malformed rows instead of refusing.")


class FromTracesIn(_In):
    """A version built from the traces the query's trace filters select (newest first)."""

    limit: int = Field(default=1000, ge=1, le=MAX_TRACE_ITEMS)
    message: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=2000)
    with_expected: bool = Field(default=False, description="Keep each trace's output as the expected answer.")


class FromFeedbackIn(StorableIn):
    """A version built from feedback labels (score ``score_name``): the monitoring ground truth."""

    score_name: str = Field(min_length=1, max_length=200)
    limit: int = Field(default=1000, ge=1, le=MAX_TRACE_ITEMS)
    since: AwareDatetime | None = None
    message: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=2000)


class VersionOut(BaseModel):
    """One immutable version of a dataset."""

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


class CreatedVersionOut(VersionOut):
    """A version upload's answer: ``created`` is false when identical content already existed."""

    created: bool
    skipped: list[dict[str, Any]] = Field(default_factory=list, description="Rows dropped by skip_invalid.")


class DatasetOut(BaseModel):
    """A dataset and its latest version."""

    id: int
    name: str
    description: str | None
    versions: int
    created_at: datetime
    latest: VersionOut | None


class DatasetPage(BaseModel):
    """A page of datasets by name."""

    items: list[DatasetOut]
    next_cursor: str | None


class VersionList(BaseModel):
    """Every version of a dataset, newest first."""

    items: list[VersionOut]


class DatasetItemOut(BaseModel):
    """One dataset item."""

    key: str
    input: Any
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    split: str | None = None
    trace_id: str | None = None


class DatasetItemList(BaseModel):
    """A window of a version's items in position order."""

    items: list[DatasetItemOut]
    offset: int
    limit: int


class ChangeOut(BaseModel):
    """An item whose content differs between the versions (``fields`` names what changed)."""

    key: str
    fields: list[str]
    old: DatasetItemOut
    new: DatasetItemOut


class DiffOut(BaseModel):
    """What changed from one version to another, paired by item key."""

    from_version: int
    to_version: int
    added: list[DatasetItemOut]
    removed: list[DatasetItemOut]
    changed: list[ChangeOut]
    unchanged: int
    truncated: bool


class RunOut(BaseModel):
    """An evaluation run: what ran against what, how far it got, aggregates and gate verdict."""

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


class RunPage(BaseModel):
    """A page of runs, newest first."""

    items: list[RunOut]
    next_cursor: str | None


class EvalScoreOut(BaseModel):
    """One evaluator's verdict on a result."""

    passed: bool | None
    value: float | None
    comment: str | None = None
    details: dict[str, Any] | None = None
    error: str | None = None


class ResultOut(BaseModel):
    """One immutable per-item result; ``id`` is the ``after`` cursor of the next page."""

    id: int
    item_key: str
    repeat: int
    variant: str
    family: str | None
    passed: bool | None
    messages: list[dict[str, Any]] | None
    output: str | None
    scores: dict[str, EvalScoreOut]
    error: str | None
    error_kind: str | None
    latency_ms: float | None
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    cached: bool
    trace_id: str | None


class ResultPage(BaseModel):
    """A page of a run's results in id order; ``next_after`` is None on the last page."""

    items: list[ResultOut]
    next_after: int | None


def version_out(v: DatasetVersionInfo) -> VersionOut:
    return VersionOut(
        id=v.id,
        dataset=v.dataset_name,
        version=v.version,
        content_hash=v.content_hash,
        item_count=v.item_count,
        splits=dict(v.splits),
        source=v.source,
        message=v.message,
        created_by=v.created_by,
        created_at=ns_to_datetime(v.created_at_ns),
    )


def dataset_out(d: DatasetSummary) -> DatasetOut:
    return DatasetOut(
        id=d.id,
        name=d.name,
        description=d.description,
        versions=d.versions,
        created_at=ns_to_datetime(d.created_at_ns),
        latest=version_out(d.latest) if d.latest is not None else None,
    )


def item_out(item: DatasetItem) -> DatasetItemOut:
    return DatasetItemOut(
        key=item.key,
        input=item.input,
        expected=item.expected,
        metadata=dict(item.metadata),
        split=item.split,
        trace_id=item.trace_id,
    )


def run_out(r: RunInfo) -> RunOut:
    return RunOut(
        id=r.id,
        name=r.name,
        status=r.status,
        dataset_version_id=r.dataset_version_id,
        dataset=r.dataset_name,
        dataset_version=r.dataset_version,
        target=r.target,
        target_version=r.target_version,
        config=r.config,
        config_hash=r.config_hash,
        seed=r.seed,
        baseline_run_id=r.baseline_run_id,
        cases_total=r.cases_total,
        cases_done=r.cases_done,
        cases_failed=r.cases_failed,
        aggregates=r.aggregates,
        gate=r.gate,
        error=r.error,
        created_by=r.created_by,
        started_at=ns_to_datetime(r.started_at_ns),
        finished_at=ns_to_datetime(r.finished_at_ns) if r.finished_at_ns is not None else None,
    )


def result_out(stored: StoredResult) -> ResultOut:
    r: ItemResult = stored.result
    return ResultOut(
        id=stored.id,
        item_key=r.item_key,
        repeat=r.repeat,
        variant=r.variant,
        family=r.family,
        passed=r.passed,
        messages=[dict(m) for m in r.messages] if r.messages is not None else None,
        output=r.output,
        scores={
            name: EvalScoreOut(
                passed=s.passed,
                value=s.value,
                comment=s.comment,
                details=dict(s.details) if s.details is not None else None,
                error=s.error,
            )
            for name, s in r.scores.items()
        },
        error=r.error,
        error_kind=r.error_kind,
        latency_ms=r.latency_ms,
        cost_usd=r.cost_usd,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        cached=r.cached,
        trace_id=r.trace_id,
    )
