"""reporting_to: where reports go, in nested blocks, tasks, stages and threads; and what a
reporter that raises does to them."""

from __future__ import annotations

import logging

import anyio
import anyio.to_thread
import pytest

from stageline import Stage, create_pipeline
from stageline.progress import (
    MemoryReporter,
    ProgressReport,
    ProgressSnapshot,
    ProgressState,
    reporting_to,
)
from stageline.testing import sample_items

from ._helpers import FakeClock, RaisingReporter

pytestmark = pytest.mark.anyio


async def test_reports_fan_out_to_every_reporter() -> None:
    """Several reporters in one block each get every notification."""
    first, second = MemoryReporter(), MemoryReporter()
    with reporting_to(first, second, interval=0):
        async with ProgressReport("Both", "test.both") as report:
            report.increment()
    assert [e.kind for e in first.events] == ["started", "updated", "finished"]
    assert first.events == second.events


async def test_nested_blocks_add_reporters_and_restore_them() -> None:
    """An inner block adds to the outer's reporters; after it, only the outer's remain."""
    outer, inner = MemoryReporter(), MemoryReporter()
    with reporting_to(outer):
        with reporting_to(inner, outer):  # outer again: still called once
            async with ProgressReport("Inside", "test.inside"):
                pass
        async with ProgressReport("After", "test.after"):
            pass
    async with ProgressReport("Outside", "test.outside"):
        pass
    assert outer.codes == ["test.inside", "test.after"]
    assert inner.codes == ["test.inside"]
    assert len(outer.events) == 4


async def test_an_inner_block_may_change_only_the_clock_and_interval() -> None:
    """reporting_to() without reporters keeps the outer reporters with new settings."""
    clock = FakeClock()
    reporter = MemoryReporter()
    with reporting_to(reporter), reporting_to(clock=clock, interval=0):
        async with ProgressReport("Settings", "test.settings") as report:
            report.increment()
    assert [e.kind for e in reporter.events] == ["started", "updated", "finished"]
    assert {e.report.taken_at for e in reporter.events} == {clock.now}


async def test_a_report_keeps_the_reporters_of_its_start() -> None:
    """A report started outside any block stays silent even when finished inside one."""
    reporter = MemoryReporter()
    report = ProgressReport("Early", "test.early").start()
    with reporting_to(reporter):
        report.increment()
        report.finish()
    assert reporter.events == []


async def test_tasks_started_inside_the_block_report_to_it() -> None:
    """Tasks of a task group opened in the block inherit its reporters."""
    reporter = MemoryReporter()

    async def work(number: int) -> None:
        async with ProgressReport(f"Task {number}", f"test.task.{number}", total=3) as report:
            for _ in range(3):
                report.increment()
                await anyio.lowlevel.checkpoint()

    with reporting_to(reporter):
        async with anyio.create_task_group() as tg:
            for number in range(3):
                tg.start_soon(work, number)
    assert sorted(reporter.codes) == ["test.task.0", "test.task.1", "test.task.2"]
    for report in reporter.finals():
        assert (report.done, report.state) == (3, ProgressState.COMPLETED)


async def test_pipeline_stages_report_to_the_block_around_the_pipeline() -> None:
    """Stages, run as tasks by create_pipeline, report to the block the pipeline runs in."""

    class Feed(Stage):
        async def run(self) -> None:
            for item in sample_items(5):
                await self.put(item)

    class Count(Stage):
        async def run(self) -> None:
            async with ProgressReport("Counting Content", "test.stage") as report:
                async for batch in self.batches(minsize=2):
                    report.increase_by(len(batch))
                    for item in batch:
                        await self.put(item)

    reporter = MemoryReporter()
    with anyio.fail_after(10), reporting_to(reporter):
        await create_pipeline([Feed(), Count()])
    final = reporter.final("test.stage")
    assert (final.done, final.state) == (5, ProgressState.COMPLETED)


async def test_a_failing_stage_fails_the_report_of_a_stage_it_cancels() -> None:
    """When one stage fails, another stage's report ends CANCELED and the failing one's FAILED."""
    waiting = anyio.Event()

    class Wait(Stage):
        async def run(self) -> None:
            async with ProgressReport("Waiting", "test.waiting"):
                waiting.set()
                await anyio.sleep_forever()

    class Fail(Stage):
        async def run(self) -> None:
            async with ProgressReport("Failing", "test.failing"):
                await waiting.wait()
                raise OSError("disk full")

    reporter = MemoryReporter()
    with anyio.fail_after(10), reporting_to(reporter), pytest.raises(OSError, match="disk"):
        await create_pipeline([Wait(), Fail()])
    assert reporter.final("test.failing").state is ProgressState.FAILED
    assert reporter.final("test.waiting").state is ProgressState.CANCELED


async def test_worker_threads_report_to_the_block_they_were_started_in() -> None:
    """A report in a function run by anyio.to_thread.run_sync reaches the block's reporters."""
    reporter = MemoryReporter()

    def hash_files() -> None:
        with ProgressReport("Hashing", "test.thread", total=2) as report:
            report.increase_by(2)

    with reporting_to(reporter):
        await anyio.to_thread.run_sync(hash_files)
    assert reporter.final("test.thread").done == 2


async def test_a_raising_reporter_is_logged_once_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reporter raising in updated() breaks nothing: one error log, then no more calls to it,
    while the other reporters get everything."""
    broken = RaisingReporter(raises_in="updated")
    healthy = MemoryReporter()
    with (
        caplog.at_level(logging.ERROR, logger="stageline.progress"),
        reporting_to(broken, healthy, interval=0),
    ):
        async with ProgressReport("Sturdy", "test.sturdy") as report:
            for _ in range(3):
                report.increment()
        async with ProgressReport("Later", "test.later"):
            pass
    assert broken.calls == ["started", "updated"]
    assert [e.kind for e in healthy.events] == [
        *("started", "updated", "updated", "updated", "finished"),
        *("started", "finished"),
    ]
    errors = [r for r in caplog.records if r.name == "stageline.progress"]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert "RaisingReporter" in errors[0].getMessage()
    assert "updated()" in errors[0].getMessage()
    assert "'Sturdy' [test.sturdy]" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == "reporter broke in updated"


@pytest.mark.parametrize("raises_in", ["started", "finished"])
async def test_a_reporter_raising_at_either_end_breaks_nothing(
    raises_in: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A reporter raising in started() or finished() leaves the block, its result and the other
    reporters alone."""
    broken = RaisingReporter(raises_in=raises_in)
    healthy = MemoryReporter()
    with (
        caplog.at_level(logging.ERROR, logger="stageline.progress"),
        reporting_to(broken, healthy, interval=0),
    ):
        async with ProgressReport("Sturdy", "test.sturdy") as report:
            report.increment()
    assert report.state is ProgressState.COMPLETED
    assert [e.kind for e in healthy.events] == ["started", "updated", "finished"]
    expected = ["started"] if raises_in == "started" else ["started", "updated", "finished"]
    assert broken.calls == expected
    assert len([r for r in caplog.records if r.name == "stageline.progress"]) == 1


async def test_a_dropped_reporter_stays_dropped_for_the_block_that_installed_it() -> None:
    """Once dropped, a reporter gets nothing from any later report of that block, even in an
    inner block that names it again."""
    broken = RaisingReporter(raises_in="started")
    with reporting_to(broken):
        async with ProgressReport("First", "test.first"):
            pass
        with reporting_to(broken):
            async with ProgressReport("Second", "test.second"):
                pass
    assert broken.calls == ["started"]


def test_a_reporter_interrupting_the_program_is_not_swallowed() -> None:
    """Only Exception is caught from reporters: KeyboardInterrupt goes through."""

    class Interrupting(MemoryReporter):
        def started(self, report: ProgressSnapshot) -> None:
            raise KeyboardInterrupt

    with (
        pytest.raises(KeyboardInterrupt),
        reporting_to(Interrupting()),
        ProgressReport("Stopped", "test.stopped"),
    ):
        pass


def test_bad_arguments_are_refused_naming_them() -> None:
    """A non-reporter, a negative or NaN interval, and a non-callable clock are refused."""
    with pytest.raises(TypeError, match=r"reporter 2 \(42\) is not a ProgressReporter"):
        reporting_to(MemoryReporter(), 42)  # type: ignore[arg-type]
    for interval in (-1, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match="interval must be a number >= 0"):
            reporting_to(interval=interval)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be a callable"):
        reporting_to(clock=1.0)  # type: ignore[arg-type]


def test_a_block_object_is_entered_once() -> None:
    """Entering the same reporting_to() result twice at once is refused."""
    block = reporting_to(MemoryReporter())
    with block, pytest.raises(RuntimeError, match="already entered"), block:
        pass
