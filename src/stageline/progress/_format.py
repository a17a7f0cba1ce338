"""The plain-text lines that the logging reporter and a non-terminal rich reporter write."""

from __future__ import annotations

import math
import threading

from .._exceptions import InvalidValueError
from ._snapshot import ProgressSnapshot

__all__ = [
    "LineThrottle",
    "check_line_interval",
    "counts",
    "finished_line",
    "started_line",
    "updated_line",
]


def check_line_interval(owner: str, interval: object) -> None:
    """Refuse an interval that is not a number >= 0.

    Raises:
        ValueError: naming ``owner`` and the value.
    """
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or math.isnan(interval)
        or interval < 0
    ):
        raise InvalidValueError(f"{owner}: interval must be a number >= 0, got {interval!r}")


class LineThrottle:
    """Decides when a report deserves another progress line: ``interval`` seconds (by the
    reports' own clock, so a fake clock drives it in tests) after its previous line."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[int, float] = {}  # by report id, while the report runs
        self._lock = threading.Lock()

    def start(self, report: ProgressSnapshot) -> None:
        """The report's first line was written now."""
        with self._lock:
            self._last[report.report_id] = report.taken_at

    def is_due(self, report: ProgressSnapshot) -> bool:
        """True (and the line counted as written) when a progress line is due."""
        with self._lock:
            last = self._last.get(report.report_id)
            if last is not None and report.taken_at - last < self.interval:
                return False
            self._last[report.report_id] = report.taken_at
            return True

    def end(self, report: ProgressSnapshot) -> None:
        """The report finished: forget it."""
        with self._lock:
            self._last.pop(report.report_id, None)


def counts(report: ProgressSnapshot) -> str:
    """``"5/10 (50%)"`` when the total is known, else ``"5"``."""
    if report.total is None:
        return str(report.done)
    if report.total == 0:
        return f"{report.done}/0"
    return f"{report.done}/{report.total} ({report.done * 100 // report.total}%)"


def _name(report: ProgressSnapshot) -> str:
    return f"{report.message} [{report.code}]"


def started_line(report: ProgressSnapshot) -> str:
    """``"Downloading Artifacts [sync.downloading.artifacts] started: 0/10 (0%)"``."""
    return f"{_name(report)} started: {counts(report)}"


def updated_line(report: ProgressSnapshot) -> str:
    """``"Downloading Artifacts [sync.downloading.artifacts]: 5/10 (50%)"``."""
    return f"{_name(report)}: {counts(report)}"


def finished_line(report: ProgressSnapshot) -> str:
    """``"Downloading Artifacts [sync.downloading.artifacts] completed: 10/10 (100%) in 1.5 s"``."""
    return f"{_name(report)} {report.state}: {counts(report)} in {report.elapsed:.1f} s"
