"""Request and response models of monitor silences and signal history (OpenAPI schema)."""

from __future__ import annotations

from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from watchkeep.monitor.silence import MAX_REASON


class SilenceIn(BaseModel):
    """Silence a monitor for a duration (``for``: ``30m``, ``2h``, ``1d``) or until a time
    (``until``, with a zone), at most 30 days ahead."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    duration: str | None = Field(default=None, alias="for", max_length=40, examples=["2h"])
    until: AwareDatetime | None = None
    reason: str | None = Field(default=None, max_length=MAX_REASON)

    @model_validator(mode="after")
    def _text(self) -> Self:
        if any("\x00" in t for t in (self.duration or "", self.reason or "")):
            raise ValueError("text fields may not contain NUL characters")
        return self


class SignalSeries(BaseModel):
    """One line of the chart: a value per bucket (null where there is none)."""

    label: str
    values: list[float | None]
    unit: str | None


class SignalThreshold(BaseModel):
    """A level the signal is judged against: ``label`` is reached when value ``op`` ``value``."""

    label: str
    value: float
    op: str


class SignalOut(BaseModel):
    """The watched signal of a monitor in buckets starting at ``x`` (Unix seconds)."""

    monitor_id: int
    kind: str
    bucket_seconds: int
    x: list[int]
    series: list[SignalSeries]
    thresholds: list[SignalThreshold]
    n: list[int | None]
