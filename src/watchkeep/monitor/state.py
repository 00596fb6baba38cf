"""The monitor state machine: OK, WARNING, ALERT, NO_DATA; pure, so it is easy to test.

A change needs ``consecutive`` evaluations in a row at the new level (flapping guard).
Entering WARNING or ALERT notifies ("firing"), returning to OK from them notifies
("resolved"), staying in WARNING or ALERT notifies again every ``renotify`` ("renotify"),
and entering NO_DATA notifies only when the monitor asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """Where a monitor stands."""

    OK = "OK"
    WARNING = "WARNING"
    ALERT = "ALERT"
    NO_DATA = "NO_DATA"


FIRING = frozenset({State.WARNING, State.ALERT})


@dataclass(frozen=True, slots=True)
class Current:
    """The stored state of a monitor."""

    state: State
    since_ns: int
    pending: State | None = None
    pending_count: int = 0
    last_notified_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """The state after one evaluation and the notification it calls for (if any)."""

    state: State
    since_ns: int
    pending: State | None
    pending_count: int
    notify: str | None  # "firing", "resolved", "renotify", "no_data"
    changed: bool
    previous: State


def step(
    current: Current,
    observed: State,
    now_ns: int,
    *,
    consecutive: int = 1,
    renotify_ns: int | None = None,
    notify_no_data: bool = False,
) -> Step:
    """Advance ``current`` by one evaluation that observed ``observed``."""
    if observed == current.state:
        again = None
        if (
            current.state in FIRING
            and renotify_ns is not None
            and current.last_notified_ns is not None
            and now_ns - current.last_notified_ns >= renotify_ns
        ):
            again = "renotify"
        return Step(current.state, current.since_ns, None, 0, again, False, current.state)
    count = current.pending_count + 1 if current.pending == observed else 1
    if count < consecutive:
        return Step(current.state, current.since_ns, observed, count, None, False, current.state)
    notify: str | None = None
    if observed in FIRING:
        notify = "firing"
    elif observed == State.OK and current.state in FIRING:
        notify = "resolved"
    elif observed == State.NO_DATA and notify_no_data:
        notify = "no_data"
    return Step(observed, now_ns, None, 0, notify, True, current.state)
