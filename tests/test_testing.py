"""stageline.testing: the harness, the ready-made stages and the strategies do what they say."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stageline import DeclarativeContent, PipelineError, Stage
from stageline.testing import (
    AwaitPlan,
    DiscoveryNode,
    PassThrough,
    SampleContent,
    StageHarness,
    await_plans,
    declarative_content_lists,
    declarative_contents,
    discovery_trees,
    run_stage,
    sample_items,
    start_awaiter,
    subsets,
)


class Boom(Exception):
    """What the failing stages below raise."""


class Numbers(Stage):
    """A first stage that puts 1, 2, 3."""

    async def run(self) -> None:
        for number in (1, 2, 3):
            await self.put(number)


class FailOnSecond(Stage):
    """Passes the first item on, raises ``error`` on the second."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.exited = False

    async def run(self) -> None:
        try:
            seen = 0
            async for item in self.items():
                seen += 1
                if seen == 2:
                    raise self.error
                await self.put(item)
        finally:
            self.exited = True


class Stuck(Stage):
    """Never finishes: waits for an event nobody sets."""

    async def run(self) -> None:
        await anyio.Event().wait()


@pytest.mark.anyio
async def test_run_stage_runs_a_first_stage_without_input() -> None:
    """run_stage(stage) with no items runs a first stage and returns what it put."""
    assert await run_stage(Numbers()) == [1, 2, 3]


@pytest.mark.anyio
async def test_run_stage_raises_the_stage_exception_itself() -> None:
    """run_stage lets the stage's own exception out, not a group holding it."""
    boom = Boom()
    with pytest.raises(Boom) as raised:
        await run_stage(FailOnSecond(boom), ["a", "b", "c"])
    assert raised.value is boom


@pytest.mark.anyio
async def test_run_stage_turns_a_hang_into_timeout_error() -> None:
    """run_stage bounds the run: a stage that never finishes ends in TimeoutError."""
    with pytest.raises(TimeoutError):
        await run_stage(Stuck(), [], timeout=0)


@pytest.mark.anyio
async def test_harness_feeds_and_reads_one_item_at_a_time() -> None:
    """StageHarness hands items to the stage one by one and returns each item it puts."""
    async with StageHarness(PassThrough(), maxsize=0) as harness:
        for item in ("a", "b"):
            await harness.feed(item)
            assert await harness.next_output() == item
    assert harness.outputs == ["a", "b"]


@pytest.mark.anyio
async def test_harness_shows_a_batch_held_until_the_input_ends() -> None:
    """StageHarness.settle lets a test see a batching stage hold a short batch until input ends."""
    async with StageHarness(PassThrough(minsize=3)) as harness:
        await harness.feed_all(["a", "b"])
        await harness.settle()
        assert harness.outputs == []
        harness.end_input()
        assert [await harness.next_output(), await harness.next_output()] == ["a", "b"]
        with pytest.raises(PipelineError):
            await harness.next_output()


@pytest.mark.anyio
async def test_harness_raises_the_stage_exception_where_the_test_waits() -> None:
    """When the stage fails, next_output raises its exception itself, and so does the block."""
    boom = Boom()
    stage = FailOnSecond(boom)

    async def drive() -> None:
        async with StageHarness(stage) as harness:
            await harness.feed_all(["a", "b"])
            assert await harness.next_output() == "a"
            await harness.next_output()

    with pytest.raises(Boom) as raised:
        await drive()
    assert raised.value is boom
    assert stage.exited


@pytest.mark.anyio
async def test_harness_raises_the_stage_exception_at_the_end_of_the_block() -> None:
    """A stage failure nobody waited for comes out of the async with, unwrapped."""
    boom = Boom()
    with pytest.raises(Boom) as raised:
        async with StageHarness(FailOnSecond(boom)) as harness:
            await harness.feed_all(["a", "b"])
    assert raised.value is boom


@pytest.mark.anyio
async def test_harness_cancels_the_stage_when_the_test_body_fails() -> None:
    """An exception in the test body cancels the stage and comes out as itself."""
    stage = FailOnSecond(Boom())
    error = KeyError("from the test body")

    async def drive() -> None:
        async with StageHarness(stage) as harness:
            await harness.feed("a")
            raise error

    with pytest.raises(KeyError) as raised:
        await drive()
    assert raised.value is error
    assert stage.exited


@pytest.mark.anyio
async def test_start_awaiter_returns_once_the_task_waits() -> None:
    """start_awaiter returns with the task already waiting, so the item does not batch."""
    item = sample_items(1)[0]
    async with anyio.create_task_group() as tg:
        awaiter = await start_awaiter(tg, item)
        assert not item.does_batch
        item.resolve()
    assert awaiter.content is item.content


def test_await_plan_rejects_the_first_stage_awaiting_before_it_puts() -> None:
    """AwaitPlan refuses a first stage awaiting an item it has not put (that would deadlock)."""
    with pytest.raises(ValueError, match="cannot await"):
        AwaitPlan(0, "first_stage", "before_put")


def depth(node: DiscoveryNode) -> int:
    """Levels below ``node``."""
    return 1 + max(map(depth, node.children)) if node.children else 0


@given(
    data=st.data(),
    max_depth=st.integers(0, 4),
    max_width=st.integers(0, 4),
)
@settings(max_examples=50)
def test_discovery_trees_respect_their_bounds(
    data: st.DataObject, max_depth: int, max_width: int
) -> None:
    """discovery_trees draws trees no deeper or wider than asked, with unique node names."""
    root = data.draw(discovery_trees(max_depth, max_width))
    nodes = root.walk()
    assert depth(root) <= max_depth
    assert all(len(node.children) <= max_width for node in nodes)
    assert len({node.name for node in nodes}) == len(nodes)


@given(data=st.data(), items=declarative_content_lists(max_size=20))
@settings(max_examples=50)
def test_subsets_and_await_plans_stay_within_the_items(
    data: st.DataObject, items: list[DeclarativeContent]
) -> None:
    """subsets keeps the original order; await_plans only names existing items."""
    chosen = data.draw(subsets(items))
    positions = [next(i for i, item in enumerate(items) if item is c) for c in chosen]
    assert positions == sorted(set(positions))
    plans: list[AwaitPlan] = data.draw(await_plans(len(items)))
    assert all(0 <= plan.index < len(items) for plan in plans)


@given(item=declarative_contents(SampleContent))
@settings(max_examples=20)
def test_declarative_contents_builds_unsaved_units_of_a_content_type(
    item: DeclarativeContent,
) -> None:
    """declarative_contents(ContentType) draws unsaved units of that type, wrapped."""
    assert isinstance(item.content, SampleContent)
    assert isinstance(item.content.name, str)
    assert not item.content.saved


@pytest.mark.anyio
async def test_harness_turns_a_hang_into_timeout_error() -> None:
    """StageHarness bounds the block: waiting on a stage that never puts ends in TimeoutError."""

    async def drive() -> None:
        async with StageHarness(Stuck(), timeout=0) as harness:
            await harness.next_output()

    with pytest.raises(TimeoutError):
        await drive()
