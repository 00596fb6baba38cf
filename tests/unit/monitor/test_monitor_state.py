"""The monitor state machine fires, re-notifies, resolves and debounces."""

from __future__ import annotations

from watchkeep.monitor.state import Current, State, step

S = 1_000_000_000


def test_fire_renotify_and_resolve() -> None:
    cur = Current(State.OK, 0)
    fired = step(cur, State.ALERT, 10 * S, renotify_ns=60 * S)
    assert (fired.state, fired.notify, fired.previous) == (State.ALERT, "firing", State.OK)
    held = Current(State.ALERT, 10 * S, last_notified_ns=10 * S)
    assert step(held, State.ALERT, 30 * S, renotify_ns=60 * S).notify is None
    assert step(held, State.ALERT, 70 * S, renotify_ns=60 * S).notify == "renotify"
    assert step(held, State.ALERT, 70 * S, renotify_ns=None).notify is None
    resolved = step(held, State.OK, 80 * S)
    assert (resolved.state, resolved.notify) == (State.OK, "resolved")


def test_warning_to_alert_escalates_and_no_data_is_quiet_by_default() -> None:
    warn = Current(State.WARNING, 0, last_notified_ns=0)
    assert step(warn, State.ALERT, S).notify == "firing"
    assert step(Current(State.OK, 0), State.NO_DATA, S).notify is None
    assert step(Current(State.OK, 0), State.NO_DATA, S, notify_no_data=True).notify == "no_data"
    assert step(Current(State.NO_DATA, 0), State.OK, S).notify is None


def test_consecutive_evaluations_debounce_flapping() -> None:
    cur = Current(State.OK, 0)
    first = step(cur, State.ALERT, S, consecutive=3)
    assert first.state == State.OK
    assert first.pending_count == 1
    second = step(Current(State.OK, 0, first.pending, first.pending_count), State.ALERT, 2 * S, consecutive=3)
    assert second.state == State.OK
    third = step(
        Current(State.OK, 0, second.pending, second.pending_count), State.ALERT, 3 * S, consecutive=3
    )
    assert third.state == State.ALERT
    assert third.notify == "firing"
    # A blip back to OK resets the count.
    blip = step(Current(State.OK, 0, State.ALERT, 2), State.OK, 4 * S, consecutive=3)
    assert blip.pending is None
    assert blip.pending_count == 0
