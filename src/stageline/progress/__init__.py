"""Progress reporting: count work in a :class:`ProgressReport`, show it with reporters.

A stage (or any code) wraps its work in ``async with ProgressReport(message, code,
total) as report:`` and calls ``report.increment()`` per unit done. Where the reports go
is decided at the top, for a block of code, with ``with reporting_to(reporter, ...):``:
a :class:`LoggingReporter`, a :class:`RichReporter` (terminal bars), a
:class:`MemoryReporter` (tests), or your own :class:`ProgressReporter`. Reporters
receive immutable :class:`ProgressSnapshot` objects, throttled to one update per report
every 0.1 s by default. See ``docs/progress.md``.

This package sits just above the engine: it imports nothing else of stageline, so every
layer may report progress.
"""

from ._codes import (
    ASSOCIATING_CONTENT_CODE,
    ASSOCIATING_CONTENT_MESSAGE,
    DOWNLOADING_ARTIFACTS_CODE,
    DOWNLOADING_ARTIFACTS_MESSAGE,
    DOWNLOADING_BYTES_CODE,
    DOWNLOADING_BYTES_MESSAGE,
    UNASSOCIATING_CONTENT_CODE,
    UNASSOCIATING_CONTENT_MESSAGE,
)
from ._logging import DEFAULT_LOG_INTERVAL, LoggingReporter
from ._memory import MemoryReporter, ProgressEvent
from ._report import ProgressReport
from ._reporting import DEFAULT_UPDATE_INTERVAL, ProgressReporter, reporting_to
from ._rich import DEFAULT_LINE_INTERVAL, RichReporter
from ._snapshot import ProgressSnapshot, ProgressState

__all__ = [
    "ASSOCIATING_CONTENT_CODE",
    "ASSOCIATING_CONTENT_MESSAGE",
    "DEFAULT_LINE_INTERVAL",
    "DEFAULT_LOG_INTERVAL",
    "DEFAULT_UPDATE_INTERVAL",
    "DOWNLOADING_ARTIFACTS_CODE",
    "DOWNLOADING_ARTIFACTS_MESSAGE",
    "DOWNLOADING_BYTES_CODE",
    "DOWNLOADING_BYTES_MESSAGE",
    "UNASSOCIATING_CONTENT_CODE",
    "UNASSOCIATING_CONTENT_MESSAGE",
    "LoggingReporter",
    "MemoryReporter",
    "ProgressEvent",
    "ProgressReport",
    "ProgressReporter",
    "ProgressSnapshot",
    "ProgressState",
    "RichReporter",
    "reporting_to",
]
