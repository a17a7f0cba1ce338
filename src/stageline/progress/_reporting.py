"""Where reports go: the reporter protocol and the ambient set of reporters.

The reporters of a block of code are *ambient*, like the running pipeline: a context
variable that :func:`reporting_to` sets for the ``with`` block and that every task started
inside the block inherits (asyncio and Trio copy the context of the code that starts a
task, and ``anyio.to_thread.run_sync`` runs its function in a copy too). A report picks up
the reporters, throttle interval and clock that are ambient where it *starts*, and keeps
them until it finishes. Reporting is ambient rather than passed in because every layer
may open reports (a plugin's first stage, the default stages, a downloader) and only the
program at the top (the CLI, a test) knows where they should go.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Final, Literal, Protocol, runtime_checkable

from .._exceptions import InvalidTypeError, InvalidValueError, UsageError
from ._snapshot import ProgressSnapshot

__all__ = ["DEFAULT_UPDATE_INTERVAL", "ProgressReporter", "reporting_to"]

#: Seconds between two ``updated`` notifications of one report, unless a
#: :func:`reporting_to` block says otherwise.
DEFAULT_UPDATE_INTERVAL: Final = 0.1

logger: Final = logging.getLogger("stageline.progress")

#: The three notifications, named as the reporter methods they call.
EventKind = Literal["started", "updated", "finished"]


@runtime_checkable
class ProgressReporter(Protocol):
    """Receives the reports of the code it is installed for (see :func:`reporting_to`).

    Each report gives its reporters one ``started``, any number of ``updated`` (at most
    one per update interval, 0.1 s by default) and one ``finished``, always in that
    order, each with a fresh immutable :class:`ProgressSnapshot`. Reports running at the
    same time interleave their calls.

    The methods are called synchronously from the code that updates the report, usually
    the event loop's thread, so they must be quick and must not block: hand slow work
    (a network call, a database write) to a thread or queue with the snapshot. They may
    be called from several threads when reports are updated from worker threads.

    A method that raises ``Exception`` does not break the code being reported on: the
    error is logged once (logger ``"stageline.progress"``, level ERROR, with the
    traceback) and the reporter is dropped: it receives nothing more from any report of
    the ``reporting_to`` block that installed it.
    """

    def started(self, report: ProgressSnapshot) -> None:
        """A report started (its state is ``RUNNING``)."""

    def updated(self, report: ProgressSnapshot) -> None:
        """A running report's ``done`` or ``total`` changed."""

    def finished(self, report: ProgressSnapshot) -> None:
        """A report finished: its state is ``COMPLETED``, ``FAILED`` or ``CANCELED``."""


class _Installed:
    """A reporter as one ``reporting_to`` installed it; dropped once it has raised."""

    __slots__ = ("dropped", "reporter")

    def __init__(self, reporter: ProgressReporter) -> None:
        self.reporter = reporter
        self.dropped = False


class _Reporting:
    """What is ambient for reports: the reporters, the update interval and the clock."""

    __slots__ = ("clock", "installed", "interval")

    def __init__(
        self, installed: tuple[_Installed, ...], interval: float, clock: Callable[[], float]
    ) -> None:
        self.installed = installed
        self.interval = interval
        self.clock = clock

    def notify(self, event: EventKind, snapshot: ProgressSnapshot) -> None:
        """Call ``event`` on every reporter still installed; drop those that raise."""
        for installed in self.installed:
            if installed.dropped:
                continue
            try:
                getattr(installed.reporter, event)(snapshot)
            except Exception:
                installed.dropped = True
                logger.exception(
                    "progress reporter %r raised in %s() for the report %r [%s] and is "
                    "dropped: it receives no more reports in the reporting_to() block that "
                    "installed it; the sync goes on",
                    installed.reporter,
                    event,
                    snapshot.message,
                    snapshot.code,
                )


#: Outside every ``reporting_to`` block: nobody listens.
_TOP: Final = _Reporting((), DEFAULT_UPDATE_INTERVAL, time.monotonic)

_current: contextvars.ContextVar[_Reporting | None] = contextvars.ContextVar(
    "stageline_progress_reporting", default=None
)


def current_reporting() -> _Reporting:
    """The reporting a report starting here would use."""
    reporting = _current.get()
    return _TOP if reporting is None else reporting


class _ReportingBlock(AbstractContextManager[None]):
    """The context manager :func:`reporting_to` returns."""

    def __init__(
        self,
        reporters: tuple[ProgressReporter, ...],
        interval: float | None,
        clock: Callable[[], float] | None,
    ) -> None:
        self._reporters = reporters
        self._interval = interval
        self._clock = clock
        self._token: contextvars.Token[_Reporting | None] | None = None

    def __enter__(self) -> None:
        if self._token is not None:
            raise UsageError(
                "this reporting_to() block is already entered; call reporting_to() again "
                "for another block"
            )
        outer = current_reporting()
        installed = list(outer.installed)
        known = {id(each.reporter) for each in installed}
        for reporter in self._reporters:
            if id(reporter) not in known:  # installed again inside: still called once
                known.add(id(reporter))
                installed.append(_Installed(reporter))
        self._token = _current.set(
            _Reporting(
                tuple(installed),
                outer.interval if self._interval is None else self._interval,
                outer.clock if self._clock is None else self._clock,
            )
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._token is not None
        _current.reset(self._token)
        self._token = None


def reporting_to(
    *reporters: ProgressReporter,
    interval: float | None = None,
    clock: Callable[[], float] | None = None,
) -> AbstractContextManager[None]:
    """Send the reports started inside a ``with`` block to ``reporters``.

    ``with reporting_to(LoggingReporter(), rich): ...`` fans every report out to both.
    Blocks nest and add up: inside ``with reporting_to(b)`` within
    ``with reporting_to(a)``, reports go to ``a`` and ``b`` (a reporter installed twice
    is called once). Tasks and worker threads started inside the block inherit it; see
    the module docstring for why reporting is ambient. Works under asyncio, Trio and in
    synchronous code alike.

    Args:
        *reporters: where reports go; each must have ``started``, ``updated`` and
            ``finished`` methods (:class:`ProgressReporter`). None at all is allowed, to
            change only the interval or clock.
        interval: seconds between two ``updated`` notifications of one report (0: every
            change); None keeps the enclosing block's (0.1 s at the top).
        clock: the monotonic clock, in seconds, that throttles updates and stamps the
            snapshots; tests pass a fake one. None keeps the enclosing block's
            (:func:`time.monotonic` at the top).

    Returns:
        A context manager for one ``with`` block.

    Raises:
        TypeError: when a reporter lacks one of the three methods, or ``clock`` is not
            callable.
        ValueError: when ``interval`` is not a number >= 0.
    """
    for position, reporter in enumerate(reporters, start=1):
        if not isinstance(reporter, ProgressReporter):
            raise InvalidTypeError(
                f"reporting_to: reporter {position} ({reporter!r}) is not a ProgressReporter: "
                "it needs started(), updated() and finished() methods"
            )
    if interval is not None and (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or math.isnan(interval)
        or interval < 0
    ):
        raise InvalidValueError(
            f"reporting_to: interval must be a number >= 0 or None, got {interval!r}"
        )
    if clock is not None and not callable(clock):
        raise InvalidTypeError(
            f"reporting_to: clock must be a callable returning seconds, got {clock!r}"
        )
    return _ReportingBlock(reporters, interval, clock)
