"""How the console shows a monitor: what it watches, its thresholds, its chart, its history pages.

Pure functions of what the monitoring services return, so the monitor pages stay a thin
list of handlers and these can be read (and changed) in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watchkeep.monitor.repository import MonitorRow
from watchkeep.monitor.signal_history import Signal
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.monitor.state import FIRING, State

HISTORY_PAGE = 25
# Firing monitors first, the worst first; then those without data; then the quiet ones.
STATE_ORDER = {State.ALERT: 0, State.WARNING: 1, State.NO_DATA: 2, State.OK: 3}
STATE_TONES = {"ALERT": "crit", "WARNING": "warn", "NO_DATA": "muted", "OK": "ok"}
MAX_CURSOR_PART = 2**63 - 1


@dataclass(frozen=True, slots=True)
class MonitorView:
    """A monitor as a row of the list (and the head of its page) shows it."""

    row: MonitorRow
    watches: str
    threshold: str
    firing: bool
    silenced: bool


def level(value: float) -> str:
    """A threshold as people write it: 2,000,000 rather than 2e+06, 0.05 as is."""
    return f"{int(value):,}" if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def value_text(value: float | None) -> str:
    """A watched value for reading: whole numbers with separators, others to 4 significant digits."""
    if value is None:
        return "—"
    return level(value) if value.is_integer() else f"{value:.4g}"


def watches(spec: MonitorSpec) -> str:
    """What the monitor looks at, in a few words, with its call filter."""
    if spec.kind == "quality":
        what = f"{spec.statistic} of score {spec.score}"
    elif spec.kind == "drift":
        what = f"drift of {spec.feature}" + (f" ({spec.score_name})" if spec.score_name else "")
    elif spec.kind == "anomaly":
        what = f"anomalies in {spec.metric}"
    else:
        what = f"{spec.metric}" + (f" of {spec.process}" if spec.process else "")
    narrowed = [f"{k}={v}" for k, v in spec.filter.model_dump().items() if v]
    return what + (f" where {', '.join(narrowed)}" if narrowed else "")


def threshold(spec: MonitorSpec) -> str:
    """The levels the watched value is judged against."""
    c = spec.condition
    if c is not None:
        levels = (("alert", c.alert), ("warning", c.warning))
        return ", ".join(f"{name} {c.op} {level(value)}" for name, value in levels if value is not None)
    if spec.kind == "drift":
        return f"drift > {level(spec.threshold)}" if spec.threshold is not None else "the method's own test"
    if spec.kind == "anomaly":
        return f"anomaly at alpha {spec.alpha:g}"
    return "—"


def view(row: MonitorRow, now: int) -> MonitorView:
    """``row`` ready for a template."""
    return MonitorView(row, watches(row.spec), threshold(row.spec), row.state in FIRING, row.silenced(now))


def firing_first(rows: list[MonitorRow], now: int) -> list[MonitorView]:
    """The project's monitors, firing ones first, then by name."""
    ordered = sorted(rows, key=lambda r: (not r.spec.enabled, STATE_ORDER.get(r.state, 9), r.spec.name))
    return [view(r, now) for r in ordered]


def chart_data(signal: Signal) -> dict[str, Any]:
    """The signal as ``ui.chart`` data: its series, and each threshold as a flat line."""
    series: list[dict[str, Any]] = [
        {"label": s.label, "values": s.values, "unit": s.unit} for s in signal.series
    ]
    unit = signal.series[0].unit if signal.series else None
    for t in signal.thresholds:
        series.append(
            {
                "label": f"{t.label} ({t.op} {level(t.value)})",
                "values": [t.value] * len(signal.x),
                "unit": unit,
                "kind": "threshold",
            }
        )
    return {"x": signal.x, "series": series}


def read_cursor(text: str | None) -> tuple[int, int] | None:
    """A history cursor ``<time ns>.<event id>`` from the URL; None when absent or malformed."""
    at, _, key = (text or "")[:48].partition(".")
    if not (at.isdigit() and key.isdigit()):
        return None
    cursor = int(at), int(key)
    return cursor if max(cursor) <= MAX_CURSOR_PART else None


def next_cursor(events: list[dict[str, Any]]) -> str | None:
    """The cursor of the page after ``events`` (one more than a page was read), or None."""
    if len(events) <= HISTORY_PAGE:
        return None
    last = events[HISTORY_PAGE - 1]
    return f"{last['created_at_unix_nano']}.{last['id']}"
