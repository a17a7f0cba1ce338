"""``RichReporter``: a progress bar per report on a terminal, plain lines elsewhere."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from .._exceptions import UsageError
from ._format import LineThrottle, check_line_interval, finished_line, started_line, updated_line
from ._snapshot import ProgressSnapshot, ProgressState

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["DEFAULT_LINE_INTERVAL", "RichReporter"]

#: Seconds between two progress lines of one report when the console is not a terminal.
DEFAULT_LINE_INTERVAL: Final = 10.0


class RichReporter:
    """Shows each report as a rich progress bar, or as plain lines when not on a terminal.

    On a terminal, the bars appear at the first report (nothing is written before) and
    stay, one per report, until :meth:`close`; a report that failed or was canceled
    says so next to its message. While the bars are shown, rich keeps them below what
    the program prints (rich's ``redirect_stdout``/``redirect_stderr``). When the console
    is not a terminal (output piped to a file or a CI log), each report writes a line at
    its start, a progress line at most every ``interval`` seconds, and a line at its end,
    like :class:`LoggingReporter`.

    Use it as a context manager, or call :meth:`close`, so that the bars' last state is
    drawn and the terminal is left clean::

        with RichReporter() as bars, reporting_to(bars):
            DeclarativeVersion(...).create()

    rich is imported when a ``RichReporter`` is made, not when ``stageline.progress`` is.

    Args:
        console: where to draw; a new ``rich.console.Console()`` (standard output) by
            default.
        transient: remove the bars when closed instead of leaving their last state.
        interval: seconds (by the reports' clock) between two progress lines of one
            report when the console is not a terminal.

    Raises:
        ValueError: when ``interval`` is not a number >= 0.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        transient: bool = False,
        interval: float = DEFAULT_LINE_INTERVAL,
    ) -> None:
        from rich.console import Console

        check_line_interval("RichReporter", interval)
        self.console = console if console is not None else Console()
        self.transient = transient
        self._throttle = LineThrottle(interval)
        self._lock = threading.RLock()
        self._progress: Progress | None = None  # made at the first report, on a terminal
        self._tasks: dict[int, TaskID] = {}  # rich's task by report id
        self._closed = False

    @property
    def is_terminal(self) -> bool:
        """True when reports are drawn as bars, False when they are written as lines."""
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(
                "this RichReporter is closed; make a new one for reports started later"
            )

    def _bars(self) -> Progress:
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=self.transient,
            )
            self._progress.start()
        return self._progress

    def started(self, report: ProgressSnapshot) -> None:
        """Add a bar for the report (or write its first line).

        Raises:
            RuntimeError: when the reporter is closed.
        """
        from rich.markup import escape

        with self._lock:
            self._check_open()
            if not self.is_terminal:
                self._throttle.start(report)
                self._line(started_line(report))
                return
            self._tasks[report.report_id] = self._bars().add_task(
                escape(report.message), total=report.total, completed=report.done
            )

    def updated(self, report: ProgressSnapshot) -> None:
        """Move the report's bar (or write a line when one is due).

        Raises:
            RuntimeError: when the reporter is closed.
        """
        with self._lock:
            self._check_open()
            if not self.is_terminal:
                if self._throttle.is_due(report):
                    self._line(updated_line(report))
                return
            task = self._tasks.get(report.report_id)
            if task is not None and self._progress is not None:
                self._progress.update(task, total=report.total, completed=report.done)

    def finished(self, report: ProgressSnapshot) -> None:
        """Draw the report's bar in its final state (or write its last line).

        Raises:
            RuntimeError: when the reporter is closed.
        """
        from rich.markup import escape

        with self._lock:
            self._check_open()
            if not self.is_terminal:
                self._throttle.end(report)
                self._line(finished_line(report))
                return
            task = self._tasks.pop(report.report_id, None)
            if task is None or self._progress is None:
                return
            description = escape(report.message)
            total = report.total
            if report.state is ProgressState.COMPLETED:
                if total is None:  # a completed report of unknown size shows a full bar
                    total = report.done
            else:
                description += f" [bold red]({report.state})[/]"
            self._progress.update(task, total=total, completed=report.done, description=description)
            self._progress.stop_task(task)

    def _line(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def close(self) -> None:
        """Draw the bars' last state and stop drawing. Harmless to call again."""
        with self._lock:
            self._closed = True
            if self._progress is not None:
                self._progress.stop()

    def __enter__(self) -> Self:
        return self

    def __repr__(self) -> str:
        mode = "bars" if self.is_terminal else "lines"
        return f"<RichReporter {mode}{' closed' if self._closed else ''}>"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
