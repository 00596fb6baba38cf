"""The monitor form of the console: form fields to a spec and back, validated as the API validates.

The form covers what people set most (the kind, what it watches, thresholds, window,
schedule, filters, channels); an "advanced" text box takes a whole spec as JSON or YAML
for the rest. Either way the spec is checked by ``MonitorSpec`` (the API's request model)
and ``check_monitor`` (the API's admission rules), and each error is pinned to the field
that holds the bad value, so the console refuses exactly what the API refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from pydantic import ValidationError

from watchkeep.config import Settings
from watchkeep.monitor.admission import LimitExceeded, OperatorOnly, check_monitor
from watchkeep.monitor.anomaly import AnomalyMethod
from watchkeep.monitor.drift import Method
from watchkeep.monitor.features import FEATURES
from watchkeep.monitor.metric_queries import METRIC_NAMES
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.ui.forms import Form, typed_mapping

KINDS = ("metric", "quality", "drift", "anomaly")  # resource monitors are the operator's (YAML)
OPS = (">", ">=", "<", "<=")
SEVERITIES = ("info", "warning", "critical")
MAX_SPEC_CHARS = 64_000
# Spec fields the simple form sets directly (text as typed; pydantic converts).
PLAIN = (
    "kind",
    "description",
    "severity",
    "window",
    "schedule",
    "metric",
    "score",
    "statistic",
    "feature",
    "score_name",
    "method",
    "threshold",
    "bucket",
    "anomaly_method",
    "alpha",
    "min_samples",
    "consecutive",
)
FILTERS = ("model", "route", "environment", "release", "provider")
CONDITION = ("op", "warning", "alert")
# For errors of the spec as a whole: the field a message is about, by the words it uses.
WHOLE_SPEC_FIELDS = (
    ("score_name", "score_name"),
    ("need metric", "metric"),
    ("need score", "score"),
    ("need feature", "feature"),
    ("need a condition", "alert"),
    ("bucket", "bucket"),
)


@dataclass(frozen=True, slots=True)
class Choices:
    """The options of the form's selects (for the template)."""

    kinds: tuple[str, ...] = KINDS
    ops: tuple[str, ...] = OPS
    severities: tuple[str, ...] = SEVERITIES
    metrics: tuple[str, ...] = ("", *METRIC_NAMES)
    features: tuple[str, ...] = ("", *FEATURES)
    methods: tuple[str, ...] = get_args(Method)
    anomaly_methods: tuple[str, ...] = get_args(AnomalyMethod)


def form_of(spec: MonitorSpec) -> dict[str, str]:
    """The form's fields filled from ``spec`` (to edit it)."""
    data = spec.model_dump(mode="json")
    values = {name: _text(data.get(name)) for name in ("name", *PLAIN)}
    values.update({name: _text(data["filter"].get(name)) for name in FILTERS})
    condition = data.get("condition") or {}
    values.update({name: _text(condition.get(name)) for name in CONDITION})
    values["channels"] = ", ".join(data["channels"])
    values["enabled"] = "on" if spec.enabled else ""
    return values


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def spec_data(form: Form, base: dict[str, Any] | None) -> dict[str, Any]:
    """The spec the simple fields describe, on top of ``base`` (the stored spec when editing,
    so what the form does not show is kept); an empty field takes the default."""
    data = dict(base or {})
    data["name"] = form.data.get("name", "").strip()
    for name in PLAIN:
        _put(data, name, form.data.get(name, ""))
    filt = dict(data.get("filter") or {})
    for name in FILTERS:
        _put(filt, name, form.data.get(name, ""))
    data["filter"] = filt
    if form.data.get("warning", "").strip() or form.data.get("alert", "").strip():
        data["condition"] = {name: value for name in CONDITION if (value := form.data.get(name, "").strip())}
    else:
        data.pop("condition", None)
    data["channels"] = [c.strip() for c in form.data.get("channels", "").split(",") if c.strip()]
    data["enabled"] = form.data.get("enabled") == "on"
    return data


def _put(data: dict[str, Any], name: str, value: str) -> None:
    if value.strip():
        data[name] = value.strip()
    else:
        data.pop(name, None)


def advanced_data(form: Form) -> dict[str, Any] | None:
    """The spec typed in the advanced box (JSON or YAML), or None with an error on ``spec``."""
    return typed_mapping(
        form, noun="spec", shape="a mapping of fields (name, kind, ...)", max_chars=MAX_SPEC_CHARS
    )


def validated(form: Form, settings: Settings, base: MonitorSpec | None = None) -> MonitorSpec | None:
    """The form's spec, checked as the API checks it, or None with ``form.errors`` filled."""
    advanced = bool(form.data.get("spec", "").strip())
    data = advanced_data(form) if advanced else spec_data(form, _stored(base))
    if data is None:
        return None
    try:
        spec = MonitorSpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            form.fail(*_placed(error, advanced))
        return None
    if base is not None and spec.name != base.name:
        form.fail("spec" if advanced else "name", "a monitor's name cannot change; create a new one")
        return None
    try:
        check_monitor(settings, spec)
    except (OperatorOnly, LimitExceeded) as exc:
        form.fail("spec" if advanced else "schedule", exc.message)
        return None
    return spec


def _stored(spec: MonitorSpec | None) -> dict[str, Any] | None:
    return spec.model_dump(mode="json", exclude_unset=False) if spec is not None else None


def _placed(error: Any, advanced: bool) -> tuple[str, str]:
    """(field, message) for one pydantic error: nested ``condition.alert`` and ``filter.model``
    belong to the fields ``alert`` and ``model``; errors of the whole spec to the field
    they are about."""
    loc = [str(part) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    if advanced:
        return "spec", f"{'.'.join(loc)}: {message}" if loc else message
    if loc[:1] in (["condition"], ["filter"]):
        loc = loc[1:] or ["alert"]
    if loc:
        return loc[0], message
    for words, name in WHOLE_SPEC_FIELDS:
        if words in message:
            return name, message
    return "kind", message
