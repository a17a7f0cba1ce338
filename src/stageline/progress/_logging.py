"""``LoggingReporter``: reports as log lines."""

from __future__ import annotations

import logging
from typing import Final

from ._format import LineThrottle, check_line_interval, finished_line, started_line, updated_line
from ._snapshot import ProgressSnapshot, ProgressState

__all__ = ["DEFAULT_LOG_INTERVAL", "LoggingReporter"]

#: Seconds between two progress lines of one report.
DEFAULT_LOG_INTERVAL: Final = 10.0


class LoggingReporter:
    """Writes a line when a report starts, a progress line now and then, and one at the end.

    The lines go to the logger ``"stageline.progress"`` (or ``logger``) and look like::

        Downloading Artifacts [sync.downloading.artifacts] started: 0/10 (0%)
        Downloading Artifacts [sync.downloading.artifacts]: 4/10 (40%)
        Downloading Artifacts [sync.downloading.artifacts] completed: 10/10 (100%) in 3.2 s

    The end line of a report that failed is logged at WARNING (or ``level`` if higher),
    everything else at ``level``. Each record
    carries the snapshot as ``record.progress``, for handlers that want the numbers
    rather than the text (a JSON formatter, say).

    Args:
        logger: where the lines go; ``logging.getLogger("stageline.progress")`` by default.
        level: the level of the lines (INFO by default).
        interval: seconds (by the reports' clock) between two progress lines of one report;
            ``math.inf`` for only the first and last line.

    Raises:
        ValueError: when ``interval`` is not a number >= 0.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        level: int = logging.INFO,
        interval: float = DEFAULT_LOG_INTERVAL,
    ) -> None:
        check_line_interval("LoggingReporter", interval)
        self.logger = logger if logger is not None else logging.getLogger("stageline.progress")
        self.level = level
        self.interval = interval
        self._throttle = LineThrottle(interval)

    def _log(self, level: int, line: str, report: ProgressSnapshot) -> None:
        self.logger.log(level, "%s", line, extra={"progress": report})

    def started(self, report: ProgressSnapshot) -> None:
        """Log the start line."""
        self._throttle.start(report)
        self._log(self.level, started_line(report), report)

    def updated(self, report: ProgressSnapshot) -> None:
        """Log a progress line if the last one is ``interval`` old."""
        if self._throttle.is_due(report):
            self._log(self.level, updated_line(report), report)

    def finished(self, report: ProgressSnapshot) -> None:
        """Log the end line: WARNING when the report failed."""
        self._throttle.end(report)
        failed = report.state is ProgressState.FAILED
        level = max(self.level, logging.WARNING) if failed else self.level
        self._log(level, finished_line(report), report)

    def __repr__(self) -> str:
        return f"LoggingReporter(logger={self.logger.name!r}, interval={self.interval!r})"
