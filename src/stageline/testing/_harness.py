"""Run one stage in isolation, in a real pipeline, and see what it puts."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Final

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import PipelineError
from .._pipeline import DEFAULT_MAXSIZE, create_pipeline
from .._stage import Stage
from ._stages import Collector, Feeder

__all__ = ["DEFAULT_TIMEOUT", "StageHarness", "run_stage"]

#: Seconds a harness lets a stage run before it fails with ``TimeoutError``. A bound on
#: deadlocks, not a performance expectation: a stage under test usually needs
#: milliseconds.
DEFAULT_TIMEOUT: Final = 10.0


async def run_stage(
    stage: Stage,
    items: Iterable[Any] | None = None,
    *,
    maxsize: int = DEFAULT_MAXSIZE,
    # ASYNC109 prefers callers wrap the call in fail_after; here the bound is the point:
    # a harness that could hang forever would turn a deadlock into a stuck test run.
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
) -> list[Any]:
    """Run ``stage`` fed with ``items`` and return everything it put, in order.

    The stage runs in a real pipeline (``create_pipeline([feeder, stage, collector])``),
    so ``items()``, ``batches()``, backpressure and failure behave exactly as in a sync.
    Works on asyncio and trio.

    Args:
        stage: the stage under test (a fresh instance).
        items: what the stage reads; None when it is a first stage (it reads nothing).
        maxsize: the buffer between the stages.
        timeout: seconds before giving up with ``TimeoutError`` (a deadlock bound).

    Returns:
        The items the stage put, in the order it put them.

    Raises:
        TimeoutError: the stage did not finish within ``timeout`` seconds.
        Exception: whatever the stage raised, itself (not wrapped in a group).
    """
    collector = Collector()
    stages: list[Stage] = [stage, collector] if items is None else [Feeder(items), stage, collector]
    with anyio.fail_after(timeout):
        await create_pipeline(stages, maxsize=maxsize)
    return collector.collected


class _Relay(Stage):
    """First stage of a harness: puts what the test feeds it."""

    def __init__(self, receive: MemoryObjectReceiveStream[Any]) -> None:
        self.receive = receive

    async def run(self) -> None:
        # The harness closes the stream, after it has recorded how the pipeline ended,
        # so that a feed() woken by the close sees the stage's exception.
        async for item in self.receive:
            await self.put(item)


class _Sink(Stage):
    """Last stage of a harness: records what the stage under test put and passes it on."""

    def __init__(self, send: MemoryObjectSendStream[Any]) -> None:
        self.send = send
        self.collected: list[Any] = []

    async def run(self) -> None:
        # Closed by the harness, like the relay's stream.
        async for item in self.items():
            self.collected.append(item)
            self.send.send_nowait(item)  # the buffer is unbounded


class StageHarness:
    """Drive one stage step by step: feed items, read what it puts, end its input.

    The stage runs in a real pipeline between a feeding stage and a collecting stage,
    in a task of the harness; use it as an async context manager::

        async with StageHarness(MyStage(), maxsize=0) as harness:
            await harness.feed(item)
            assert await harness.next_output() is item
        # leaving the block ends the stage's input and waits for the stage to finish

    Leaving the block normally ends the input and waits for the pipeline; leaving it
    with an exception cancels the pipeline. If the stage raises, the exception itself
    (not a group) comes out of ``feed``/``next_output`` when they are waiting, and out of
    the ``async with`` otherwise.

    Args:
        stage: the stage under test (a fresh instance).
        maxsize: the buffer between the stages.
        timeout: seconds the whole block may take before ``TimeoutError``.

    Attributes:
        outputs: every item the stage has put so far, in order.
    """

    def __init__(
        self, stage: Stage, *, maxsize: int = DEFAULT_MAXSIZE, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.stage = stage
        self.maxsize = maxsize
        self.timeout = timeout
        self._feed_send, feed_receive = anyio.create_memory_object_stream[Any](0)
        out_send, self._out_receive = anyio.create_memory_object_stream[Any](math.inf)
        self._relay = _Relay(feed_receive)
        self._sink = _Sink(out_send)
        self._failure: Exception | None = None
        self._context: AbstractAsyncContextManager[StageHarness] | None = None

    @property
    def outputs(self) -> list[Any]:
        """Every item the stage has put so far, in order."""
        return self._sink.collected

    async def feed(self, item: Any) -> None:
        """Hand ``item`` to the stage's input; returns once the feeding stage took it.

        Raises:
            PipelineError: the input was already ended with :meth:`end_input`.
            Exception: what the stage raised, if the pipeline failed.
        """
        try:
            await self._feed_send.send(item)
        except anyio.ClosedResourceError:
            raise PipelineError("StageHarness.feed(): the input was already ended") from None
        except anyio.BrokenResourceError:
            raise self._failure or PipelineError(
                "StageHarness.feed(): the pipeline has already ended"
            ) from None

    async def feed_all(self, items: Iterable[Any]) -> None:
        """:meth:`feed` each item in order."""
        for item in items:
            await self.feed(item)

    def end_input(self) -> None:
        """End the stage's input: its ``items()``/``batches()`` loop ends after the rest."""
        self._feed_send.close()

    async def next_output(self) -> Any:
        """Wait for the next item the stage puts and return it.

        Raises:
            PipelineError: the stage returned without putting another item.
            Exception: what the stage raised, if the pipeline failed.
        """
        try:
            return await self._out_receive.receive()
        except anyio.EndOfStream:
            raise self._failure or PipelineError(
                f"{type(self.stage).__qualname__} returned without putting another item"
            ) from None

    async def settle(self) -> None:
        """Wait until every task is blocked: the stage did all it can without more input."""
        await anyio.wait_all_tasks_blocked()

    async def _run(self) -> None:
        try:
            await create_pipeline([self._relay, self.stage, self._sink], maxsize=self.maxsize)
        except Exception as exc:
            self._failure = exc
        finally:
            self._relay.receive.close()
            self._sink.send.close()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[StageHarness]:
        leaf: BaseException | None = None
        try:
            with anyio.fail_after(self.timeout):
                try:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._run)
                        completed = False
                        try:
                            yield self
                            completed = True
                        finally:
                            if not completed:
                                tg.cancel_scope.cancel()
                            self.end_input()
                except BaseExceptionGroup as group:
                    # The task group wraps the body's exception; hand it on as it was raised.
                    if len(group.exceptions) != 1 or isinstance(
                        group.exceptions[0], BaseExceptionGroup
                    ):
                        raise
                    leaf = group.exceptions[0]
        finally:
            self._feed_send.close()
            self._out_receive.close()
            self._relay.receive.close()
            self._sink.send.close()
        if leaf is not None:
            raise leaf
        if self._failure is not None:
            raise self._failure

    async def __aenter__(self) -> StageHarness:
        if self._context is not None:
            raise PipelineError("a StageHarness can be entered only once")
        self._context = self._open()
        return await self._context.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._context is not None
        return await self._context.__aexit__(exc_type, exc, traceback)
