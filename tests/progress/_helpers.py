"""A fake clock and small reporters for the progress tests."""

from __future__ import annotations

from stageline.progress import MemoryReporter, ProgressSnapshot


class FakeClock:
    """A clock that moves only when told; install it with ``reporting_to(clock=...)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


class RaisingReporter:
    """Raises in one of its methods; counts every call it receives."""

    def __init__(self, raises_in: str) -> None:
        self.raises_in = raises_in
        self.calls: list[str] = []

    def _call(self, kind: str) -> None:
        self.calls.append(kind)
        if kind == self.raises_in:
            raise RuntimeError(f"reporter broke in {kind}")

    def started(self, report: ProgressSnapshot) -> None:
        self._call("started")

    def updated(self, report: ProgressSnapshot) -> None:
        self._call("updated")

    def finished(self, report: ProgressSnapshot) -> None:
        self._call("finished")


def timeline(reporter: MemoryReporter) -> list[tuple[str, int, int | None]]:
    """(kind, done, total) of every event the reporter received, for compact assertions."""
    return [(event.kind, event.report.done, event.report.total) for event in reporter.events]
