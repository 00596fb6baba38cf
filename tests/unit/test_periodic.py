"""The background pass loop the canary and retention workers share."""

from __future__ import annotations

import threading

from watchkeep.periodic import PeriodicThread


def test_it_runs_passes_until_stopped_and_survives_a_failing_pass() -> None:
    passes: list[int] = []
    third = threading.Event()

    def work() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise RuntimeError("the database is away")
        if len(passes) >= 3:
            third.set()

    runner = PeriodicThread("wk-test-periodic", 0.001, work)
    runner.start()
    runner.start()  # a second start is a no-op, not a second thread
    assert third.wait(30)
    assert sum(t.name == "wk-test-periodic" for t in threading.enumerate()) == 1
    runner.stop()
    assert runner.stopping
    assert not any(t.name == "wk-test-periodic" for t in threading.enumerate())
    done = len(passes)
    assert done >= 3


def test_interval_zero_never_starts_and_wait_first_stops_before_any_pass() -> None:
    calls: list[int] = []
    PeriodicThread("wk-test-never", 0, lambda: calls.append(1)).start()
    assert not any(t.name == "wk-test-never" for t in threading.enumerate())
    waiting = PeriodicThread("wk-test-wait", 3600, lambda: calls.append(1), wait_first=True)
    waiting.start()
    waiting.stop()
    assert calls == []
