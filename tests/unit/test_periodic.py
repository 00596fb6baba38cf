"""The background pass loop the canary and retention workers share."""

from __future__ import annotations

import threading

from watchkeep.periodic import SATURATED, YIELD_PASSES, IngestYield, PeriodicThread


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


class FakeWriter:
    """A clock and an ingest writer's busy seconds that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0
        self.busy = 0.0

    def tick(self, seconds: float, busy_share: float) -> None:
        self.now += seconds
        self.busy += seconds * busy_share


def passes(writer: FakeWriter, yielding: IngestYield, busy_shares: list[float]) -> list[bool]:
    out = []
    for share in busy_shares:
        writer.tick(1.0, share)
        out.append(yielding.run_pass())
    return out


def test_background_work_runs_one_pass_in_four_while_ingest_is_saturated() -> None:
    writer = FakeWriter()
    yielding = IngestYield(lambda: writer.busy, clock=lambda: writer.now)
    ran = passes(writer, yielding, [1.0] * 8)
    assert ran == [False] * YIELD_PASSES + [True] + [False] * YIELD_PASSES + [True]
    assert yielding.yielded == 2 * YIELD_PASSES


def test_background_work_runs_every_pass_below_saturation_and_as_soon_as_ingest_calms() -> None:
    writer = FakeWriter()
    yielding = IngestYield(lambda: writer.busy, clock=lambda: writer.now)
    assert passes(writer, yielding, [SATURATED - 0.05] * 4) == [True] * 4
    # two saturated passes yielded, then ingest slows: the very next pass runs
    assert passes(writer, yielding, [1.0, 1.0, 0.2, 1.0]) == [False, False, True, False]


def test_without_an_ingest_writer_or_elapsed_time_nothing_yields() -> None:
    assert all(IngestYield(None).run_pass() for _ in range(5))
    writer = FakeWriter()
    yielding = IngestYield(lambda: writer.busy, clock=lambda: writer.now)
    assert yielding.run_pass()  # no time has passed since it was made: not saturated
