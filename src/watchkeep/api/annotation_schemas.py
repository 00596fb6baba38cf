"""Request and response bodies of the annotation-queue API (``/api/v1/annotation-queues``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from watchkeep.api.schemas import HEX32, check_storable_json

Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=256)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MetadataItem = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}:", max_length=400)]
MAX_FILL = 10_000


class QueueCreate(BaseModel):
    """A queue: its labels (2 to 20 distinct, in keyboard-shortcut order) become the
    ground truth of the categorical score ``score_name``."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    description: Annotated[str | None, Field(max_length=2000)] = None
    score_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
    labels: Annotated[list[Label], Field(min_length=2, max_length=20)]
    annotators_per_item: Annotated[int, Field(ge=1, le=10)] = 1

    @model_validator(mode="after")
    def _distinct(self) -> QueueCreate:
        check_storable_json(self.model_dump(), "queue")
        repeated = sorted({x for x in self.labels if self.labels.count(x) > 1})
        if repeated:
            raise ValueError(f"labels must be distinct; repeated: {', '.join(repeated)}")
        return self


class Progress(BaseModel):
    items: int
    labels: int
    completed: int = Field(description="Items with all their labels.")
    remaining_for_me: int | None = Field(description="Items waiting for this user (null for keys).")


class QueueOut(BaseModel):
    id: int
    name: str
    description: str | None
    score_name: str
    labels: list[str]
    annotators_per_item: int
    source: list[dict[str, Any]] | None = Field(description="The latest fills: filter or sample, seed, size.")
    created_by: str | None
    created_at_unix_nano: int
    progress: Progress


class QueueList(BaseModel):
    items: list[QueueOut]


class FillFilter(BaseModel):
    """The trace list's filter (``GET /api/v1/traces`` query parameters) as a JSON object."""

    model_config = ConfigDict(extra="forbid")

    start_from: AwareDatetime | None = None
    start_to: AwareDatetime | None = None
    model: Text | None = None
    provider: Text | None = None
    operation: Text | None = None
    user_id: Text | None = None
    session_id: Text | None = None
    environment: Text | None = None
    release: Text | None = None
    status: Literal["ok", "error"] | None = None
    name: Text | None = None
    trace_id: Annotated[str | None, Field(pattern=HEX32)] = None
    q: Text | None = None
    tag: Annotated[list[Tag] | None, Field(max_length=10)] = None
    metadata: Annotated[list[MetadataItem] | None, Field(max_length=10)] = None


class FillRequest(BaseModel):
    """Either ``limit`` (the first N matching traces, newest first) or ``sample`` (N traces
    drawn at random with ``seed`` from the traces started in [since, until))."""

    model_config = ConfigDict(extra="forbid")

    filter: FillFilter = Field(default_factory=FillFilter)
    limit: Annotated[int | None, Field(ge=1, le=MAX_FILL)] = None
    sample: Annotated[int | None, Field(ge=1, le=MAX_FILL)] = None
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_way(self) -> FillRequest:
        check_storable_json(self.model_dump(mode="json"), "fill")
        if (self.limit is None) == (self.sample is None):
            raise ValueError("give exactly one of limit (first N matches) or sample (random N)")
        if self.sample is not None and (self.since is None or self.until is None):
            raise ValueError("a sample needs since and until, so the same seed gives the same items")
        if self.limit is not None and (self.since is not None or self.until is not None):
            raise ValueError("since and until go with sample; for limit use filter.start_from/start_to")
        return self


class FillOut(BaseModel):
    matched: int = Field(description="Traces picked by the filter or the sample.")
    added: int
    skipped: int = Field(description="Picked traces already in the queue.")
    items: int = Field(description="The queue's size after the fill.")


class LabelOut(BaseModel):
    user_id: int
    user_name: str | None
    label: str
    comment: str | None
    updated_at_unix_nano: int


class ItemOut(BaseModel):
    id: int
    trace_id: str
    span_id: str | None
    position: int
    status: Literal["open", "agreed", "tied"]
    ground_truth: str | None
    labels: list[LabelOut]
    created_at_unix_nano: int


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class EstimateOut(BaseModel):
    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str


class PairOut(BaseModel):
    a: int
    b: int
    n: int
    kappa: float | None


class AnnotatorOut(BaseModel):
    user_id: int
    name: str
    labels: int


class AgreementOut(BaseModel):
    """Agreement over items with at least two labels (n), with 95% bootstrap intervals over items."""

    n: int
    annotators: list[AnnotatorOut]
    percent_agreement: EstimateOut
    cohen_kappa: EstimateOut | None = Field(description="Exactly two annotators.")
    mean_pairwise_kappa: EstimateOut | None = Field(description="More than two annotators.")
    fleiss_kappa: EstimateOut | None = Field(description="More than two annotators.")
    pairs: list[PairOut]
    resamples: int
    computed_at: datetime
