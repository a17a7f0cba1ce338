"""The reporters stageline ships: in memory, to logging, and rich bars or lines."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from stageline.progress import (
    DOWNLOADING_ARTIFACTS_CODE,
    DOWNLOADING_ARTIFACTS_MESSAGE,
    LoggingReporter,
    MemoryReporter,
    ProgressEvent,
    ProgressReport,
    ProgressState,
    RichReporter,
    reporting_to,
)

from ._helpers import FakeClock

pytestmark = pytest.mark.anyio


# -- MemoryReporter ------------------------------------------------------------------------


async def test_memory_reporter_keeps_every_event_in_order() -> None:
    """events holds each notification with its snapshot; codes lists reports by start."""
    clock = FakeClock()
    reporter = MemoryReporter()
    with reporting_to(reporter, clock=clock, interval=0):
        async with ProgressReport("One", "test.one", total=2) as one:
            one.increment()
            async with ProgressReport("Two", "test.two") as two:
                two.increase_by(5)
            one.increment()
    assert [(e.kind, e.report.code, e.report.done) for e in reporter.events] == [
        ("started", "test.one", 0),
        ("updated", "test.one", 1),
        ("started", "test.two", 0),
        ("updated", "test.two", 5),
        ("finished", "test.two", 5),
        ("updated", "test.one", 2),
        ("finished", "test.one", 2),
    ]
    assert isinstance(reporter.events[0], ProgressEvent)
    assert reporter.codes == ["test.one", "test.two"]
    assert [s.done for s in reporter.snapshots("test.one")] == [0, 1, 2, 2]
    assert len(reporter.snapshots()) == 7


async def test_memory_reporter_reads_the_final_state_by_code() -> None:
    """final(code) is the last snapshot of the report; finals() one per report in start order."""
    reporter = MemoryReporter()
    with reporting_to(reporter):
        for done in (1, 2):
            async with ProgressReport("Again", "test.again") as report:
                report.increase_by(done)
        async with ProgressReport("Once", "test.once", total=3) as report:
            report.increase_by(3)
    once = reporter.final("test.once")
    assert (once.done, once.total, once.state) == (3, 3, ProgressState.COMPLETED)
    assert [s.done for s in reporter.finals("test.again")] == [1, 2]
    assert [s.code for s in reporter.finals()] == ["test.again", "test.again", "test.once"]
    with pytest.raises(ValueError, match=r"2 progress reports had code 'test.again'"):
        reporter.final("test.again")
    with pytest.raises(LookupError, match=r"no progress report with code 'test.none'.*test.once"):
        reporter.final("test.none")


async def test_memory_reporter_shows_a_running_report_as_running() -> None:
    """Read while the report runs, final() is its latest snapshot, still RUNNING."""
    reporter = MemoryReporter()
    with reporting_to(reporter, interval=0):
        async with ProgressReport("Running", "test.running") as report:
            report.increment()
            latest = reporter.final("test.running")
    assert (latest.state, latest.done) == (ProgressState.RUNNING, 1)


# -- LoggingReporter -----------------------------------------------------------------------


async def test_logging_reporter_logs_start_throttled_progress_and_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One line at the start, a progress line at most every interval, one at the end."""
    clock = FakeClock(start=0.0)
    with (
        caplog.at_level(logging.INFO, logger="stageline.progress"),
        reporting_to(LoggingReporter(interval=1.0), clock=clock),
    ):
        async with ProgressReport(
            DOWNLOADING_ARTIFACTS_MESSAGE, DOWNLOADING_ARTIFACTS_CODE, total=8
        ) as report:
            for _ in range(8):
                clock.advance(0.25)  # every increment is an update; every fourth a line
                report.increment()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "Downloading Artifacts [sync.downloading.artifacts] started: 0/8 (0%)"),
        (logging.INFO, "Downloading Artifacts [sync.downloading.artifacts]: 4/8 (50%)"),
        (logging.INFO, "Downloading Artifacts [sync.downloading.artifacts]: 8/8 (100%)"),
        (
            logging.INFO,
            "Downloading Artifacts [sync.downloading.artifacts] completed: 8/8 (100%) in 2.0 s",
        ),
    ]
    assert all(r.name == "stageline.progress" for r in caplog.records)
    assert caplog.records[-1].progress.done == 8  # type: ignore[attr-defined]


async def test_logging_reporter_warns_of_a_failure_and_handles_unknown_totals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed report's last line is a WARNING; without a total only the count shows."""
    logger = logging.getLogger("test.progress.custom")
    reporter = LoggingReporter(logger, level=logging.DEBUG, interval=0)

    async def fail() -> None:
        async with ProgressReport("Parsing", "test.parse") as report:
            report.increase_by(3)
            raise ValueError("bad metadata")

    with (
        caplog.at_level(logging.DEBUG, logger="test.progress.custom"),
        reporting_to(reporter, interval=0),
        pytest.raises(ValueError, match="bad metadata"),
    ):
        await fail()
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("test.progress.custom", logging.DEBUG, "Parsing [test.parse] started: 0"),
        ("test.progress.custom", logging.DEBUG, "Parsing [test.parse]: 3"),
        ("test.progress.custom", logging.WARNING, "Parsing [test.parse] failed: 3 in 0.0 s"),
    ]


def test_logging_reporter_refuses_a_bad_interval() -> None:
    """interval must be a number >= 0."""
    with pytest.raises(ValueError, match=r"LoggingReporter: interval must be a number >= 0"):
        LoggingReporter(interval=-1)


# -- RichReporter --------------------------------------------------------------------------


def terminal() -> Console:
    """A console that believes it is a terminal, writing into a string."""
    return Console(file=io.StringIO(), force_terminal=True, width=100, color_system="standard")


def plain() -> Console:
    """A console writing to a file, as when the output is piped."""
    return Console(file=io.StringIO(), width=100)


def output(console: Console) -> str:
    """What the console wrote."""
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


async def test_rich_reporter_writes_plain_lines_when_not_on_a_terminal() -> None:
    """Without a terminal: a line at the start, throttled progress lines, a line at the end,
    and no control codes."""
    console = plain()
    clock = FakeClock(start=0.0)
    with RichReporter(console, interval=1.0) as rich, reporting_to(rich, clock=clock):
        assert not rich.is_terminal
        async with ProgressReport("Associating Content", "associating.content", total=4) as pb:
            for _ in range(4):
                clock.advance(0.5)
                pb.increment()
    assert output(console).splitlines() == [
        "Associating Content [associating.content] started: 0/4 (0%)",
        "Associating Content [associating.content]: 2/4 (50%)",
        "Associating Content [associating.content]: 4/4 (100%)",
        "Associating Content [associating.content] completed: 4/4 (100%) in 2.0 s",
    ]


async def test_rich_reporter_draws_a_bar_per_report_on_a_terminal() -> None:
    """On a terminal each report gets a bar showing its message, counts and how it ended."""
    console = terminal()
    with RichReporter(console) as rich, reporting_to(rich):
        assert rich.is_terminal
        async with ProgressReport(
            DOWNLOADING_ARTIFACTS_MESSAGE, DOWNLOADING_ARTIFACTS_CODE, total=3
        ) as report:
            report.increase_by(3)

        async def fail() -> None:
            async with ProgressReport("[bold]Parsing[/bold]", "test.parse") as report:
                report.increase_by(2)
                raise OSError("gone")

        with pytest.raises(OSError, match="gone"):
            await fail()
    text = output(console)
    assert "\x1b[" in text  # drawn with control codes, as on a terminal
    final_frame = text.rsplit("\r", 1)[-1]
    assert "Downloading Artifacts" in final_frame
    assert "3/3" in final_frame
    assert "100%" in final_frame
    # The message is shown as given (no markup applied), with the failure next to it.
    assert "[bold]Parsing[/bold]" in final_frame
    assert "(failed)" in final_frame
    assert "2/?" in final_frame


async def test_rich_reporter_fills_the_bar_of_a_completed_report_of_unknown_size() -> None:
    """A completed report that never had a total ends as a full bar of what was done."""
    console = terminal()
    with RichReporter(console) as rich, reporting_to(rich):
        async with ProgressReport("Scanning", "test.scan") as report:
            report.increase_by(7)
    assert "7/7" in output(console).rsplit("\r", 1)[-1]


@pytest.mark.parametrize("make_console", [terminal, plain])
def test_rich_reporter_writes_nothing_without_reports(make_console: type[Console]) -> None:
    """Opened and closed with no report in between, it writes nothing at all."""
    console = make_console()
    with RichReporter(console) as rich, reporting_to(rich):
        pass
    rich.close()  # closing again is harmless
    assert output(console) == ""


async def test_a_closed_rich_reporter_is_dropped_without_breaking_the_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reports after close() get the reporter dropped (one error log); the work goes on."""
    console = plain()
    rich = RichReporter(console)
    rich.close()
    with caplog.at_level(logging.ERROR, logger="stageline.progress"), reporting_to(rich):
        async with ProgressReport("Late", "test.late") as report:
            report.increment()
    assert report.state is ProgressState.COMPLETED
    assert output(console) == ""
    assert len(caplog.records) == 1
    assert "<RichReporter lines closed> raised in started()" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None
    assert "is closed" in str(caplog.records[0].exc_info[1])


def test_rich_reporter_refuses_a_bad_interval() -> None:
    """interval must be a number >= 0."""
    with pytest.raises(ValueError, match=r"RichReporter: interval must be a number >= 0"):
        RichReporter(plain(), interval=float("nan"))
