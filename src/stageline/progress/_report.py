"""``ProgressReport``: counts units of work and tells the ambient reporters, throttled."""

from __future__ import annotations

import itertools
import math
from types import TracebackType
from typing import Final, Self

from .._exceptions import InvalidValueError, UsageError
from ._reporting import _Reporting, current_reporting
from ._snapshot import ProgressSnapshot, ProgressState

__all__ = ["ProgressReport"]

_report_ids: Final = itertools.count(1)

_RUNNING: Final = ProgressState.RUNNING
_WAITING: Final = ProgressState.WAITING


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueError(f"ProgressReport: {name} must be a non-empty str, got {value!r}")
    return value


def _check_count(where: str, name: str, value: object, *, none_allowed: bool = False) -> None:
    if value is None and none_allowed:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kind = "an int >= 0 or None" if none_allowed else "an int >= 0"
        raise InvalidValueError(f"ProgressReport{where}: {name} must be {kind}, got {value!r}")


def _ending_state(exc: BaseException | None) -> ProgressState:
    """How a block that ended with ``exc`` leaves its report.

    Exceptions fail it. What is not an ``Exception`` (asyncio's ``CancelledError``, Trio's
    ``Cancelled``, ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``) stopped the
    work from outside, so it is canceled; so is a group holding only such exceptions.
    """
    if exc is None:
        return ProgressState.COMPLETED
    if isinstance(exc, BaseExceptionGroup):
        failures, _ = exc.split(Exception)
        return ProgressState.CANCELED if failures is None else ProgressState.FAILED
    return ProgressState.FAILED if isinstance(exc, Exception) else ProgressState.CANCELED


class ProgressReport:
    """Counts units of work done and tells the ambient reporters about it.

    Use it as a context manager around the work; ``async with`` and ``with`` behave
    the same::

        async with ProgressReport(
            message="Downloading Artifacts", code=DOWNLOADING_ARTIFACTS_CODE, total=len(units)
        ) as report:
            for unit in units:
                await download(unit)
                report.increment()

    Entering starts the report: it picks up the reporters that are ambient there (see
    :func:`reporting_to`) and tells them ``started``. Leaving finishes it: ``COMPLETED``
    when the block ends normally, ``CANCELED`` when it is cancelled (or interrupted),
    ``FAILED`` when it raises; reporters are told ``finished``. The block's exception is
    never swallowed.

    :meth:`increment` and :meth:`increase_by` are synchronous and cheap (a fifth of a
    microsecond or so; see ``docs/benchmarks.md``), so call them once per unit. Reporters
    hear ``updated`` at most once per update interval (0.1 s unless
    :func:`reporting_to` says otherwise), when ``done`` or ``total`` changed; the
    ``finished`` snapshot always has the final counts. Between two updates a reporter
    may lag by what the last interval counted.

    Without a ``with`` block, :meth:`start` and :meth:`finish` do the same by hand, e.g.
    for a report that outlives one function. There is no ``save()``: nothing is
    persisted, and the reporters are told by the report itself; :meth:`flush` tells them
    the current counts now, bypassing the throttle.

    A report is meant to be updated from one thread at a time (the event loop's, or one
    worker thread's); reporters get immutable snapshots and may use them anywhere.

    Args:
        message: what is being done, for people (``"Downloading Artifacts"``).
        code: what is being done, for programs (``"sync.downloading.artifacts"``).
        total: how many units there are, or None until known (set :attr:`total` later).
        done: how many units are already done.

    Raises:
        ValueError: when ``message`` or ``code`` is not a non-empty str, ``total`` is not
            None or an int >= 0, or ``done`` is not an int >= 0.
    """

    __slots__ = (
        "_clock",
        "_code",
        "_done",
        "_due",
        "_finished_at",
        "_message",
        "_published",
        "_report_id",
        "_reporting",
        "_started_at",
        "_state",
        "_total",
    )

    def __init__(self, message: str, code: str, total: int | None = None, done: int = 0) -> None:
        self._message = _check_text("message", message)
        self._code = _check_text("code", code)
        _check_count("", "total", total, none_allowed=True)
        _check_count("", "done", done)
        self._total = total
        self._done = done
        self._report_id = next(_report_ids)
        self._state = _WAITING
        self._reporting = current_reporting()  # replaced by the one ambient at start
        self._clock = self._reporting.clock
        # The hot path only compares the clock with _due: +inf while nobody listens (or
        # the report has not started), -inf once finished so that a late update is
        # caught, else the earliest moment of the next `updated`.
        self._due = math.inf
        self._published: tuple[int, int | None] = (done, total)
        self._started_at = 0.0
        self._finished_at: float | None = None

    # -- what the report is --------------------------------------------------------

    @property
    def message(self) -> str:
        """What is being done, for people."""
        return self._message

    @property
    def code(self) -> str:
        """What is being done, for programs."""
        return self._code

    @property
    def report_id(self) -> int:
        """A number unique to this report in the process."""
        return self._report_id

    @property
    def state(self) -> ProgressState:
        """``WAITING``, ``RUNNING``, then ``COMPLETED``, ``FAILED`` or ``CANCELED``."""
        return self._state

    @property
    def done(self) -> int:
        """How many units are done. Settable (an int >= 0), e.g. to a count read back."""
        return self._done

    @done.setter
    def done(self, value: int) -> None:
        _check_count(".done", "value", value)
        self._done = value
        if self._clock() >= self._due:
            self._due_now()

    @property
    def total(self) -> int | None:
        """How many units there are, or None while unknown. Settable (None or an int >= 0)."""
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        _check_count(".total", "value", value, none_allowed=True)
        self._total = value
        if self._clock() >= self._due:
            self._due_now()

    # -- the hot path ----------------------------------------------------------------

    def increment(self) -> None:
        """Count one more unit done.

        Raises:
            RuntimeError: when the report has finished.
        """
        self._done += 1
        if self._clock() >= self._due:
            self._due_now()

    def increase_by(self, n: int) -> None:
        """Count ``n`` more units done.

        Raises:
            ValueError: when ``n`` is not an int >= 0.
            RuntimeError: when the report has finished.
        """
        if n.__class__ is not int or n < 0:  # the exact check first: it is the common case
            _check_count(".increase_by", "n", n)
        self._done += n
        if self._clock() >= self._due:
            self._due_now()

    def _due_now(self) -> None:
        if self._state is not _RUNNING:
            done, total = self._published
            self._done, self._total = done, total  # the final snapshot stays the truth
            raise UsageError(
                f"the progress report {self._message!r} [{self._code}] has finished "
                f"({self._state}); it cannot be updated any more. Update a report only "
                "inside its block, and wait for the tasks that update it before it ends"
            )
        self._publish(self._clock())

    def _publish(self, now: float) -> None:
        self._due = now + self._reporting.interval
        counts = (self._done, self._total)
        if counts != self._published:
            self._published = counts
            self._reporting.notify("updated", self._snapshot(now))

    # -- life ------------------------------------------------------------------------

    def snapshot(self) -> ProgressSnapshot:
        """The report as it is now, as reporters receive it.

        Raises:
            RuntimeError: when the report has not started.
        """
        if self._state is _WAITING:
            raise UsageError(
                f"the progress report {self._message!r} [{self._code}] has not started; "
                "enter its block (or call start()) first"
            )
        return self._snapshot(self._clock())

    def _snapshot(self, now: float) -> ProgressSnapshot:
        return ProgressSnapshot(
            report_id=self._report_id,
            message=self._message,
            code=self._code,
            total=self._total,
            done=self._done,
            state=self._state,
            started_at=self._started_at,
            finished_at=self._finished_at,
            taken_at=now,
        )

    def start(self) -> Self:
        """Start the report: pick up the ambient reporters and tell them ``started``.

        ``with``/``async with`` call it; call it yourself only without a block, and then
        call :meth:`finish` too (a report that never finishes stays "running" in every
        reporter).

        Returns:
            The report itself.

        Raises:
            RuntimeError: when the report was already started.
        """
        if self._state is not _WAITING:
            raise UsageError(
                f"the progress report {self._message!r} [{self._code}] was already started "
                f"(it is {self._state}); make a new ProgressReport for new work"
            )
        reporting: _Reporting = current_reporting()
        self._reporting = reporting
        self._clock = reporting.clock
        now = self._clock()
        self._started_at = now
        self._state = _RUNNING
        self._published = (self._done, self._total)
        if reporting.installed:
            self._due = now + reporting.interval
            reporting.notify("started", self._snapshot(now))
        return self

    def flush(self) -> None:
        """Tell the reporters the current counts now, if they changed, whatever the throttle.

        Does nothing unless the report is running.
        """
        if self._state is _RUNNING and self._reporting.installed:
            self._publish(self._clock())

    def finish(self, state: ProgressState | str = ProgressState.COMPLETED) -> None:
        """Finish the report in ``state`` and tell the reporters ``finished``.

        Leaving the report's block calls it with the state the block's ending implies,
        unless the block finished the report itself.

        Args:
            state: ``COMPLETED`` (the default), ``FAILED`` or ``CANCELED``, or its value.

        Raises:
            ValueError: when ``state`` is not one of the three final states.
            RuntimeError: when the report has not started or has already finished.
        """
        try:
            final = ProgressState(state)
        except ValueError:
            final = None
        if final is None or not final.is_final:
            raise InvalidValueError(
                "ProgressReport.finish: state must be 'completed', 'failed' or 'canceled', "
                f"got {state!r}"
            )
        if self._state is not _RUNNING:
            raise UsageError(
                f"the progress report {self._message!r} [{self._code}] cannot finish: it is "
                f"{self._state}, not running"
            )
        now = self._clock()
        self._state = final
        self._finished_at = now
        self._due = -math.inf
        self._published = (self._done, self._total)
        self._reporting.notify("finished", self._snapshot(now))

    def _end_block(self, exc: BaseException | None) -> None:
        if not self._state.is_final:  # the block may have finished the report itself
            self.finish(_ending_state(exc))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end_block(exc)

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end_block(exc)

    def __repr__(self) -> str:
        total = "?" if self._total is None else self._total
        return (
            f"<ProgressReport {self._message!r} [{self._code}] {self._state} {self._done}/{total}>"
        )
