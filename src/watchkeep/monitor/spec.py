"""What a monitor is: a typed spec, the same whether it comes from YAML or the API.

A monitor names a condition of one kind — an operational metric, a quality figure
from scores, drift of a feature, an anomaly in a metric series, or a process resource
— plus a window, a schedule, a severity, thresholds and the channels to notify.
Durations are written ``30s``, ``5m``, ``2h``, ``7d`` (or seconds as a number).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from watchkeep.monitor.anomaly import AnomalyMethod
from watchkeep.monitor.drift import Method
from watchkeep.monitor.features import FEATURES
from watchkeep.monitor.metric_queries import METRIC_NAMES, MetricFilter

MAX_DURATION_S = 400 * 86400.0
MAX_ANOMALY_BUCKETS = 10_000
MAX_YAML_DEPTH = 32
MAX_REFERENCE_TEXT = 10_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
RESOURCE_METRICS = ("cpu_percent", "memory_rss_bytes", "gpu_utilization_percent", "gpu_memory_used_bytes")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def contains_nul(value: Any) -> bool:
    """Whether any string in a JSON-like value holds a NUL (PostgreSQL refuses them)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(v) for v in value)
    return False


def parse_duration(value: Any) -> float:
    """Seconds from ``"5m"``-style text or a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 2h, 7d)")
    if not 0 < seconds <= MAX_DURATION_S:
        raise ValueError("durations must be positive and at most 400 days")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(max_length=256)]
Short = Annotated[str, Field(max_length=64)]
ChannelName = Annotated[str, Field(min_length=1, max_length=200)]


class Severity(StrEnum):
    """How loudly a firing monitor should be treated."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if contains_nul(data):
            raise ValueError("text fields may not contain NUL characters")
        return data


class Filter(Strict):
    """Narrowing of the calls a monitor looks at."""

    model: Name | None = None
    model_version: Name | None = None
    prompt_version: Name | None = None
    route: Name | None = None
    environment: Name | None = None
    release: Name | None = None
    provider: Name | None = None

    def to_metric_filter(self) -> MetricFilter:
        return MetricFilter(**self.model_dump())


class Condition(Strict):
    """``value <op> alert`` fires ALERT, else ``value <op> warning`` fires WARNING."""

    op: Literal[">", ">=", "<", "<="] = ">"
    warning: float | None = None
    alert: float | None = None

    @model_validator(mode="after")
    def _some_threshold(self) -> Condition:
        if self.warning is None and self.alert is None:
            raise ValueError("a condition needs a warning or an alert threshold")
        return self

    def level(self, value: float) -> str:
        """OK, WARNING or ALERT for ``value``."""
        test = OPERATORS[self.op]
        if self.alert is not None and test(value, self.alert):
            return "ALERT"
        if self.warning is not None and test(value, self.warning):
            return "WARNING"
        return "OK"


class Reference(Strict):
    """A reference window ``duration`` long, ending ``offset`` before the current window's
    start, realigned every ``refresh`` so its cached summary is reused; or pinned values."""

    duration: Duration = 7 * 86400.0
    offset: Duration = Field(default=1.0, description="Gap between reference end and current start.")
    refresh: Duration = 86400.0
    values: list[Any] | None = Field(
        default=None,
        max_length=1_000_000,
        description="Pinned reference values: numbers, booleans or text (the project's "
        "quota_reference_rows caps how many).",
    )

    @field_validator("values")
    @classmethod
    def _scalars(cls, values: list[Any] | None) -> list[Any] | None:
        for v in values or ():
            if isinstance(v, str) and len(v) > MAX_REFERENCE_TEXT:
                raise ValueError(f"reference texts are limited to {MAX_REFERENCE_TEXT} characters")
            if not (v is None or isinstance(v, str | int | float | bool)):
                raise ValueError("reference values must be numbers, booleans, text or null")
        return values


class MonitorSpec(Strict):
    """A monitor as declared in YAML or sent to the API."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w.:-]+$")
    kind: Literal["metric", "quality", "drift", "anomaly", "resource"]
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool = True
    severity: Severity = Severity.WARNING
    window: Duration = 300.0
    schedule: Duration = 60.0
    filter: Filter = Filter()
    condition: Condition | None = None
    min_samples: int = Field(default=1, ge=0)
    consecutive: int = Field(default=1, ge=1, le=100, description="Evaluations in a row before a change.")
    renotify: Duration | None = Field(default=3600.0, description="Repeat while firing; null: never.")
    notify_no_data: bool = False
    channels: list[ChannelName] = Field(default_factory=list, max_length=20)
    # metric / anomaly / resource
    metric: Short | None = None
    # quality
    score: Name | None = None
    statistic: Short = "accuracy"
    # drift
    feature: Short | None = None
    score_name: Name | None = None
    method: Method = "auto"
    threshold: float | None = None
    reference: Reference = Reference()
    # anomaly
    bucket: Duration = 300.0
    anomaly_method: AnomalyMethod = "robust_z"
    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    # resource
    process: Name | None = None

    @model_validator(mode="after")
    def _complete(self) -> MonitorSpec:
        if self.kind in ("metric", "anomaly") and self.metric not in METRIC_NAMES:
            raise ValueError(f"{self.kind} monitors need metric, one of {', '.join(METRIC_NAMES)}")
        if self.kind == "resource" and self.metric not in RESOURCE_METRICS:
            raise ValueError(f"resource monitors need metric, one of {', '.join(RESOURCE_METRICS)}")
        if self.kind in ("metric", "quality", "resource") and self.condition is None:
            raise ValueError(f"{self.kind} monitors need a condition")
        if self.kind == "quality" and not self.score:
            raise ValueError("quality monitors need score (the score name)")
        if self.kind == "drift":
            if self.feature not in FEATURES:
                raise ValueError(f"drift monitors need feature, one of {', '.join(FEATURES)}")
            if self.feature == "predicted_label" and not self.score_name:
                raise ValueError("drift on predicted_label needs score_name")
        if self.kind == "anomaly" and self.bucket > self.window:
            raise ValueError("an anomaly monitor's bucket must not exceed its window")
        if self.kind == "anomaly" and self.window / self.bucket > MAX_ANOMALY_BUCKETS:
            raise ValueError(f"an anomaly window may hold at most {MAX_ANOMALY_BUCKETS} buckets")
        return self


class MonitorFile(Strict):
    """A YAML file of monitors (and, optionally, the channels they use)."""

    monitors: list[MonitorSpec] = Field(default_factory=list)
    channels: list[dict[str, Any]] = Field(default_factory=list)


class _CallerLoader(yaml.SafeLoader):
    """A safe loader that refuses anchors and aliases and nesting past ``MAX_YAML_DEPTH``.

    Aliases are how a few hundred bytes become 10^9 nodes ("billion laughs"); refusing them
    while composing, before any node is built, keeps the work linear in the text. The
    composer recurses per level, so the depth cap also keeps it off Python's stack limit.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ValueError(f"YAML anchors and aliases (&name, *name, <<) are not allowed{_where(event)}")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise ValueError(f"the YAML is nested too deep (over {MAX_YAML_DEPTH} levels){_where(event)}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _where(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def safe_yaml(text: str) -> Any:
    """YAML (or JSON, which YAML reads too) as plain data; anchors, aliases and deep nesting
    are refused and malformed text is a ``ValueError``. Callers bound the text's size."""
    try:
        return yaml.load(text, Loader=_CallerLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}"[:1000]) from exc


def load_yaml(text: str) -> MonitorFile:
    """Monitors and channels declared in YAML (validated); anchors, aliases and deep nesting
    are refused (``ValueError``). Callers bound the text's size."""
    data = safe_yaml(text) or {}
    if isinstance(data, list):
        data = {"monitors": data}
    return MonitorFile.model_validate(data)
