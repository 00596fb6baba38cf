"""The console's Jinja2 environment: autoescaped, strict, with the formatting filters pages share.

Autoescaping is on for every template, so user data (a prompt holding ``<script>``) always
renders as text; ``StrictUndefined`` turns a misspelt variable into an error in tests
instead of an empty cell in production. Charts get their data through ``tojson`` inside
``<script type="application/json">`` (never executed, so the CSP can forbid inline scripts).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"


def ns_time(value: int | None) -> str:
    """Unix nanoseconds as ``2026-11-28 11:58:39`` (UTC); an em dash for none."""
    if value is None:
        return "—"
    return datetime.fromtimestamp(value / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def ns_iso(value: int | None) -> str:
    """Unix nanoseconds as an ISO 8601 UTC time (for ``<time datetime>``)."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1e9, tz=UTC).isoformat(timespec="seconds")


def duration_ms(value: float | None) -> str:
    """Milliseconds, with the precision a reader needs: 0.42 ms, 12.3 ms, 1,204 ms, 12.5 s."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 1:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def number(value: float | int | None, digits: int = 0) -> str:
    """A number with thousands separators; an em dash for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def money(value: float | None) -> str:
    """US dollars, with more digits for the sub-cent costs of single calls."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.6f}"
    return f"${value:,.2f}"


def percent(value: float | None, digits: int = 1) -> str:
    """A rate in [0, 1] as a percentage."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 100:.{digits}f}%"


def query(params: dict[str, object], **changes: object) -> str:
    """``params`` with ``changes`` applied (None removes) as a query string starting ``?``,
    so links keep a page's filters and time range (the URL is the state)."""
    merged = {**params, **changes}
    kept = [(k, str(v)) for k, v in merged.items() if v is not None and v != ""]
    return "?" + urlencode(kept) if kept else "?"


def build_environment() -> Environment:
    """The environment every console page renders with."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ns_time=ns_time,
        ns_iso=ns_iso,
        duration_ms=duration_ms,
        number=number,
        money=money,
        percent=percent,
    )
    env.globals["query"] = query
    return env
