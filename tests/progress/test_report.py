"""ProgressReport: counting, throttled notifications, states, and its explicit methods."""

from __future__ import annotations

import anyio
import pytest

from stageline.progress import (
    DEFAULT_UPDATE_INTERVAL,
    MemoryReporter,
    ProgressReport,
    ProgressState,
    reporting_to,
)

from ._helpers import FakeClock, timeline

pytestmark = pytest.mark.anyio


async def test_async_with_counts_increments_and_increases() -> None:
    """increment() and increase_by() add up in done; the finished snapshot has the counts."""
    reporter = MemoryReporter()
    with reporting_to(reporter):
        async with ProgressReport(message="Downloading", code="test.count", total=10) as report:
            assert report.state is ProgressState.RUNNING
            for _ in range(3):
                report.increment()
            report.increase_by(4)
            report.increase_by(0)
            assert report.done == 7
    assert report.state is ProgressState.COMPLETED
    final = reporter.final("test.count")
    assert (final.done, final.total, final.state) == (7, 10, ProgressState.COMPLETED)
    assert final.message == "Downloading"
    assert final.finished_at is not None


async def test_starts_from_the_given_done() -> None:
    """done= sets where counting starts, and the start snapshot carries it."""
    reporter = MemoryReporter()
    with reporting_to(reporter):
        async with ProgressReport("Resuming", "test.resume", total=5, done=2) as report:
            report.increment()
    assert timeline(reporter)[0] == ("started", 2, 5)
    assert reporter.final("test.resume").done == 3


async def test_total_can_be_set_later() -> None:
    """A report may start without a total and learn it inside its block."""
    clock = FakeClock()
    reporter = MemoryReporter()
    with reporting_to(reporter, clock=clock):
        async with ProgressReport("Parsing", "test.total") as report:
            assert report.total is None
            clock.advance(1)
            report.total = 3
            report.increase_by(3)
    assert timeline(reporter) == [
        ("started", 0, None),
        ("updated", 0, 3),
        ("finished", 3, 3),
    ]


async def test_notifications_are_throttled_by_the_clock() -> None:
    """Updates reach reporters at most once per interval, with the latest counts, and the
    start and the end always."""
    clock = FakeClock(start=0.0)
    reporter = MemoryReporter()
    # Steps of 1/8 s are exact in binary, so the boundaries below are exact too.
    with reporting_to(reporter, clock=clock, interval=0.25):
        async with ProgressReport("Counting", "test.throttle", total=1000) as report:
            for _ in range(100):
                report.increment()  # all at the start instant: too soon
            clock.advance(0.125)
            report.increment()  # half an interval after the start: still too soon
            clock.advance(0.125)
            report.increment()  # one interval: due, carries everything counted so far
            report.increase_by(10)  # same instant: too soon again
            clock.advance(0.5)
            report.increment()  # long overdue: one update, the next due 0.25 s later
            clock.advance(0.125)
            report.increment()
    assert timeline(reporter) == [
        ("started", 0, 1000),
        ("updated", 102, 1000),
        ("updated", 113, 1000),
        ("finished", 114, 1000),
    ]
    times = [event.report.taken_at for event in reporter.events]
    assert times == [0.0, 0.25, 0.75, 0.875]


async def test_the_default_interval_is_a_tenth_of_a_second() -> None:
    """Without an interval of its own, a reporting block throttles to DEFAULT_UPDATE_INTERVAL."""
    assert DEFAULT_UPDATE_INTERVAL == 0.1
    clock = FakeClock(start=0.0)
    reporter = MemoryReporter()
    with reporting_to(reporter, clock=clock):
        async with ProgressReport("Counting", "test.default") as report:
            clock.advance(0.09)
            report.increment()
            clock.advance(0.02)
            report.increment()
    assert timeline(reporter) == [("started", 0, None), ("updated", 2, None), ("finished", 2, None)]


async def test_the_interval_is_chosen_per_reporting_block() -> None:
    """interval=0 sends every change; a larger interval sends fewer."""
    clock = FakeClock()
    every = MemoryReporter()
    with reporting_to(every, clock=clock, interval=0):
        async with ProgressReport("Every", "test.every") as report:
            for _ in range(3):
                report.increment()
    assert [kind for kind, _, _ in timeline(every)] == ["started", *["updated"] * 3, "finished"]

    seldom = MemoryReporter()
    with reporting_to(seldom, clock=clock, interval=1.0):
        async with ProgressReport("Seldom", "test.seldom") as report:
            for _ in range(10):
                clock.advance(0.25)
                report.increment()
    assert timeline(seldom) == [
        ("started", 0, None),
        ("updated", 4, None),
        ("updated", 8, None),
        ("finished", 10, None),
    ]


async def test_an_unchanged_report_sends_no_update() -> None:
    """increase_by(0), setting the same total, and flush() without a change notify nobody."""
    clock = FakeClock()
    reporter = MemoryReporter()
    with reporting_to(reporter, clock=clock, interval=0):
        async with ProgressReport("Idle", "test.idle", total=4) as report:
            report.increase_by(0)
            report.total = 4
            report.done = 0
            report.flush()
    assert [kind for kind, _, _ in timeline(reporter)] == ["started", "finished"]


async def test_flush_sends_the_current_counts_at_once() -> None:
    """flush() bypasses the throttle (what Pulp's save() meant for watchers)."""
    clock = FakeClock()
    reporter = MemoryReporter()
    with reporting_to(reporter, clock=clock):
        async with ProgressReport("Flushing", "test.flush") as report:
            report.total = 8
            report.increase_by(2)
            report.flush()
            report.increment()
            report.flush()
            report.flush()
    assert timeline(reporter) == [
        ("started", 0, None),
        ("updated", 2, 8),
        ("updated", 3, 8),
        ("finished", 3, 8),
    ]


async def test_done_can_be_set() -> None:
    """Setting done replaces the count (for counts read back from elsewhere)."""
    reporter = MemoryReporter()
    with reporting_to(reporter):
        async with ProgressReport("Setting", "test.set") as report:
            report.done = 41
            report.increment()
    assert reporter.final("test.set").done == 42


async def test_an_exception_fails_the_report_and_propagates() -> None:
    """A block that raises leaves the report FAILED and its exception unchanged."""
    reporter = MemoryReporter()
    report = ProgressReport("Failing", "test.fail", total=2)

    async def fail() -> None:
        async with report:
            report.increment()
            raise KeyError("boom")

    with reporting_to(reporter), pytest.raises(KeyError, match="boom"):
        await fail()
    assert report.state is ProgressState.FAILED
    final = reporter.final("test.fail")
    assert (final.state, final.done) == (ProgressState.FAILED, 1)


async def test_cancellation_cancels_the_report() -> None:
    """A block cancelled from outside leaves the report CANCELED."""
    reporter = MemoryReporter()
    with reporting_to(reporter):
        with anyio.CancelScope() as scope:
            async with ProgressReport("Cancelled", "test.cancel") as report:
                report.increment()
                scope.cancel()
                await anyio.lowlevel.checkpoint()
        assert scope.cancelled_caught
    assert report.state is ProgressState.CANCELED
    assert reporter.final("test.cancel").state is ProgressState.CANCELED


async def test_a_cancelled_task_cancels_its_report() -> None:
    """A task cancelled by its task group while reporting leaves its report CANCELED."""
    reporter = MemoryReporter()
    started = anyio.Event()

    async def work() -> None:
        async with ProgressReport("Working", "test.task") as report:
            report.increment()
            started.set()
            await anyio.sleep_forever()

    with anyio.fail_after(10), reporting_to(reporter):
        async with anyio.create_task_group() as tg:
            tg.start_soon(work)
            await started.wait()
            tg.cancel_scope.cancel()
    final = reporter.final("test.task")
    assert (final.state, final.done) == (ProgressState.CANCELED, 1)


def test_interruption_and_groups_of_cancellations_cancel_the_report() -> None:
    """KeyboardInterrupt, or a group of nothing but such exceptions, is a cancellation."""
    with pytest.raises(KeyboardInterrupt), ProgressReport("Interrupted", "test.int") as one:
        raise KeyboardInterrupt
    assert one.state is ProgressState.CANCELED
    with (
        pytest.raises(BaseExceptionGroup),
        ProgressReport("Interrupted", "test.group") as two,
    ):
        raise BaseExceptionGroup("stopped", [KeyboardInterrupt(), SystemExit(1)])
    assert two.state is ProgressState.CANCELED


def test_a_group_holding_a_failure_fails_the_report() -> None:
    """A group mixing a cancellation and an error is a failure."""
    with pytest.raises(BaseExceptionGroup), ProgressReport("Mixed", "test.mixed") as report:
        raise BaseExceptionGroup("mixed", [KeyboardInterrupt(), ValueError("bad")])
    assert report.state is ProgressState.FAILED


def test_a_plain_with_block_works_in_synchronous_code() -> None:
    """ProgressReport is also a synchronous context manager (worker threads, Pulp-style code)."""
    reporter = MemoryReporter()
    with reporting_to(reporter), ProgressReport("Sync", "test.sync", total=2) as report:
        report.increment()
        report.increment()
    assert reporter.final("test.sync").state is ProgressState.COMPLETED


def test_start_and_finish_by_hand() -> None:
    """start() and finish(state) do what the block does, for a report without a block."""
    reporter = MemoryReporter()
    report = ProgressReport("By hand", "test.hand")
    assert report.state is ProgressState.WAITING
    report.increment()  # counted before the start, reported from it
    with reporting_to(reporter):
        assert report.start() is report
    report.increment()
    report.finish("failed")
    assert report.state is ProgressState.FAILED
    assert timeline(reporter) == [("started", 1, None), ("finished", 2, None)]
    assert [event.report.state for event in reporter.events] == [
        ProgressState.RUNNING,
        ProgressState.FAILED,
    ]


async def test_a_block_keeps_the_state_its_report_was_finished_in() -> None:
    """finish() inside the block wins over the block's own ending."""
    reporter = MemoryReporter()
    with reporting_to(reporter):
        async with ProgressReport("Early", "test.early") as report:
            report.finish(ProgressState.CANCELED)
    assert [event.kind for event in reporter.events] == ["started", "finished"]
    assert report.state is ProgressState.CANCELED


async def test_updating_a_finished_report_is_refused() -> None:
    """increment(), increase_by(), done= and total= after the end raise and change nothing."""
    reporter = MemoryReporter()
    with reporting_to(reporter):
        async with ProgressReport("Done", "test.late", total=1) as report:
            report.increment()
    for update in (
        report.increment,
        lambda: report.increase_by(2),
        lambda: setattr(report, "done", 5),
        lambda: setattr(report, "total", 9),
    ):
        with pytest.raises(RuntimeError, match="has finished"):
            update()
    assert (report.done, report.total) == (1, 1)
    assert [event.kind for event in reporter.events] == ["started", "finished"]


def test_starting_twice_finishing_twice_and_unstarted_snapshots_are_refused() -> None:
    """The life of a report runs once: waiting, running, then one final state."""
    report = ProgressReport("Life", "test.life")
    with pytest.raises(RuntimeError, match="has not started"):
        report.snapshot()
    with pytest.raises(RuntimeError, match="cannot finish"):
        report.finish()
    report.start()
    with pytest.raises(RuntimeError, match="already started"):
        report.start()
    with pytest.raises(ValueError, match="state must be"):
        report.finish(ProgressState.RUNNING)
    with pytest.raises(ValueError, match="state must be"):
        report.finish("done")
    report.finish()
    with pytest.raises(RuntimeError, match="cannot finish"):
        report.finish()
    assert report.snapshot().state is ProgressState.COMPLETED


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"message": "", "code": "c"}, "message"),
        ({"message": "  ", "code": "c"}, "message"),
        ({"message": 3, "code": "c"}, "message"),
        ({"message": "m", "code": ""}, "code"),
        ({"message": "m", "code": None}, "code"),
        ({"message": "m", "code": "c", "total": -1}, "total"),
        ({"message": "m", "code": "c", "total": 1.5}, "total"),
        ({"message": "m", "code": "c", "total": True}, "total"),
        ({"message": "m", "code": "c", "done": -1}, "done"),
        ({"message": "m", "code": "c", "done": None}, "done"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs: dict[str, object], argument: str) -> None:
    """A bad message, code, total or done is a ValueError naming the argument and value."""
    with pytest.raises(ValueError, match=rf"ProgressReport: {argument} must be .*, got"):
        ProgressReport(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, 1.0, "1", None, True])
def test_bad_updates_are_refused_naming_them(value: object) -> None:
    """increase_by(n), done= and total= refuse what is not a count, naming the argument."""
    with ProgressReport("m", "c") as report:
        with pytest.raises(ValueError, match=r"ProgressReport\.increase_by: n must be an int"):
            report.increase_by(value)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"ProgressReport\.done: value must be an int"):
            report.done = value  # type: ignore[assignment]
        if value is not None:
            with pytest.raises(ValueError, match=r"ProgressReport\.total: value must be an int"):
                report.total = value  # type: ignore[assignment]
        assert (report.done, report.total) == (0, None)


def test_an_int_subclass_counts() -> None:
    """increase_by accepts int subclasses (other than bool) through its slower check."""

    class Count(int):
        pass

    with ProgressReport("m", "c") as report:
        report.increase_by(Count(3))
    assert report.done == 3


async def test_nested_reports_each_reach_the_reporters() -> None:
    """A report inside another's block is its own report, finished first, with its own state."""
    reporter = MemoryReporter()

    async def inner_fails() -> None:
        async with ProgressReport("Inner", "test.inner") as inner:
            inner.increment()
            raise OSError("inner")

    with reporting_to(reporter):
        async with ProgressReport("Outer", "test.outer", total=2) as outer:
            for _ in range(2):
                with pytest.raises(OSError, match="inner"):
                    await inner_fails()
                outer.increment()
    assert [(event.kind, event.report.code) for event in reporter.events] == [
        ("started", "test.outer"),
        ("started", "test.inner"),
        ("finished", "test.inner"),
        ("started", "test.inner"),
        ("finished", "test.inner"),
        ("finished", "test.outer"),
    ]
    assert [r.state for r in reporter.finals("test.inner")] == [ProgressState.FAILED] * 2
    assert reporter.final("test.outer").state is ProgressState.COMPLETED
    assert reporter.final("test.outer").done == 2
    first, second = reporter.finals("test.inner")
    assert first.report_id != second.report_id


async def test_an_error_through_nested_blocks_fails_both_reports() -> None:
    """An exception leaving both blocks fails the inner report and then the outer one."""
    reporter = MemoryReporter()
    with reporting_to(reporter), pytest.raises(ZeroDivisionError):
        async with ProgressReport("Outer", "test.outer"), ProgressReport("Inner", "test.inner"):
            _ = 1 / 0
    assert [(event.kind, event.report.code, event.report.state) for event in reporter.events][
        2:
    ] == [
        ("finished", "test.inner", ProgressState.FAILED),
        ("finished", "test.outer", ProgressState.FAILED),
    ]


def test_snapshots_are_immutable_and_time_their_report() -> None:
    """A snapshot cannot be changed; elapsed runs to the snapshot, then to the finish."""
    clock = FakeClock(start=10.0)
    with reporting_to(clock=clock), ProgressReport("Timed", "test.timed") as report:
        clock.advance(2)
        running = report.snapshot()
        clock.advance(1)
    finished = report.snapshot()
    with pytest.raises(AttributeError):
        running.done = 5  # type: ignore[misc]
    assert (running.started_at, running.finished_at, running.elapsed) == (10.0, None, 2.0)
    assert (finished.finished_at, finished.elapsed) == (13.0, 3.0)


def test_repr_names_the_report() -> None:
    """The repr shows message, code, state and counts."""
    report = ProgressReport("Reading", "test.repr", total=3)
    assert repr(report) == "<ProgressReport 'Reading' [test.repr] waiting 0/3>"
