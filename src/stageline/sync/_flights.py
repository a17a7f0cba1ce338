"""Single flight: concurrent fetches of one deferred file share one download.

The first task to ask for a key runs the fetch (it "leads the flight"); tasks asking
while it runs wait for its outcome instead of fetching again:

- a result reaches every waiter. A streamed file's temporary copy is shared: it holds
  one reference per task that receives it, counted when the flight lands, so the copy
  outlives the last reader and no longer;
- an error reaches every waiter, as the same exception object;
- when the leader is cancelled (its client went away), the flight lands empty and a
  waiter leads a new one, so a waiter is never failed by another task's cancellation.

A task that arrives after the flight landed starts a new one; for a saved file, the
fetch first looks whether the file was saved meanwhile, so it downloads nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import attrs

from ..models import Artifact
from ._opened import TemporaryCopy

__all__ = ["Fetched", "Flights"]


@attrs.frozen(kw_only=True)
class Fetched:
    """Where the bytes of an opened file are.

    Attributes:
        artifact: the saved artifact (its file in the storage), or, with ``copy``, the
            unsaved artifact of a streamed copy.
        url: the url downloaded for it, or None when nothing was downloaded.
        copy: the shared temporary copy of a streamed file, else None.
    """

    artifact: Artifact
    url: str | None = None
    copy: TemporaryCopy | None = None


class _Flight:
    __slots__ = ("done", "error", "result", "waiters")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: Fetched | None = None
        self.error: Exception | None = None
        self.waiters = 0


class Flights:
    """The fetches running now, by key (a content artifact's primary key)."""

    def __init__(self) -> None:
        self._running: dict[int, _Flight] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def fetch(self, key: int, fetch: Callable[[], Awaitable[Fetched]]) -> Fetched:
        """``await fetch()``, or the outcome of the call running for ``key`` already.

        The caller owns one reference to a returned ``copy`` and must release it.

        Raises:
            Exception: what ``fetch()`` raised, in this task or in the one it waited for.
        """
        while True:
            flight = self._running.get(key)
            if flight is None:
                return await self._lead(key, fetch)
            flight.waiters += 1
            woken = False
            try:
                await flight.done.wait()
                woken = True
            finally:
                if not woken:
                    # Cancelled while waiting: give back what the flight counted for us.
                    if not flight.done.is_set():
                        flight.waiters -= 1
                    elif flight.result is not None and flight.result.copy is not None:
                        flight.result.copy.release()
            if flight.error is not None:
                raise flight.error
            if flight.result is not None:
                return flight.result
            # The leader was cancelled: lead (or wait for) a new flight.

    async def _lead(self, key: int, fetch: Callable[[], Awaitable[Fetched]]) -> Fetched:
        flight = self._running[key] = _Flight()
        try:
            result = await fetch()
            if result.copy is not None:
                # One reference per waiter, taken now: a waiter woken after the leader
                # finished reading still finds the copy.
                result.copy.holders += flight.waiters
            flight.result = result
            return result
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            del self._running[key]
            flight.done.set()
