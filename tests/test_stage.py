"""The rules of ``Stage``: items, batches, put, backpressure, order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio
import pytest

from stageline import DeclarativeContent, PipelineError, Stage, create_pipeline

from .stages import (
    HANG_TIMEOUT,
    Collect,
    Feed,
    Gate,
    Node,
    PassBatches,
    PassItems,
    RecordBatches,
    Resolve,
    make_items,
)

pytestmark = pytest.mark.anyio


async def test_items_delivers_every_item_in_order() -> None:
    """items() delivers every item exactly once, in the order it was put."""
    with anyio.fail_after(HANG_TIMEOUT):
        collect = Collect()
        await create_pipeline([Feed(range(1000)), PassItems(), PassItems(), collect], maxsize=3)
        assert collect.items_seen == list(range(1000))


async def test_put_none_is_a_value_error() -> None:
    """put(None) raises ValueError: the end of input is returning from run()."""

    class PutsNone(Stage):
        async def run(self) -> None:
            await self.put(None)

    with anyio.fail_after(HANG_TIMEOUT):
        with pytest.raises(ValueError, match=r"put\(None\)"):
            await create_pipeline([PutsNone()])


class PutAllBatches(Stage):
    """Passes every batch on with put_all."""

    async def run(self) -> None:
        async for batch in self.batches(minsize=7):
            await self.put_all(batch)


async def test_put_all_passes_every_item_in_order_through_full_buffers() -> None:
    """put_all delivers each item once, in order, waiting while the next buffer is full."""
    with anyio.fail_after(HANG_TIMEOUT):
        collect = Collect()
        await create_pipeline([Feed(range(1000)), PutAllBatches(), PutAllBatches(), collect], 1)
        assert collect.items_seen == list(range(1000))


async def test_put_all_of_none_is_a_value_error_after_the_items_before_it() -> None:
    """put_all([a, None]) puts a, then raises put's ValueError for None, and puts nothing
    after it. (The stage catches the error itself: were it to end the pipeline, the next
    stage could be cancelled before reading what was put, as trio showed once.)"""

    class PutsAllWithNone(Stage):
        async def run(self) -> None:
            with pytest.raises(ValueError, match=r"put\(None\)"):
                await self.put_all([1, 2, None, 3])

    with anyio.fail_after(HANG_TIMEOUT):
        collect = Collect()
        await create_pipeline([PutsAllWithNone(), collect])
        assert collect.items_seen == [1, 2]


async def test_put_all_outside_a_pipeline_is_a_pipeline_error() -> None:
    """put_all without a pipeline fails as put does, saying why."""
    with pytest.raises(PipelineError, match="not running in a pipeline"):
        await PassItems().put_all([1])


async def test_put_all_after_the_next_stage_returned_is_a_pipeline_error() -> None:
    """put_all into a stage that returned without reading fails clearly, as put does."""

    class ReadsOne(Stage):
        async def run(self) -> None:
            async for _ in self.items():
                return

    class PutsAllLate(Stage):
        async def run(self) -> None:
            await self.put(0)
            await anyio.wait_all_tasks_blocked()  # ReadsOne has returned by then
            await self.put_all(range(1, 100))

    with anyio.fail_after(HANG_TIMEOUT):
        with pytest.raises(PipelineError, match="next stage has already returned"):
            await create_pipeline([PutsAllLate(), ReadsOne()], maxsize=1)


async def test_put_all_goes_through_an_overridden_put() -> None:
    """A subclass that overrides put() sees every item put_all passes on."""

    class CountingPutAll(PutAllBatches):
        def __init__(self) -> None:
            self.seen: list[Any] = []

        async def put(self, item: Any) -> None:
            self.seen.append(item)
            await super().put(item)

    with anyio.fail_after(HANG_TIMEOUT):
        counting, collect = CountingPutAll(), Collect()
        await create_pipeline([Feed(range(20)), counting, collect])
        assert counting.seen == collect.items_seen == list(range(20))


async def test_put_outside_a_pipeline_is_a_pipeline_error() -> None:
    """A stage that is not in a pipeline cannot put, and says why."""
    with pytest.raises(PipelineError, match="not running in a pipeline"):
        await PassItems().put(1)


async def test_first_stage_has_no_input() -> None:
    """Reading from the first stage is a PipelineError naming the stage."""

    class ReadsFirst(Stage):
        async def run(self) -> None:
            async for _ in self.items():
                pass

    with anyio.fail_after(HANG_TIMEOUT):
        with pytest.raises(PipelineError, match="ReadsFirst is the first stage"):
            await create_pipeline([ReadsFirst()])


async def test_run_must_be_implemented() -> None:
    """A Stage subclass without run() fails with NotImplementedError naming the class."""

    class Lazy(Stage):
        pass

    with anyio.fail_after(HANG_TIMEOUT):
        with pytest.raises(NotImplementedError, match="Lazy must implement"):
            await create_pipeline([Lazy()])


@pytest.mark.parametrize("minsize", [0, -1, True, 2.5, "3"])
async def test_batches_rejects_a_bad_minsize(minsize: Any) -> None:
    """batches(minsize) must be an int >= 1; the message shows the value received."""
    with anyio.fail_after(HANG_TIMEOUT):
        with pytest.raises(ValueError, match="minsize"):
            await create_pipeline([Feed([1]), RecordBatches(minsize=minsize)])


async def test_batches_reach_minsize_except_the_last() -> None:
    """Batches hold minsize items while input lasts; only the last may be smaller."""
    with anyio.fail_after(HANG_TIMEOUT):
        record = RecordBatches(minsize=10)
        collect = Collect()
        await create_pipeline([Feed(range(95)), record, collect], maxsize=4)
        sizes = [len(b) for b in record.seen]
        assert all(size >= 10 for size in sizes[:-1]), sizes
        assert sizes[-1] > 0
        assert [x for b in record.seen for x in b] == list(range(95))
        assert collect.items_seen == list(range(95))


async def test_batches_end_of_input_yields_a_short_last_batch() -> None:
    """When the input ends, the pending batch is yielded even below minsize."""
    with anyio.fail_after(HANG_TIMEOUT):
        record = RecordBatches(minsize=500)
        await create_pipeline([Feed(range(7)), record])
        assert record.seen == [list(range(7))]


async def test_batches_of_an_empty_input_yield_nothing() -> None:
    """No input, no batch: batches are never empty."""
    with anyio.fail_after(HANG_TIMEOUT):
        record = RecordBatches(minsize=5)
        await create_pipeline([Feed([]), record])
        assert record.seen == []


async def test_awaiting_an_item_in_a_pending_batch_flushes_the_batch() -> None:
    """resolution() on an item waiting in a partly filled batch makes that batch go now."""
    with anyio.fail_after(HANG_TIMEOUT):
        items = make_items(3)
        record = RecordBatches(minsize=1000)
        hold_input = anyio.Event()
        got: list[Node] = []

        class FeedThenHold(Stage):
            async def run(self) -> None:
                for d in items:
                    await self.put(d)
                # Keep the input open: without the thaw, the batch would wait for more items.
                await hold_input.wait()

        async def await_middle() -> None:
            got.append(await items[1].resolution())
            hold_input.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [FeedThenHold(), record, Resolve()])
            await anyio.wait_all_tasks_blocked()
            assert record.seen == []  # the batch is pending, below minsize
            tg.start_soon(await_middle)
        assert got == [items[1].content]
        assert record.seen == [items]


async def test_item_awaited_before_it_is_put_does_not_wait_for_a_batch() -> None:
    """An item whose does_batch is False (already awaited) thaws the batch it joins."""
    with anyio.fail_after(HANG_TIMEOUT):
        items = make_items(2)
        hold_input = anyio.Event()
        record = RecordBatches(minsize=1000)
        got: list[Node] = []

        async def await_first() -> None:
            got.append(await items[0].resolution())
            hold_input.set()

        class FeedThenHold(Stage):
            async def run(self) -> None:
                await anyio.wait_all_tasks_blocked()
                assert not items[0].does_batch
                for d in items:
                    await self.put(d)
                await hold_input.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(await_first)
            await create_pipeline([FeedThenHold(), record, Resolve()])
        assert got == [items[0].content]
        assert record.seen[0][0] is items[0]


async def test_flush_event_yields_the_pending_batch() -> None:
    """A set flush_event makes the pending batch go without waiting for minsize."""
    with anyio.fail_after(HANG_TIMEOUT):
        flush = anyio.Event()
        record = RecordBatches(minsize=1000, flush_event=flush)
        release = anyio.Event()

        class FeedThenFlush(Stage):
            async def run(self) -> None:
                for i in range(5):
                    await self.put(i)
                await anyio.wait_all_tasks_blocked()
                assert record.seen == []
                flush.set()
                await anyio.wait_all_tasks_blocked()
                assert record.seen == [[0, 1, 2, 3, 4]]
                await release.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [FeedThenFlush(), record])
            await anyio.wait_all_tasks_blocked()
            release.set()
        assert record.seen == [[0, 1, 2, 3, 4]]


async def test_set_flush_event_never_spins_on_an_empty_batch() -> None:
    """With the flush event set and no input, batches() blocks instead of yielding empties."""
    with anyio.fail_after(HANG_TIMEOUT):
        flush = anyio.Event()
        flush.set()
        record = RecordBatches(minsize=1000, flush_event=flush)
        step = anyio.Event()
        done = anyio.Event()

        class SlowFeed(Stage):
            async def run(self) -> None:
                await self.put(1)
                await step.wait()
                await self.put(2)
                await done.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [SlowFeed(), record])
            # If batches() spun on the set event, this would never return.
            await anyio.wait_all_tasks_blocked()
            assert record.seen == [[1]]
            step.set()
            await anyio.wait_all_tasks_blocked()
            assert record.seen == [[1], [2]]
            done.set()
        assert record.seen == [[1], [2]]


@pytest.mark.parametrize(
    ("middle", "bound"),
    [
        # Two buffers of 4, plus one item held by PassItems while it waits to put it.
        pytest.param(PassItems, 2 * 4 + 1, id="items"),
        # A batching stage may also hold a whole pending batch of minsize.
        pytest.param(lambda: PassBatches(minsize=50), 4 + 50 + 4 + 1, id="batches"),
    ],
)
async def test_backpressure_bounds_how_far_a_fast_stage_runs_ahead(
    middle: Callable[[], Stage], bound: int
) -> None:
    """A fast first stage can be ahead of a stalled reader only by the buffers and batches
    between them."""
    with anyio.fail_after(HANG_TIMEOUT):
        put_count = 0
        gate = Gate()

        class Counting(Stage):
            async def run(self) -> None:
                nonlocal put_count
                for i in range(10_000):
                    await self.put(i)
                    put_count += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [Counting(), middle(), gate], 4)
            await anyio.wait_all_tasks_blocked()
            assert put_count <= bound
            gate.open.set()
        assert put_count == 10_000


async def test_a_stage_that_stops_reading_early_is_a_clear_error() -> None:
    """A stage returning with unread input makes the previous stage's put fail clearly."""

    class TakeOne(Stage):
        async def run(self) -> None:
            async for _ in self.items():
                return

    with anyio.fail_after(HANG_TIMEOUT):
        with pytest.raises(PipelineError, match="next stage has already returned"):
            await create_pipeline([Feed(range(100)), TakeOne()], maxsize=1)


async def test_items_work_with_plain_objects() -> None:
    """The engine passes any object but None; it does not require DeclarativeContent."""
    with anyio.fail_after(HANG_TIMEOUT):
        things: Sequence[object] = ["a", 1, ("t",), object()]
        collect = Collect()
        await create_pipeline([Feed(things), PassBatches(minsize=2), PassItems(), collect])
        assert collect.items_seen == list(things)


async def test_checkpoints_let_other_tasks_run_during_a_long_fast_path() -> None:
    """A stage that never blocks still yields to the scheduler (cancellation stays prompt)."""
    with anyio.fail_after(HANG_TIMEOUT):
        ticks = 0
        stop = anyio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await anyio.lowlevel.checkpoint()

        class Drain(Stage):
            async def run(self) -> None:
                async for _ in self.items():
                    pass
                stop.set()

        # maxsize larger than the item count: neither side ever has to block.
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await create_pipeline([Feed(range(5000)), Drain()], maxsize=10_000)
        assert ticks > 10


async def test_declarative_content_passes_through_batches_unchanged() -> None:
    """DeclarativeContent items keep identity and order through batching stages."""
    with anyio.fail_after(HANG_TIMEOUT):
        items = make_items(300)
        collect = Collect()
        await create_pipeline(
            [Feed(items), PassBatches(minsize=7), PassBatches(minsize=64), collect], maxsize=5
        )
        assert collect.items_seen == items
        assert all(isinstance(d, DeclarativeContent) for d in collect.items_seen)
