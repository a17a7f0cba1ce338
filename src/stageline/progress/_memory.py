"""``MemoryReporter``: keeps every notification, for tests."""

from __future__ import annotations

import threading

import attrs

from .._exceptions import InvalidValueError
from ._reporting import EventKind
from ._snapshot import ProgressSnapshot

__all__ = ["MemoryReporter", "ProgressEvent"]


@attrs.frozen(slots=True)
class ProgressEvent:
    """One notification a reporter received.

    Attributes:
        kind: ``"started"``, ``"updated"`` or ``"finished"``: the method called.
        report: the snapshot it was called with.
    """

    kind: EventKind
    report: ProgressSnapshot


class MemoryReporter:
    """Keeps every notification in the order received; read them back in tests.

    ``events`` holds them all; :meth:`final` gives the last snapshot of the report with a
    code, which is its final state once it finished::

        reporter = MemoryReporter()
        with reporting_to(reporter):
            await sync()
        assert reporter.final(DOWNLOADING_ARTIFACTS_CODE).done == 3

    It keeps everything, so its memory grows with the number of updates (at most about
    ten a second per report with the default interval): meant for tests, not for
    production. Safe to use from several threads.
    """

    def __init__(self) -> None:
        self._events: list[ProgressEvent] = []
        self._lock = threading.Lock()

    def started(self, report: ProgressSnapshot) -> None:
        """Keep a ``started`` event."""
        self._add("started", report)

    def updated(self, report: ProgressSnapshot) -> None:
        """Keep an ``updated`` event."""
        self._add("updated", report)

    def finished(self, report: ProgressSnapshot) -> None:
        """Keep a ``finished`` event."""
        self._add("finished", report)

    def _add(self, kind: EventKind, report: ProgressSnapshot) -> None:
        with self._lock:
            self._events.append(ProgressEvent(kind, report))

    @property
    def events(self) -> list[ProgressEvent]:
        """Every notification so far, oldest first (a copy)."""
        with self._lock:
            return list(self._events)

    def snapshots(self, code: str | None = None) -> list[ProgressSnapshot]:
        """Every snapshot received, oldest first; only those of reports with ``code`` if given."""
        return [event.report for event in self.events if code is None or event.report.code == code]

    @property
    def codes(self) -> list[str]:
        """The code of each report, in the order the reports started."""
        return [event.report.code for event in self.events if event.kind == "started"]

    def finals(self, code: str | None = None) -> list[ProgressSnapshot]:
        """The last snapshot of each report (with ``code`` if given), in the order they started.

        A report that finished is in its final state here (its ``state`` says how it
        ended); one still running shows its latest update.
        """
        latest: dict[int, ProgressSnapshot] = {}
        for report in self.snapshots(code):
            # Replacing a key keeps its place, and a report's first snapshot is its start.
            latest[report.report_id] = report
        return list(latest.values())

    def final(self, code: str) -> ProgressSnapshot:
        """The last snapshot of the one report with ``code``.

        Raises:
            LookupError: when no report had that code.
            ValueError: when several reports had it; use :meth:`finals` then.
        """
        found = self.finals(code)
        if not found:
            seen = sorted(set(self.codes))
            raise LookupError(f"no progress report with code {code!r} was received; seen: {seen}")
        if len(found) > 1:
            raise InvalidValueError(
                f"{len(found)} progress reports had code {code!r}; use finals({code!r}) to "
                "read each of them"
            )
        return found[0]
