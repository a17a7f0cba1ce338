"""``Stage``: one step of a pipeline, run as a task and joined to its neighbours by streams."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio
import anyio.lowlevel

from ._exceptions import InvalidValueError, PipelineError
from ._resolvable import BATCH_HOOKS, batch_hooks

if TYPE_CHECKING:
    from ._pipeline import _Pipeline

__all__ = ["CHECKPOINT_INTERVAL", "EndStage", "FlushEvent", "Stage"]

#: How many items a stage may receive or put without passing through the scheduler.
#: Sending and receiving use the non-blocking calls while the buffers allow; every this
#: many of them a checkpoint lets other tasks run and delivers a pending cancellation.
CHECKPOINT_INTERVAL: Final = 128


def running_checkpoint() -> Callable[[], Awaitable[None]]:
    """The checkpoint to use in the calling task: the running backend's own on trio.

    ``anyio.lowlevel.checkpoint`` finds out which backend runs on every call, which on
    trio costs about a fifth of the checkpoint (docs/benchmarks.md). anyio's cancel scopes
    are trio's own on trio, so ``trio.lowlevel.checkpoint`` (what anyio calls there)
    delivers the same cancellations. On asyncio it is anyio's.
    """
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_task():
        checkpoint: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint
        return checkpoint
    return anyio.lowlevel.checkpoint


class ItemReceiver(Protocol):
    """What a stage reads its input through: the receive end of the engine's channel
    (``stageline._channel``), or an adapter (``stageline_compat`` reads an asyncio queue)."""

    def receive_nowait(self) -> Any: ...

    async def receive(self) -> Any: ...

    def close(self) -> None: ...


class ItemSender(Protocol):
    """What a stage puts its output through (the send end of a channel, or an adapter)."""

    def send_nowait(self, item: Any) -> None: ...

    async def send(self, item: Any) -> None: ...

    def close(self) -> None: ...


class FlushEvent(Protocol):
    """What ``batches(flush_event=...)`` needs of a flush event: ``is_set()`` and
    ``async wait()``.

    ``anyio.Event`` fits on both backends (``asyncio.Event`` only under asyncio), as does
    ``ArtifactResourceBudget.flush_event`` (an event the budget can lower again).
    """

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


class _BatchWaker:
    """Lets a waiter of an item in the pending batch make ``batches`` yield that batch now."""

    __slots__ = ("scope", "thawed")

    def __init__(self) -> None:
        self.thawed = False
        self.scope: anyio.CancelScope | None = None

    def wake(self) -> None:
        self.thawed = True
        if self.scope is not None:
            self.scope.cancel()


_WOKEN: Final = object()
_ENDED: Final = object()


class Stage:
    """One step of a pipeline. Subclass it and implement :meth:`run`.

    Inside ``run`` read the input with ``async for d in self.items()`` (one item at a
    time) or ``async for batch in self.batches()`` (lists, for bulk work), and pass items
    on with ``await self.put(d)``. When ``run`` returns, the stage's output is closed and
    the next stage's iteration ends once it has read everything. A stage that raises
    ends the whole pipeline with that exception.

    The first stage of a pipeline has no input: it only puts.

    Example::

        class Uppercase(Stage):
            async def run(self) -> None:
                async for d in self.items():
                    d.content.name = d.content.name.upper()
                    await self.put(d)
    """

    # Class-level defaults, so that subclasses that do not call super().__init__() work.
    _input: ItemReceiver | None = None
    _output: ItemSender | None = None
    _pipeline: _Pipeline | None = None
    _ops: int = 0
    #: What the fast paths checkpoint with; create_pipeline sets the backend's own.
    _checkpoint: Callable[[], Awaitable[None]] = staticmethod(anyio.lowlevel.checkpoint)

    async def run(self) -> None:
        """Do the stage's work. Subclasses must implement it.

        Raises:
            NotImplementedError: when not overridden.
        """
        raise NotImplementedError(f"{type(self).__qualname__} must implement 'async def run(self)'")

    def _require_input(self) -> ItemReceiver:
        if self._input is None:
            if self._pipeline is None:
                raise PipelineError(
                    f"{type(self).__qualname__} is not running in a pipeline; "
                    "run it with create_pipeline() (or stageline.testing.run_stage())"
                )
            raise PipelineError(
                f"{type(self).__qualname__} is the first stage of its pipeline and has no input "
                "to read; the first stage only puts items"
            )
        return self._input

    def items(self) -> AsyncIterator[Any]:
        """Iterate over the input items one by one, in the order they were put.

        Use as ``async for d in self.items():``. Leaving the loop early is allowed, but a
        stage must read its input to the end before returning, or the previous stage's
        next ``put`` fails.

        Raises:
            PipelineError: when the stage has no input (it is first, or not in a pipeline).
        """
        return _Items(self, self._require_input())

    def batches(
        self, minsize: int = 500, flush_event: FlushEvent | None = None
    ) -> AsyncIterator[list[Any]]:
        """Iterate over the input as non-empty lists, in the order the items were put.

        Use as ``async for batch in self.batches():``. A batch is yielded as soon as one
        of these holds:

        - it has ``minsize`` items;
        - the input has ended (the last batch may be smaller);
        - an item in it is being awaited (``resolution()`` was called on it, or its
          ``does_batch`` is False), so awaiting an item never waits for a batch to fill;
        - ``flush_event`` is set and no more input is available right now. The event is
          looked at again only after a batch was yielded, and never for an empty batch, so
          an event that stays set makes each batch go as soon as the input runs dry, but
          never spins. An event that can be cleared (``asyncio.Event``, under asyncio)
          may be cleared by its owner after the flush.

        Args:
            minsize: the batch size to wait for; an int of at least 1.
            flush_event: an event (``anyio.Event`` or anything with ``is_set()`` and
                ``async wait()``) that asks for the pending batch now.

        Raises:
            ValueError: when ``minsize`` is not an int >= 1.
            PipelineError: when the stage has no input.
        """
        if isinstance(minsize, bool) or not isinstance(minsize, int) or minsize < 1:
            raise InvalidValueError(f"batches(minsize=...) must be an int >= 1, got {minsize!r}")
        return _Batches(self, self._require_input(), minsize, flush_event)

    async def put(self, item: Any) -> None:
        """Pass ``item`` to the next stage, waiting while its buffer is full.

        Raises:
            ValueError: when ``item`` is None (the end of input is signalled by returning
                from ``run``, not by a marker).
            PipelineError: when the stage is not in a pipeline, or the next stage has
                already returned without reading all its input.
        """
        send = self._output
        if item is None or send is None:
            raise self._put_misuse(item)
        pipeline = self._pipeline
        # The item protocol's pipeline check; a plain object has no `pipeline` and is left
        # alone (getattr's default costs no exception, unlike a failed attribute access).
        if getattr(item, "pipeline", pipeline) is not pipeline:
            # Usually the item's first put; also an item moving on from a pipeline that
            # ended, whose waiters this pipeline must now answer for. An object whose
            # `pipeline` means something else (it has no enter_pipeline) is left alone.
            enter_pipeline = getattr(item, "enter_pipeline", None)
            if enter_pipeline is not None:
                enter_pipeline(pipeline)
        try:
            send.send_nowait(item)
        except anyio.WouldBlock:
            await self._send_when_room(send, item)
        except anyio.BrokenResourceError:
            raise self._downstream_gone() from None
        else:
            ops = self._ops + 1
            if ops >= CHECKPOINT_INTERVAL:
                self._ops = 0
                await self._checkpoint()
            else:
                self._ops = ops

    async def put_all(self, items: Iterable[Any]) -> None:
        """Pass each of ``items`` to the next stage, in order: ``put`` for a whole batch.

        The same as ``for item in items: await self.put(item)``, with less work per item
        (one call for the batch instead of a coroutine per item); the batching stages pass
        each batch on with it. A subclass that overrides :meth:`put` gets each item through
        its ``put``.

        Raises:
            ValueError: when an item is None (the items before it have been put).
            PipelineError: as :meth:`put` does.
        """
        if type(self).put is not Stage.put:
            # A subclass that overrides put() sees every item go through it.
            for item in items:
                await self.put(item)
            return
        send = self._output
        if send is None:
            raise self._put_misuse(self)  # not None: the "no output" error
        pipeline = self._pipeline
        send_nowait = send.send_nowait
        ops = self._ops
        try:
            for item in items:
                if item is None:
                    raise self._put_misuse(item)
                # The item protocol's pipeline check, as in put().
                if getattr(item, "pipeline", pipeline) is not pipeline:
                    enter_pipeline = getattr(item, "enter_pipeline", None)
                    if enter_pipeline is not None:
                        enter_pipeline(pipeline)
                try:
                    send_nowait(item)
                except anyio.WouldBlock:
                    ops = 0
                    await self._send_when_room(send, item)
                else:
                    ops += 1
                    if ops >= CHECKPOINT_INTERVAL:
                        ops = 0
                        await self._checkpoint()
        except anyio.BrokenResourceError:
            raise self._downstream_gone() from None
        finally:
            self._ops = ops

    async def _send_when_room(self, send: ItemSender, item: Any) -> None:
        """``put``'s slow path: the next stage's buffer is full."""
        self._ops = 0
        # Let the others run once first: the next stage is usually runnable and makes
        # room, which costs less than a blocking send (an event, a wake-up and a second
        # pass through the scheduler). Only if it made none does the stage block.
        await self._checkpoint()
        try:
            try:
                send.send_nowait(item)
            except anyio.WouldBlock:
                await send.send(item)
        except anyio.BrokenResourceError:
            raise self._downstream_gone() from None

    def _put_misuse(self, item: Any) -> ValueError | PipelineError:
        if item is None:
            return ValueError(
                f"{type(self).__qualname__}.put(None): None is not an item; to end the "
                "stage's output, return from run()"
            )
        return PipelineError(
            f"{type(self).__qualname__} has no output: it is not running in a pipeline "
            "(or it is the EndStage)"
        )

    def _downstream_gone(self) -> PipelineError:
        return PipelineError(
            f"{type(self).__qualname__} put an item, but the next stage has already returned "
            "without reading all of its input; a stage must consume items() or batches() "
            "to the end"
        )


class _Items:
    """The iterator behind ``Stage.items()``.

    A class rather than an async generator: leaving the loop early needs no
    finalization, and each step is a single coroutine call.
    """

    __slots__ = ("_checkpoint", "_receive", "_receive_nowait", "_stage")

    def __init__(self, stage: Stage, receive: ItemReceiver) -> None:
        self._stage = stage
        self._receive = receive
        # Bound once, not per item: the fast path is this call and little else.
        self._receive_nowait = receive.receive_nowait
        self._checkpoint = stage._checkpoint

    def __aiter__(self) -> _Items:
        return self

    async def __anext__(self) -> Any:
        try:
            item = self._receive_nowait()
        except anyio.WouldBlock:
            self._stage._ops = 0
            # The buffer ran dry: let the others run once first, since the previous stage
            # is usually runnable and refills it, which costs less than a blocking receive
            # (an event, a wake-up and a second pass through the scheduler). Only if that
            # brought nothing does the stage block.
            await self._checkpoint()
            try:
                try:
                    item = self._receive_nowait()
                except anyio.WouldBlock:
                    item = await self._receive.receive()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        else:
            stage = self._stage
            ops = stage._ops + 1
            if ops >= CHECKPOINT_INTERVAL:
                stage._ops = 0
                await self._checkpoint()
            else:
                stage._ops = ops
        return item


class _Batches:
    """The iterator behind ``Stage.batches()``; see there for when a batch is yielded."""

    __slots__ = ("_ended", "_flush_event", "_minsize", "_receive", "_stage")

    def __init__(
        self,
        stage: Stage,
        receive: ItemReceiver,
        minsize: int,
        flush_event: FlushEvent | None,
    ) -> None:
        self._stage = stage
        self._receive = receive
        self._minsize = minsize
        self._flush_event = flush_event
        self._ended = False

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> list[Any]:
        if self._ended:
            raise StopAsyncIteration
        receive, minsize, flush_event = self._receive, self._minsize, self._flush_event
        receive_nowait = receive.receive_nowait
        batch: list[Any] = []
        append = batch.append
        waker = _BatchWaker()
        wake = waker.wake
        hooks_of = BATCH_HOOKS.get
        size_at_checkpoint = 0
        while True:
            # Take everything available without blocking, up to minsize.
            for _ in range(minsize - len(batch)):
                try:
                    item = receive_nowait()
                except anyio.WouldBlock:
                    break
                except anyio.EndOfStream:
                    self._ended = True
                    break
                append(item)
                # The item protocol, inline (see _join_batch): the per-item cost of batches().
                reads, enters, resolvable = hooks_of(type(item)) or batch_hooks(type(item))
                if resolvable:
                    # Resolvable's does_batch and enter_batch, written out.
                    waiting = item._waiting
                    if waiting is not None and waiting.awaiters and not item._resolved:
                        waker.thawed = True
                    item._wake = wake
                    continue
                if reads and not item.does_batch:
                    waker.thawed = True
                if enters:
                    item.enter_batch(wake)
            if self._ended:
                if batch:
                    return batch
                raise StopAsyncIteration
            if len(batch) >= minsize or (
                batch and (waker.thawed or (flush_event is not None and flush_event.is_set()))
            ):
                # One scheduler round trip per batch keeps cancellation prompt.
                self._stage._ops = 0
                await self._stage._checkpoint()
                return batch
            # Nothing more is available right now: if items came since the last
            # checkpoint, let the others run once before blocking.
            if len(batch) > size_at_checkpoint:
                size_at_checkpoint = len(batch)
                self._stage._ops = 0
                await self._stage._checkpoint()
                continue
            # Wait for the next item (or a waker, or a flush).
            if not batch:
                got = await _receive_or_end(receive)
            else:
                got = await _receive_or_wake(receive, waker, flush_event)
            if got is _ENDED:
                self._ended = True
            elif got is not _WOKEN:
                append(got)
                _join_batch(got, waker)


def _join_batch(item: Any, waker: _BatchWaker) -> None:
    """The item protocol's side of an item joining the pending batch of ``waker``."""
    reads, enters, _resolvable = batch_hooks(type(item))
    if reads and not item.does_batch:
        waker.thawed = True
    if enters:
        item.enter_batch(waker.wake)


async def _receive_or_wake(
    receive: ItemReceiver, waker: _BatchWaker, flush_event: FlushEvent | None
) -> Any:
    # Cancelling a pending receive() loses nothing: the engine's channel puts an item
    # into its buffer before it wakes a receiver for it (and compat's queue adapter reads
    # an asyncio.Queue, whose get() is safe to cancel). The item is kept in a local
    # first, so a wake that races with the task group's exit cannot drop it.
    got: Any = _WOKEN
    with anyio.CancelScope() as scope:
        waker.scope = scope
        try:
            if flush_event is None:
                got = await _receive_or_end(receive)
            else:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_cancel_when_set, flush_event, scope)
                    got = await _receive_or_end(receive)
                    tg.cancel_scope.cancel()
        finally:
            waker.scope = None
    return got


async def _receive_or_end(receive: ItemReceiver) -> Any:
    try:
        return await receive.receive()
    except anyio.EndOfStream:
        return _ENDED


async def _cancel_when_set(event: FlushEvent, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


class EndStage(Stage):
    """Drains the last stream of a pipeline. ``create_pipeline`` appends one when missing."""

    async def run(self) -> None:
        """Read and drop every item."""
        async for _ in self.items():
            pass
