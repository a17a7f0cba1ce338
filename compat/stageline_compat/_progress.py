"""``ProgressReport`` with the asyncio era's awaitable and saving calls."""

from __future__ import annotations

from stageline.progress import ProgressReport as NativeProgressReport

__all__ = ["ProgressReport"]


class ProgressReport(NativeProgressReport):
    """:class:`stageline.progress.ProgressReport` with ``aincrement()``, ``save()`` and kin.

    Use it as before, ``with`` or ``async with ProgressReport(message=..., code=...,
    total=...) as report:``. Nothing is stored in a database: reports go to the reporters
    installed with :func:`stageline.progress.reporting_to` (or given to
    ``DeclarativeVersion(reporters=...)``), so ``save()`` only tells them the current
    counts at once, and the ``a``-prefixed calls are the synchronous ones, awaitable.
    """

    __slots__ = ()

    async def aincrement(self) -> None:
        """:meth:`increment`, awaitable.

        Raises:
            RuntimeError: the report has finished.
        """
        self.increment()

    async def aincrease_by(self, n: int) -> None:
        """:meth:`increase_by`, awaitable.

        Raises:
            ValueError: ``n`` is not an int >= 0.
            RuntimeError: the report has finished.
        """
        self.increase_by(n)

    def save(self) -> None:
        """Tell the reporters the current counts now (there is nothing to store)."""
        self.flush()

    async def asave(self) -> None:
        """:meth:`save`, awaitable."""
        self.flush()
