"""The item protocol: how the engine sees an item that someone may wait for.

The engine carries any object but None. It asks more of an item only through the public
protocol below, and only when the item's class takes part in it, so it stays ignorant of
content, artifacts and databases, and a plugin may write its own item class:

- ``does_batch``: read as the item joins a pending batch of a batching stage; False makes
  that batch go at once instead of waiting for more items.
- ``enter_batch(wake)``: called as the item joins a pending batch; the item calls
  ``wake()`` if somebody starts waiting for it while it sits there, so that the batch goes
  at once and the waiter never waits for a batch to fill.
- ``pipeline`` and ``enter_pipeline(pipeline)``: the engine reads ``pipeline`` on each
  ``put`` and calls ``enter_pipeline`` when it is not the pipeline putting the item. The
  item keeps that :class:`PipelineHandle` and tells it when it is awaited
  (``watch``) and no longer awaited (``unwatch``).
- ``pipeline_ended(message, cause)``: called by a pipeline that ends (finished, failed or
  cancelled) for each item it watches, i.e. each item still awaited and not resolved; the
  item wakes its waiters with an error instead of leaving them hanging.

:class:`Resolvable` implements all of it; ``DeclarativeContent`` builds on it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Final, Protocol

import anyio
import anyio.lowlevel
import attrs

from ._exceptions import PipelineError

__all__ = [
    "BATCH_HOOKS",
    "PipelineHandle",
    "PipelineItem",
    "Resolvable",
    "batch_hooks",
    "current_pipeline",
    "pipeline_context",
]


class PipelineHandle(Protocol):
    """What an item sees of the pipeline it travels in.

    The engine hands it to :meth:`PipelineItem.enter_pipeline`. Items are kept by identity.
    """

    def watch(self, item: PipelineItem) -> None:
        """Answer for ``item``'s waiters: call its ``pipeline_ended`` if the pipeline ends
        first (at once, if it has already ended)."""

    def unwatch(self, item: PipelineItem) -> None:
        """Forget ``item``: nobody waits for it any more, or it was resolved."""


class PipelineItem(Protocol):
    """The item protocol: what the engine reads and calls on an item.

    Every member is optional. ``does_batch`` and ``enter_batch`` are looked for on the
    item's class (a class attribute, a property, a slot or a method), once per class;
    ``pipeline`` is read from the item itself. A plain object without them flows through
    the pipeline untouched. A class with ``does_batch`` alone decides whether its batch
    waits for more items; an item somebody can await implements all of them, as
    :class:`Resolvable` does.
    """

    @property
    def does_batch(self) -> bool:
        """False when a batching stage holding this item must hand its batch on at once.

        Read as the item joins a pending batch. An item whose answer turns False later,
        while it sits in the batch, calls the ``wake`` it got from :meth:`enter_batch`.
        """

    def enter_batch(self, wake: Callable[[], None]) -> None:
        """The item joined a pending batch; call ``wake()`` when somebody awaits it there.

        ``wake`` may be called at any time, any number of times, also after the batch was
        handed on (it then does nothing).
        """

    @property
    def pipeline(self) -> PipelineHandle | None:
        """The pipeline the item last entered (None before its first ``put``)."""

    def enter_pipeline(self, pipeline: PipelineHandle) -> None:
        """The item is being put into ``pipeline``; afterwards ``self.pipeline`` is it.

        Called by ``put`` when ``self.pipeline`` is not the putting stage's pipeline: on the
        item's first put, and when it moves on from a pipeline that ended. If the item is
        being awaited, it must ``pipeline.watch(self)``.
        """

    def pipeline_ended(self, message: str, cause: BaseException | None) -> None:
        """The pipeline that watches this item ended.

        Unless the item was resolved meanwhile (its woken waiters may not have unwatched it
        yet), wake every waiter with a ``PipelineError(message)`` raised ``from cause``
        (the pipeline's error; None when it finished normally).
        """


#: The pipeline whose stage task (or a task a stage started) is running; set by the engine
#: in each stage task. An item made there belongs to that pipeline from birth, so that its
#: waiters are woken when the pipeline ends even if it fails before the item was ever put.
pipeline_context: Final[contextvars.ContextVar[PipelineHandle | None]] = contextvars.ContextVar(
    "stageline_current_pipeline", default=None
)


def current_pipeline() -> PipelineHandle | None:
    """The pipeline whose stage is running in this task, or None outside any pipeline.

    An item class of a plugin calls it when an item is made, so that an item made inside a
    stage belongs to that stage's pipeline before its first ``put`` (see
    :class:`PipelineItem`).
    """
    return pipeline_context.get()


#: How the engine's batching looks at an item class: (reads ``does_batch``, calls
#: ``enter_batch``, both are :class:`Resolvable`'s own). Worked out once per class, since
#: a failed attribute lookup per item would cost more than the rest of the batching.
#: Classes are few, so it is never pruned.
BATCH_HOOKS: Final[dict[type, tuple[bool, bool, bool]]] = {}


def batch_hooks(item_type: type) -> tuple[bool, bool, bool]:
    """Which batching members of the item protocol ``item_type`` has (cached), and whether
    they are :class:`Resolvable`'s own (the engine then does what they do inline: two
    calls fewer per item in every batching stage)."""
    hooks = BATCH_HOOKS.get(item_type)
    if hooks is None:
        enter_batch = getattr(item_type, "enter_batch", None)
        hooks = BATCH_HOOKS[item_type] = (
            hasattr(item_type, "does_batch"),
            callable(enter_batch),
            issubclass(item_type, Resolvable)
            and item_type.does_batch is Resolvable.does_batch
            and enter_batch is Resolvable.enter_batch,
        )
    return hooks


class _Waiting:
    """What an item keeps while somebody awaits it; made at the first await only."""

    __slots__ = ("abandoned", "awaiters", "event")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.awaiters = 0
        #: (message, cause) once a pipeline ended without resolving the item.
        self.abandoned: tuple[str, BaseException | None] | None = None


@attrs.define(eq=False, slots=True)
class Resolvable:
    """An item that can be awaited until a stage resolves it; the reference implementation
    of :class:`PipelineItem`, built on ``anyio.Event``.

    Subclass it for an item class of your own (``DeclarativeContent`` does): call
    :meth:`wait_resolved` from the method your waiters await, and :meth:`resolve` from the
    stage that finishes the item. An item made inside a stage belongs to that stage's
    pipeline from birth; one made elsewhere joins a pipeline at its first ``put``.
    """

    #: The pipeline this item last entered: the one whose stage made it, else None until
    #: its first ``put``. The engine reads it on every ``put``; it changes only through
    #: :meth:`enter_pipeline`.
    pipeline: PipelineHandle | None = attrs.field(
        init=False, factory=pipeline_context.get, repr=False
    )
    _resolved: bool = attrs.field(init=False, default=False, repr=False)
    _wake: Callable[[], None] | None = attrs.field(init=False, default=None, repr=False)
    _waiting: _Waiting | None = attrs.field(init=False, default=None, repr=False)

    @property
    def does_batch(self) -> bool:
        """False while somebody awaits this item and it is not yet resolved.

        A batching stage yields its pending batch at once when it holds such an item,
        so that awaiting an item never waits for a batch to fill up.
        """
        waiting = self._waiting
        return waiting is None or waiting.awaiters == 0 or self._resolved

    @property
    def resolved(self) -> bool:
        """True once :meth:`resolve` was called."""
        return self._resolved

    def resolve(self) -> None:
        """Mark the item resolved and wake every task awaiting it.

        Calling it again is harmless.
        """
        self._resolved = True
        waiting = self._waiting
        if waiting is not None:
            waiting.event.set()

    async def wait_resolved(self) -> None:
        """Wait until the item is resolved.

        Telling the pipeline the item travels in that it is awaited, and the batch it sits
        in to go now, so that waiting never deadlocks.

        Raises:
            PipelineError: the pipeline ended (finished, failed or was cancelled) without
                resolving this item; ``__cause__`` holds the pipeline's error, if any.
        """
        if self._resolved:
            await anyio.lowlevel.checkpoint()
            return
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = _Waiting()
        if waiting.abandoned is not None:
            message, cause = waiting.abandoned
            raise PipelineError(message) from cause
        waiting.awaiters += 1
        try:
            pipeline = self.pipeline
            if pipeline is not None:
                pipeline.watch(self)
            wake = self._wake
            if wake is not None:
                # The item may sit in a partly filled batch: make that batch go now.
                wake()
            await waiting.event.wait()
        finally:
            waiting.awaiters -= 1
            # A pipeline that ended may have been replaced by the next one the item entered
            # (enter_pipeline): only the current state's last waiter unwatches.
            if waiting.awaiters == 0 and waiting is self._waiting:
                pipeline = self.pipeline
                if pipeline is not None:
                    pipeline.unwatch(self)
        if not self._resolved:
            message, cause = waiting.abandoned or (
                "the item was abandoned before it was resolved",
                None,
            )
            raise PipelineError(message) from cause

    def enter_batch(self, wake: Callable[[], None]) -> None:
        """Keep ``wake``: a waiter arriving while the item sits in the batch calls it."""
        self._wake = wake

    def enter_pipeline(self, pipeline: PipelineHandle) -> None:
        """Make ``pipeline`` answer for this item's waiters from now on."""
        self.pipeline = pipeline
        waiting = self._waiting
        if waiting is None:
            return
        if waiting.abandoned is not None:
            # Abandoned by a pipeline that ended: this one may still resolve it. Waiters
            # already woken keep the old state and its error.
            self._waiting = None
        elif waiting.awaiters:
            pipeline.watch(self)

    def pipeline_ended(self, message: str, cause: BaseException | None) -> None:
        """Wake the waiters of an item that will never be resolved; they get an error."""
        if self._resolved:
            return
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = _Waiting()
        waiting.abandoned = (message, cause)
        waiting.event.set()
