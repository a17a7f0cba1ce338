"""The engine's fast paths keep the rules: order, batch sizes, blocking, cancellation."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from stageline import PipelineError, Stage, create_pipeline

from .stages import HANG_TIMEOUT, Collect, Feed, PassItems, RecordBatches, make_items

pytestmark = pytest.mark.anyio


class FeedThenHold(Stage):
    """Puts 0, 1 and 2, waits for ``release``, then puts 3."""

    def __init__(self, release: anyio.Event) -> None:
        self.release = release

    async def run(self) -> None:
        for i in range(3):
            await self.put(i)
        await self.release.wait()
        await self.put(3)


async def test_a_batch_fills_from_many_buffer_loads_in_order() -> None:
    """With buffers far below minsize, batches still hold minsize items, in order."""
    with anyio.fail_after(HANG_TIMEOUT):
        items = make_items(2_000)
        record = RecordBatches(minsize=500)
        collect = Collect()
        await create_pipeline([Feed(items), PassItems(), record, PassItems(), collect], maxsize=8)
        assert [len(batch) for batch in record.seen] == [500, 500, 500, 500]
        assert collect.items_seen == items


async def test_a_partly_filled_batch_with_idle_input_blocks_without_spinning() -> None:
    """A pending batch below minsize waits for input; it neither spins nor goes early."""
    with anyio.fail_after(HANG_TIMEOUT):
        record = RecordBatches(minsize=1_000)
        release = anyio.Event()

        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [FeedThenHold(release), record])
            # If batches() spun while waiting for more input, this would never return.
            await anyio.wait_all_tasks_blocked()
            assert record.seen == []
            release.set()
        assert record.seen == [[0, 1, 2, 3]]


async def test_items_and_put_with_idle_neighbours_block_without_spinning() -> None:
    """A reader whose input ran dry, and a writer whose output is full, let the others run
    once and then block: they neither spin nor lose or reorder an item."""
    with anyio.fail_after(HANG_TIMEOUT):
        release_input = anyio.Event()
        release_output = anyio.Event()
        put_count = 0

        class CountPuts(Stage):
            async def run(self) -> None:
                nonlocal put_count
                async for item in self.items():
                    await self.put(item)
                    put_count += 1

        class HoldThenCollect(Collect):
            async def run(self) -> None:
                await release_output.wait()
                await super().run()

        collect = HoldThenCollect()
        async with anyio.create_task_group() as tg:
            stages = [FeedThenHold(release_input), CountPuts(), collect]
            tg.start_soon(create_pipeline, stages, 1)
            # If the reader or the writer spun while waiting, this would never return.
            await anyio.wait_all_tasks_blocked()
            # One item in the full buffer; CountPuts waits to put the second.
            assert put_count == 1
            release_output.set()
            await anyio.wait_all_tasks_blocked()
            # The reader has taken all three and waits for more input.
            assert collect.items_seen == [0, 1, 2]
            release_input.set()
        assert collect.items_seen == [0, 1, 2, 3]


async def test_outside_cancellation_stops_stages_that_never_block() -> None:
    """A cancel from outside reaches stages whose buffers never fill or run dry."""
    with anyio.fail_after(HANG_TIMEOUT):
        count = 50_000
        collect = Collect()

        with anyio.CancelScope() as scope:

            async def cancel_at_first_chance() -> None:
                # Runs only when a stage passes through the scheduler: at a checkpoint.
                await anyio.lowlevel.checkpoint()
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_at_first_chance)
                stages = [Feed(range(count)), PassItems(), RecordBatches(minsize=500), collect]
                await create_pipeline(stages, maxsize=count)
        assert scope.cancelled_caught
        assert len(collect.items_seen) < count


async def test_an_awaited_item_that_is_never_resolved_gets_an_error() -> None:
    """An item awaited before it is put, and never resolved, fails its waiter at the end."""
    with anyio.fail_after(HANG_TIMEOUT):
        items = make_items(3)
        errors: list[PipelineError] = []

        async def await_it() -> None:
            with pytest.raises(PipelineError, match="finished without resolving") as info:
                await items[1].resolution()
            errors.append(info.value)

        async with anyio.create_task_group() as tg:
            tg.start_soon(await_it)
            await anyio.wait_all_tasks_blocked()
            await create_pipeline([Feed(items), RecordBatches(minsize=500), PassItems()])
        assert len(errors) == 1
