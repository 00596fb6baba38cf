"""What the release pages show, computed outside the templates: the alias timeline, JSON
blocks, a prompt diff's lines, a canary's live comparison, and the activity record of an
alias move (the same summary the REST API writes, with the console user as actor)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from watchkeep.registry.aliases import AliasEvent
from watchkeep.registry.canary import Decision, MetricRule, decide
from watchkeep.registry.canary_repository import Canary
from watchkeep.registry.repository import Kind
from watchkeep.ui.frame import Console

# The badge tone of each alias event kind on the timeline.
EVENT_TONES: Mapping[str, str] = {
    "move": "info",
    "promote": "ok",
    "forced": "warn",
    "rollback": "muted",
    "auto_rollback": "crit",
    "remove": "muted",
}
VERBS: Mapping[str, str] = {
    "move": "moved",
    "promote": "promoted",
    "forced": "forced",
    "rollback": "rolled back",
    "auto_rollback": "rolled back",
    "remove": "removed",
}
STATUS_TONES: Mapping[str, str] = {
    "running": "info",
    "promoted": "ok",
    "rolled_back": "crit",
    "stopped": "muted",
}
ACTION_TONES: Mapping[str, str] = {"continue": "info", "promote": "ok", "rollback": "crit"}


def pretty(value: Any) -> str:
    """A JSON block for params, metadata and settings (keys sorted, so versions compare)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    """What ``json`` cannot write itself: the read-only mappings versions hold."""
    return dict(value) if isinstance(value, Mapping) else str(value)


def timeline(events: Iterable[AliasEvent]) -> list[AliasEvent]:
    """Every alias event, newest first (the log is oldest first)."""
    return sorted(events, key=lambda e: (e.at_ns, e.alias, e.seq), reverse=True)


def version_text(version: int | None) -> str:
    return "—" if version is None else f"v{version}"


def dataset_path(ref: str) -> str:
    """The console path of a training dataset reference ``NAME`` or ``NAME@N``."""
    name, _, version = ref.partition("@")
    path = f"datasets/{quote(name, safe='')}"
    return f"{path}/versions/{quote(version, safe='')}" if version else path


def diff_lines(text: str) -> list[tuple[str, str]]:
    """A unified diff's lines with their tone: ``added``, ``removed``, ``hunk`` or ``context``."""
    rows: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            tone = "hunk"
        elif line.startswith("+"):
            tone = "added"
        elif line.startswith("-"):
            tone = "removed"
        elif line.startswith("@@"):
            tone = "hunk"
        else:
            tone = "context"
        rows.append((tone, line))
    return rows


def record_alias_event(console: Console, kind: Kind, event: AliasEvent) -> None:
    """Put an alias move made on a page in the activity feed."""
    why = f": {event.reason}" if event.reason else ""
    verb = VERBS.get(event.kind, event.kind)
    console.services.activity.record(
        console.project.project_id,
        actor=console.actor,
        actor_user_id=console.session.user.id,
        verb=verb,
        target_kind=kind,
        target_id=f"{event.name}@{event.alias}",
        summary=f"{verb} {kind} {event.name}@{event.alias} from "
        f"{version_text(event.from_version)} to {version_text(event.to_version)}{why}",
    )


@dataclass(frozen=True, slots=True)
class LiveRow:
    """One metric of a canary's live comparison, formatted for the table."""

    name: str
    direction: str
    tolerance: str
    baseline: str
    n_baseline: int
    candidate: str
    n_candidate: int
    delta: str
    worsening: str
    p_worse: float
    p_within: float


def _value(rule: MetricRule, value: float, n: int) -> str:
    if n == 0 or not math.isfinite(value):
        return "—"
    return f"{value:.2%}" if rule.kind == "proportion" else f"{value:.4g}"


def _difference(rule: MetricRule, value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{100 * value:+.2f} pts" if rule.kind == "proportion" else f"{value:+.4g}"


def live_comparison(canary: Canary) -> tuple[Decision, list[LiveRow]]:
    """The decision the worker would take now and each metric's figures behind it."""
    decision = decide(canary.state)
    rules = {rule.name: rule for rule in canary.state.policy.metrics}
    rows: list[LiveRow] = []
    for report in decision.metrics:
        rule = rules[report.name]
        both = min(report.n_baseline, report.n_candidate) > 0
        rows.append(
            LiveRow(
                name=report.name,
                direction=rule.direction.replace("_", " "),
                tolerance=_difference(rule, rule.tolerance).lstrip("+"),
                baseline=_value(rule, report.baseline, report.n_baseline),
                n_baseline=report.n_baseline,
                candidate=_value(rule, report.candidate, report.n_candidate),
                n_candidate=report.n_candidate,
                delta=_difference(rule, report.candidate - report.baseline) if both else "—",
                worsening=_difference(rule, report.worsening) if both else "—",
                p_worse=report.p_worse,
                p_within=report.p_within,
            )
        )
    return decision, rows
