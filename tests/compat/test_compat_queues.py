"""Stages wired by hand to ``asyncio.Queue``s, the way asyncio-era unit tests drive them.

These tests are asyncio-only by nature: the shim is the asyncio API (see conftest.py).
They check that ``items()`` and ``batches()`` on queues follow the native engine's yield
rules (tests/test_stage.py checks the same rules on streams): at most ``minsize`` items
taken without blocking, a batch goes at ``minsize``, at the end marker, when an item in it
is awaited (``resolution()``, ``get_or_create_future()``, ``does_batch`` False), or when the
flush event is set and the queue is empty, the event being looked at again only after a
yield. The iterators are driven with ``asyncio.ensure_future(it.__anext__())``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import anyio
import pytest

from stageline import PipelineError
from stageline_compat import DeclarativeContent, EndStage, Stage

from ..stages import HANG_TIMEOUT

pytestmark = pytest.mark.anyio


def reader(in_q: asyncio.Queue[Any]) -> Stage:
    """A bare stage reading ``in_q`` (nothing to put)."""
    stage = Stage()
    stage._connect(in_q, None)
    return stage


def queue_of(*items: Any) -> asyncio.Queue[Any]:
    """An unbounded queue holding ``items``."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


async def test_batches_of_a_queue_holding_items_then_the_end_marker() -> None:
    """Items then None: one batch of every item, then the iteration ends."""
    with anyio.fail_after(HANG_TIMEOUT):
        c1, c2, c3 = mock.Mock(), mock.Mock(), mock.Mock()
        batches = reader(queue_of(c1, c2, c3, None)).batches(minsize=5)
        assert await batches.__anext__() == [c1, c2, c3]
        with pytest.raises(StopAsyncIteration):
            await batches.__anext__()


async def test_batches_of_a_queue_holding_only_the_end_marker() -> None:
    """Only None: no batch at all (batches are never empty)."""
    with anyio.fail_after(HANG_TIMEOUT):
        batches = reader(queue_of(None)).batches(minsize=1)
        with pytest.raises(StopAsyncIteration):
            await batches.__anext__()


async def test_items_of_a_queue_end_at_the_end_marker() -> None:
    """items() yields what was queued, in order, and ends at None."""
    with anyio.fail_after(HANG_TIMEOUT):
        things = [object(), "a", 3]
        items = reader(queue_of(*things, None)).items()
        assert [item async for item in items] == things


async def test_two_batches() -> None:
    """A full batch goes at minsize; the next one fills from what is queued later."""
    with anyio.fail_after(HANG_TIMEOUT):
        c1, c2, c3, c4 = (mock.Mock() for _ in range(4))
        in_q = queue_of(c1, c2)
        batches = reader(in_q).batches(minsize=2)
        assert await batches.__anext__() == [c1, c2]
        in_q.put_nowait(c3)
        in_q.put_nowait(c4)
        in_q.put_nowait(None)
        assert await batches.__anext__() == [c3, c4]
        with pytest.raises(StopAsyncIteration):
            await batches.__anext__()


async def test_a_batch_never_holds_more_than_minsize() -> None:
    """As in the native engine, a batch takes at most minsize of what is queued."""
    with anyio.fail_after(HANG_TIMEOUT):
        things = list(range(5))
        batches = reader(queue_of(*things, None)).batches(minsize=2)
        assert [batch async for batch in batches] == [[0, 1], [2, 3], [4]]


async def test_a_batch_waits_for_minsize_while_the_input_lasts() -> None:
    """Below minsize and without the end marker, the pending batch waits for more."""
    with anyio.fail_after(HANG_TIMEOUT):
        in_q = queue_of(1, 2)
        batch = asyncio.ensure_future(reader(in_q).batches(minsize=3).__anext__())
        await anyio.wait_all_tasks_blocked()
        assert not batch.done()
        in_q.put_nowait(3)
        assert await batch == [1, 2, 3]


async def test_awaiting_resolution_thaws_the_batch_holding_the_item() -> None:
    """resolution() on an item in a pending batch makes that batch go, without a deadlock."""
    with anyio.fail_after(HANG_TIMEOUT):
        c1, c2 = DeclarativeContent(mock.Mock()), DeclarativeContent(mock.Mock())
        batch = asyncio.ensure_future(reader(queue_of(c1, c2)).batches(minsize=3).__anext__())
        await anyio.wait_all_tasks_blocked()
        assert not batch.done()
        waiter = asyncio.ensure_future(c1.resolution())
        assert await batch == [c1, c2]
        assert not waiter.done()
        c1.resolve()
        assert await waiter is c1.content


async def test_get_or_create_future_thaws_the_batch_and_gets_the_content() -> None:
    """The old future counts as awaiting: the batch goes, and resolve() fulfils it."""
    with anyio.fail_after(HANG_TIMEOUT):
        c1, c2 = DeclarativeContent(mock.Mock()), DeclarativeContent(mock.Mock())
        batch = asyncio.ensure_future(reader(queue_of(c1, c2)).batches(minsize=3).__anext__())
        await anyio.wait_all_tasks_blocked()
        future = c2.get_or_create_future()
        assert isinstance(future, asyncio.Future)
        assert c2.get_or_create_future() is future
        assert not c2.does_batch
        assert await batch == [c1, c2]
        c2.resolve()
        assert future.result() is c2.content
        assert c2.does_batch


async def test_an_item_awaited_before_it_is_queued_does_not_wait_in_a_batch() -> None:
    """An item whose does_batch is already False makes the batch it joins go at once."""
    with anyio.fail_after(HANG_TIMEOUT):
        c1 = DeclarativeContent(mock.Mock())
        c1.get_or_create_future()
        batches = reader(queue_of(mock.Mock(), c1)).batches(minsize=10)
        batch = await batches.__anext__()
        assert batch[-1] is c1


async def test_a_plain_object_saying_it_does_not_batch_thaws_the_batch() -> None:
    """does_batch is read on any item class, not only DeclarativeContent."""

    class Urgent:
        does_batch = False

    with anyio.fail_after(HANG_TIMEOUT):
        urgent = Urgent()
        in_q = queue_of(1)
        batch = asyncio.ensure_future(reader(in_q).batches(minsize=10).__anext__())
        await anyio.wait_all_tasks_blocked()
        assert not batch.done()
        in_q.put_nowait(urgent)
        assert await batch == [1, urgent]


async def test_the_flush_event_yields_the_pending_batch_early() -> None:
    """A set flush event makes a pending batch go below minsize once the queue is empty."""
    with anyio.fail_after(HANG_TIMEOUT):
        flush = asyncio.Event()
        batch = asyncio.ensure_future(
            reader(queue_of(1, 2)).batches(minsize=10, flush_event=flush).__anext__()
        )
        await anyio.wait_all_tasks_blocked()
        assert not batch.done()
        flush.set()
        assert await batch == [1, 2]


async def test_a_set_flush_event_does_not_spin_on_an_empty_queue() -> None:
    """With the event set and nothing queued, batches() waits instead of yielding empties."""
    with anyio.fail_after(HANG_TIMEOUT):
        flush = asyncio.Event()
        flush.set()
        in_q = queue_of(1)
        batches = reader(in_q).batches(minsize=10, flush_event=flush)
        assert await batches.__anext__() == [1]
        batch = asyncio.ensure_future(batches.__anext__())
        await anyio.wait_all_tasks_blocked()
        assert not batch.done()  # blocked on the empty queue, not spinning
        in_q.put_nowait(2)
        assert await batch == [2]


async def test_the_flush_event_re_arms_after_it_is_cleared() -> None:
    """Cleared after a flush, the event lets batches fill again; set again, it flushes again."""
    with anyio.fail_after(HANG_TIMEOUT):
        flush = asyncio.Event()
        flush.set()
        in_q = queue_of(1)
        batches = reader(in_q).batches(minsize=10, flush_event=flush)
        assert await batches.__anext__() == [1]
        flush.clear()
        in_q.put_nowait(2)
        batch = asyncio.ensure_future(batches.__anext__())
        await anyio.wait_all_tasks_blocked()
        assert not batch.done()  # cleared: the batch waits for minsize
        flush.set()
        assert await batch == [2]


async def test_await_stage_runs_it_and_puts_the_end_marker() -> None:
    """await stage() runs run() and then puts None on the output queue."""

    class Double(Stage):
        async def run(self) -> None:
            async for n in self.items():
                await self.put(2 * n)

    with anyio.fail_after(HANG_TIMEOUT):
        out_q: asyncio.Queue[Any] = asyncio.Queue()
        stage = Double()
        stage._connect(queue_of(1, 2, None), out_q)
        await stage()
        assert [out_q.get_nowait() for _ in range(3)] == [2, 4, None]


async def test_a_failing_stage_puts_no_end_marker() -> None:
    """An exception from run() propagates from await stage(), and no None is put."""

    class Fails(Stage):
        async def run(self) -> None:
            raise LookupError("upstream index is gone")

    with anyio.fail_after(HANG_TIMEOUT):
        out_q: asyncio.Queue[Any] = asyncio.Queue()
        stage = Fails()
        stage._connect(None, out_q)
        with pytest.raises(LookupError, match="index is gone"):
            await stage()
        assert out_q.empty()


async def test_put_none_is_refused_on_a_queue_too() -> None:
    """put(None) is a ValueError: the end marker is put by await stage(), not by run()."""
    with anyio.fail_after(HANG_TIMEOUT):
        stage = Stage()
        stage._connect(None, asyncio.Queue())
        with pytest.raises(ValueError, match=r"put\(None\)"):
            await stage.put(None)


def test_reading_a_stage_without_an_input_queue_says_so() -> None:
    """A hand-wired stage with no input queue cannot read; the error names the stage."""
    stage = EndStage()
    stage._connect(None, None)
    with pytest.raises(PipelineError, match="EndStage"):
        stage.items()


class First(Stage):
    """Puts ``count`` numbers."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def run(self) -> None:
        for number in range(self.count):
            await self.put(number)


class Middle(Stage):
    """Passes batches on, recording their sizes."""

    def __init__(self, minsize: int) -> None:
        self.minsize = minsize
        self.sizes: list[int] = []

    async def run(self) -> None:
        async for batch in self.batches(minsize=self.minsize):
            self.sizes.append(len(batch))
            for item in batch:
                await self.put(item)


class Last(Stage):
    """Collects what it reads."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def run(self) -> None:
        async for item in self.items():
            self.seen.append(item)


async def test_first_middle_last_chains_for_every_queue_size_and_minsize() -> None:
    """Hand-wired chains deliver every item in order, in full batches but the last, for up
    to 10 items, every queue size (0 is unbounded) and every minsize up to 10."""
    with anyio.fail_after(HANG_TIMEOUT * 6):
        for count in range(11):
            for maxsize in range(11):
                for minsize in range(1, 11):
                    first, middle, last = First(count), Middle(minsize), Last()
                    q1: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
                    q2: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
                    first._connect(None, q1)
                    middle._connect(q1, q2)
                    last._connect(q2, None)
                    await asyncio.gather(first(), middle(), last())
                    case = f"count={count} maxsize={maxsize} minsize={minsize}: {middle.sizes}"
                    assert last.seen == list(range(count)), case
                    assert all(size == minsize for size in middle.sizes[:-1]), case
                    assert all(0 < size <= minsize for size in middle.sizes), case


async def test_the_oldest_forms_does_batch_and_future_arguments_still_work() -> None:
    """DeclarativeContent(..., does_batch=False) never waits in a batch, and a future given
    as future=... is fulfilled with the content on resolve()."""
    with anyio.fail_after(HANG_TIMEOUT):
        given: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        urgent = DeclarativeContent(mock.Mock(), does_batch=False)
        awaited = DeclarativeContent(mock.Mock(), future=given)
        assert awaited.future is given
        assert not urgent.does_batch
        batches = reader(queue_of(mock.Mock(), urgent)).batches(minsize=10)
        assert (await batches.__anext__())[-1] is urgent
        awaited.resolve()
        assert await given is awaited.content
