"""What a reporter receives: an immutable snapshot of a report, and the report's states."""

from __future__ import annotations

import enum

import attrs

__all__ = ["ProgressSnapshot", "ProgressState"]


class ProgressState(enum.StrEnum):
    """Where a report is in its life.

    A report is ``WAITING`` until it starts, ``RUNNING`` until it finishes, and then
    ``COMPLETED``, ``FAILED`` or ``CANCELED`` (Pulp's spelling) depending on how its
    ``async with`` block ended. The values are the lower-case names, so
    ``ProgressState("failed") is ProgressState.FAILED``.
    """

    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        """True for the three states a report ends in."""
        return self in _FINAL_STATES


_FINAL_STATES = frozenset({ProgressState.COMPLETED, ProgressState.FAILED, ProgressState.CANCELED})


@attrs.frozen(slots=True)
class ProgressSnapshot:
    """A report as it was at one moment. Immutable, so a reporter may keep it, read it in
    another thread or hand it on later without racing the report's own updates.

    Times are readings of the clock of the reporting block the report started in
    (:func:`time.monotonic` unless a test installed a fake one): good for durations and
    rates, not for calendar dates.

    Attributes:
        report_id: a number unique to the report in this process; several reports may share
            a ``code`` (two syncs at once, a report opened in a loop), never an id.
        message: what is being done, for people (``"Downloading Artifacts"``).
        code: what is being done, for programs (``"sync.downloading.artifacts"``).
        total: how many units there are to do, or None while unknown.
        done: how many units are done.
        state: the report's state when the snapshot was taken.
        started_at: when the report started.
        finished_at: when it finished, or None while it runs.
        taken_at: when this snapshot was taken.
    """

    report_id: int
    message: str
    code: str
    total: int | None
    done: int
    state: ProgressState
    started_at: float
    finished_at: float | None
    taken_at: float

    @property
    def elapsed(self) -> float:
        """Seconds from the start to the end, or to the moment of the snapshot while running."""
        end = self.finished_at if self.finished_at is not None else self.taken_at
        return end - self.started_at
