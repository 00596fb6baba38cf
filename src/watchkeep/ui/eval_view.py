"""Shaping validation data for the console's templates: estimates, aggregates, items, diffs.

The aggregates of a run are a JSON document (``evals.aggregate``) whose sections grow as
evaluators, consistency and adversarial metrics are added; the run page walks it rather
than naming every key, so a new section shows up without a template change. An estimate
is any mapping with ``low`` and ``high`` (and a ``value``, ``rate`` or ``mean``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from watchkeep.evals.model import DatasetItem, ItemResult

EXCERPT_CHARS = 160
MAX_DEPTH = 4
MAX_ROWS_PER_SECTION = 200
POINT_KEYS = ("value", "rate", "mean", "estimate", "point")
RATE_WORDS = ("rate", "accuracy", "precision", "recall", "f1", "pass", "asr", "agreement", "invariance")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a summary section: a label and its figure (with interval and n when known)."""

    label: str
    value: str
    interval: str = ""
    n: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A titled group of rows (one top-level key of the aggregates)."""

    title: str
    rows: list[Row]


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A one-line, bounded rendering of an input, expected value or output."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_rate(label: str) -> bool:
    low = label.lower()
    return any(word in low for word in RATE_WORDS)


def figure(value: Any, *, rate: bool = False) -> str:
    """A number as the page shows it: a rate as a percentage, others to 4 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if rate and 0.0 <= value <= 1.0:
            return f"{value * 100:.1f} %"
        return f"{value:.4g}"
    return excerpt(value, 80)


def is_estimate(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """A mapping with an interval (``low``/``high``): shown as one row."""
    return isinstance(value, Mapping) and "low" in value and "high" in value


def estimate_row(label: str, est: Mapping[str, Any]) -> Row:
    """An estimate mapping as a row: point, ``[low, high]`` and ``n``."""
    rate = _is_rate(label)
    point = next((est[k] for k in POINT_KEYS if k in est), None)
    low, high = est.get("low"), est.get("high")
    interval = "" if low is None or high is None else f"[{figure(low, rate=rate)}, {figure(high, rate=rate)}]"
    n = est.get("n")
    return Row(label, figure(point, rate=rate), interval, "" if n is None else figure(n))


def _walk(label: str, value: Any, rows: list[Row], depth: int) -> None:
    if len(rows) >= MAX_ROWS_PER_SECTION:
        return
    if is_estimate(value):
        rows.append(estimate_row(label, value))
    elif isinstance(value, Mapping) and depth < MAX_DEPTH:
        for key, inner in value.items():
            _walk(f"{label} · {key}" if label else str(key), inner, rows, depth + 1)
    elif isinstance(value, list) and not all(isinstance(v, (int, float, str)) for v in value):
        rows.append(Row(label, f"{len(value)} entries"))
    else:
        rows.append(Row(label, figure(value, rate=_is_rate(label))))


def summary_sections(aggregates: Mapping[str, Any] | None) -> list[Section]:
    """The aggregates as sections: scalars first under "Run", then one section per mapping."""
    if not aggregates:
        return []
    head: list[Row] = []
    sections: list[Section] = []
    for key, value in aggregates.items():
        if value is None:  # a section with nothing to say (no repeats, no probes ...)
            continue
        if isinstance(value, Mapping) and not is_estimate(value):
            rows: list[Row] = []
            _walk("", value, rows, 1)
            if rows:
                sections.append(Section(key.replace("_", " "), rows))
        else:
            _walk(key.replace("_", " "), value, head, 1)
    return ([Section("run", head)] if head else []) + sections


def score_text(result: ItemResult) -> list[tuple[str, str, bool | None]]:
    """Each score of a result as (name, shown value, passed)."""
    out: list[tuple[str, str, bool | None]] = []
    for name, score in sorted(result.scores.items()):
        verdict = "pass" if score.passed else "fail" if score.passed is False else ""
        value = None if score.value is None or (score.value in (0.0, 1.0) and verdict) else score.value
        if score.error:
            shown = f"error: {excerpt(score.error, 60)}"
        else:
            parts = [verdict, "" if value is None else figure(float(value))]
            shown = " ".join(p for p in parts if p) or "—"
        out.append((name, shown, score.passed))
    return out


def item_fields(item: DatasetItem) -> dict[str, str]:
    """The fields of a dataset item that a diff compares, each as a bounded excerpt."""
    return {
        "input": excerpt(item.input),
        "expected": excerpt(item.expected),
        "split": item.split or "",
        "metadata": excerpt(dict(item.metadata)) if item.metadata else "",
        "trace_id": item.trace_id or "",
    }


def splits_text(splits: Mapping[str, int]) -> str:
    """``train 80 · test 20``; empty when a version has no splits."""
    return " · ".join(f"{name} {count:,}" for name, count in sorted(splits.items()))


def source_text(source: Mapping[str, Any] | None) -> str:
    """How a version was built, in a few words (``traces: model=gpt-4o``, ``file: a.jsonl``)."""
    if not source:
        return ""
    kind = str(source.get("kind") or source.get("type") or "")
    rest = {k: v for k, v in source.items() if k not in ("kind", "type") and v not in (None, "", [], {})}
    detail = ", ".join(f"{k}={excerpt(v, 40)}" for k, v in list(rest.items())[:6])
    return f"{kind}: {detail}" if kind and detail else kind or detail


def pass_text(result: ItemResult) -> str:
    """``pass``, ``fail`` or ``error`` for the items table's badge."""
    if result.error:
        return "error"
    verdict = result.passed
    return "pass" if verdict else "fail" if verdict is False else "n/a"


def run_pass_rate(aggregates: Mapping[str, Any] | None) -> Row | None:
    """The run's overall pass rate with its interval, when the aggregates hold one."""
    if not aggregates:
        return None
    value = aggregates.get("pass_rate")
    if is_estimate(value):
        return estimate_row("pass rate", value)
    if isinstance(value, (int, float)):
        return Row("pass rate", figure(float(value), rate=True))
    return None


def change_order(items: Sequence[Any]) -> list[Any]:
    """Per-item differences with broken first, then fixed, then the rest."""
    rank = {"broken": 0, "fixed": 1}
    return sorted(items, key=lambda d: rank.get(str(getattr(d, "change", "")), 2))


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A dataclass estimate (``monitor.stats.Estimate``) as the mapping ``estimate_row`` reads."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value if isinstance(value, Mapping) else {}


def signed(value: float | None, label: str = "") -> str:
    """A difference with its sign: percentage points for rates, 4 significant digits otherwise."""
    if value is None:
        return "—"
    if _is_rate(label):
        return f"{value * 100:+.1f} pp"
    return f"{value:+.4g}"
