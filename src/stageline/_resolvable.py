"""The engine's view of an item that someone may wait for.

``DeclarativeContent`` builds on this. The engine needs three things of an item, and only
these, so it stays ignorant of content, artifacts and databases:

- ``does_batch``: False while somebody waits for the unresolved item, so that a batching
  stage holding it hands its batch on at once instead of waiting for more items;
- a *batch waker*: the batch the item sits in is told when a waiter arrives;
- a *pipeline*: the pipeline the item travels in, so that when the pipeline ends (done,
  failed or cancelled) a waiter of an item that was never resolved is woken with an
  error instead of hanging.
"""

from __future__ import annotations

import contextvars
from typing import Protocol

import anyio
import attrs

from ._exceptions import PipelineError

__all__ = ["Resolvable", "current_pipeline"]


class _Waker(Protocol):
    def wake(self) -> None: ...


class _PipelineLike(Protocol):
    def watch(self, item: Resolvable) -> None: ...

    def unwatch(self, item: Resolvable) -> None: ...


#: The pipeline whose stage task (or a task a stage started) is running. An item made
#: there belongs to that pipeline from birth, so that its waiters are woken when the
#: pipeline ends even if it fails before the item was ever put.
current_pipeline: contextvars.ContextVar[_PipelineLike | None] = contextvars.ContextVar(
    "stageline_current_pipeline", default=None
)


@attrs.define(eq=False, slots=True)
class Resolvable:
    """An item that can be awaited until a stage resolves it. Built on ``anyio.Event``."""

    _event: anyio.Event | None = attrs.field(default=None, init=False, repr=False)
    _resolved: bool = attrs.field(default=False, init=False, repr=False)
    _awaiters: int = attrs.field(default=0, init=False, repr=False)
    _waker: _Waker | None = attrs.field(default=None, init=False, repr=False)
    _pipeline: _PipelineLike | None = attrs.field(default=None, init=False, repr=False)
    _failure: BaseException | None = attrs.field(default=None, init=False, repr=False)
    _abandoned: str | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._pipeline = current_pipeline.get()

    @property
    def does_batch(self) -> bool:
        """False while somebody awaits this item and it is not yet resolved.

        A batching stage yields its pending batch at once when it holds such an item,
        so that awaiting an item never waits for a batch to fill up.
        """
        return self._awaiters == 0 or self._resolved

    @property
    def resolved(self) -> bool:
        """True once :meth:`resolve` was called."""
        return self._resolved

    def resolve(self) -> None:
        """Mark the item resolved and wake every task awaiting :meth:`resolution`.

        Calling it again is harmless.
        """
        self._resolved = True
        if self._event is not None:
            self._event.set()

    async def _wait_resolved(self) -> None:
        if self._resolved:
            await anyio.lowlevel.checkpoint()
            return
        if self._abandoned is not None:
            raise PipelineError(self._abandoned) from self._failure
        if self._event is None:
            self._event = anyio.Event()
        self._awaiters += 1
        try:
            if self._pipeline is not None:
                self._pipeline.watch(self)
            if self._waker is not None:
                # The item sits in a partly filled batch: make that batch flush now.
                self._waker.wake()
            await self._event.wait()
        finally:
            self._awaiters -= 1
            if self._awaiters == 0 and self._pipeline is not None:
                self._pipeline.unwatch(self)
        if not self._resolved:
            raise PipelineError(
                self._abandoned or "the item was abandoned before it was resolved"
            ) from self._failure

    def _join(self, pipeline: _PipelineLike) -> None:
        """Make ``pipeline`` answer for this item's waiters from now on."""
        # Set without attrs' __setattr__ hook (subclasses have validators on public fields).
        object.__setattr__(self, "_pipeline", pipeline)
        if self._abandoned is not None:
            # Abandoned by a pipeline that ended: this one may still resolve it.
            object.__setattr__(self, "_abandoned", None)
            object.__setattr__(self, "_failure", None)
            object.__setattr__(self, "_event", None)
        if self._awaiters:
            pipeline.watch(self)

    def _abandon(self, message: str, failure: BaseException | None) -> None:
        """Wake the waiters of an item that will never be resolved; they get an error."""
        if self._resolved:
            return
        self._abandoned = message
        self._failure = failure
        if self._event is not None:
            self._event.set()
