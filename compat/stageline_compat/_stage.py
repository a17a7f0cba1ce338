"""The asyncio-era ``Stage``: hand-wired to ``asyncio.Queue``s, or run by ``create_pipeline``.

A shimmed stage IS a :class:`stageline.Stage`. In a pipeline (this package's
``create_pipeline`` or stageline's own) it runs on the engine's channels like any
native stage. Wired by hand with ``_connect(in_q, out_q)``, the engine's own ``items()``,
``batches()`` and ``put()`` read and write the queues through two small adapters that give
a queue the four calls the engine makes on a stream (``receive_nowait``/``receive`` and
``send_nowait``/``send``), with ``None`` read as the end of the stream. So the yield rules of
``batches()`` are the engine's in both cases, not a second implementation of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import anyio

import stageline
from stageline import DEFAULT_MAXSIZE, UsageError

__all__ = ["EndStage", "Stage", "create_pipeline"]


class _QueueReceiver:
    """An ``asyncio.Queue`` read the way the engine reads a stream; ``None`` ends it.

    ``asyncio.Queue.get`` is safe to cancel (an item is taken off the queue only by the
    getter that returns it), which the engine's ``batches()`` relies on when a thaw or a
    flush interrupts its wait.
    """

    __slots__ = ("_ended", "_queue")

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self._queue = queue
        self._ended = False

    def receive_nowait(self) -> Any:
        queue = self._queue
        # Asked before taking, rather than catching QueueEmpty: a hand-wired queue of one
        # item is empty at almost every call, and an exception caught costs more.
        if self._ended:
            raise anyio.EndOfStream
        if queue.empty():
            raise anyio.WouldBlock
        item = queue.get_nowait()
        if item is None:
            self._ended = True
            raise anyio.EndOfStream
        return item

    async def receive(self) -> Any:
        if self._ended:
            raise anyio.EndOfStream
        item = await self._queue.get()
        if item is None:
            self._ended = True
            raise anyio.EndOfStream
        return item

    def close(self) -> None:
        """Nothing to close: the queue belongs to whoever made it."""


class _QueueSender:
    """An ``asyncio.Queue`` written the way the engine writes a stream."""

    __slots__ = ("_queue",)

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self._queue = queue

    def send_nowait(self, item: Any) -> None:
        queue = self._queue
        if queue.full():
            raise anyio.WouldBlock
        queue.put_nowait(item)

    async def send(self, item: Any) -> None:
        await self._queue.put(item)

    def close(self) -> None:
        """Nothing to close: the end marker is put by ``await stage()``."""


class Stage(stageline.Stage):
    """A stage with the asyncio-era API; subclass it and implement ``run()``.

    It is a :class:`stageline.Stage`, so it runs in any pipeline, next to native stages.
    What it adds is the old way of wiring and running a stage by hand, as unit tests of
    the asyncio era do::

        in_q, out_q = asyncio.Queue(), asyncio.Queue()
        stage._connect(in_q, out_q)
        for d in items:
            in_q.put_nowait(d)
        in_q.put_nowait(None)       # the end marker
        await stage()               # runs run(), then puts None on out_q

    Inside ``run()``, ``items()``, ``batches(minsize, flush_event)`` and ``put()`` are the
    engine's, with the same rules however the stage is wired (see ``docs/engine.md``), and
    ``run()`` may use asyncio freely (``ensure_future``, ``gather``, ``wait``, ``Queue``,
    ``Event``, ``sleep``): shimmed stages run on asyncio only.
    """

    # Class-level defaults, so that subclasses that do not call super().__init__() work.
    _in_q: asyncio.Queue[Any] | None = None
    _out_q: asyncio.Queue[Any] | None = None

    def _connect(self, in_q: asyncio.Queue[Any] | None, out_q: asyncio.Queue[Any] | None) -> None:
        """Wire the stage by hand: read ``in_q`` until ``None``, put onto ``out_q``.

        Either may be None: the first stage has no input, the last no output.
        """
        self._in_q = in_q
        self._out_q = out_q
        # The engine reads and writes through these calls only (receive_nowait, receive,
        # send_nowait, send, close), which the adapters provide.
        self._input = None if in_q is None else _QueueReceiver(in_q)
        self._output = None if out_q is None else _QueueSender(out_q)
        self._ops = 0

    async def __call__(self) -> None:
        """Run the hand-wired stage: ``run()``, then the end marker ``None`` onto ``out_q``.

        The end marker is put only when ``run()`` returns; an exception propagates as it
        is, without one.

        Raises:
            Exception: what ``run()`` raised.
        """
        await self.run()
        if self._out_q is not None:
            await self._out_q.put(None)


class EndStage(Stage, stageline.EndStage):
    """Drains the last queue or stream; ``create_pipeline`` appends one when missing."""


def require_asyncio(what: str) -> None:
    """Refuse to go on outside a running asyncio event loop, saying what to use instead.

    Raises:
        UsageError: (a ``RuntimeError``) no asyncio event loop runs in this thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise UsageError(
            f"stageline_compat.{what} runs on asyncio only (it is the asyncio-era API), "
            "but no asyncio event loop is running here; under Trio use stageline's own "
            "API (stageline.create_pipeline, stageline.DeclarativeContent.resolution())"
        ) from None


async def create_pipeline(
    stages: Iterable[stageline.Stage], maxsize: int = DEFAULT_MAXSIZE
) -> None:
    """Run ``stages`` as one pipeline, on asyncio; a coroutine for ``asyncio.run``.

    Use it as ``asyncio.run(create_pipeline(stages))`` or
    ``loop.run_until_complete(create_pipeline(stages))``, or await it. Shimmed and native
    stages may be mixed: every stage is a :class:`stageline.Stage` and runs on the
    engine's streams (a hand-wired queue plays no part here). An :class:`EndStage` is
    appended unless the last stage is one.

    When a stage raises, every other stage is cancelled and that exception is raised
    (unwrapped; an ``ExceptionGroup`` only when several stages fail at once).

    Args:
        stages: the stage instances, first to last.
        maxsize: the buffer between two stages. The default is stageline's
            (``DEFAULT_MAXSIZE``), not the asyncio era's 1: a buffer of one item costs a
            scheduler round trip per item and stage; pass ``maxsize=1`` to get the old one.

    Raises:
        UsageError: (a ``RuntimeError``) awaited under another event loop than asyncio.
        StageConfigurationError: (a ``ValueError``) see :func:`stageline.create_pipeline`.
        Exception: whatever a stage raised.
    """
    require_asyncio("create_pipeline")
    await stageline.create_pipeline(stages, maxsize=maxsize)
