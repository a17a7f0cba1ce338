"""The item protocol: the engine sees items only through ``does_batch``, ``enter_batch``,
``pipeline``/``enter_pipeline`` and ``pipeline_ended``, so a plugin's own item class works."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import anyio
import attrs
import pytest

from stageline import (
    DeclarativeContent,
    PipelineHandle,
    PipelineItem,
    Resolvable,
    Stage,
    create_pipeline,
    current_pipeline,
)
from stageline._resolvable import batch_hooks

from .stages import (
    HANG_TIMEOUT,
    Collect,
    Feed,
    Node,
    PassBatches,
    PassItems,
    RecordBatches,
    Resolve,
)

pytestmark = pytest.mark.anyio


class FeedThenHold(Stage):
    """Puts the items, then keeps its output open until ``release`` is set, so that a
    batching stage after it never sees the end of its input while the test looks."""

    def __init__(self, items: list[Any]) -> None:
        self.to_put = items
        self.release = anyio.Event()

    async def run(self) -> None:
        for item in self.to_put:
            await self.put(item)
        await self.release.wait()


class Urgent:
    """A plain item class that says, on its class, that it never waits for a batch."""

    does_batch: ClassVar[bool] = False


class Ticket:
    """An item class of a plugin's own: the whole protocol, without Resolvable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pipeline: PipelineHandle | None = current_pipeline()
        self.wake: Callable[[], None] | None = None
        self.waiters = 0
        self.finished = False
        self.ended: tuple[str, BaseException | None] | None = None
        self.calls: list[str] = []
        self._done: anyio.Event | None = None

    @property
    def does_batch(self) -> bool:
        return self.waiters == 0 or self.finished

    def enter_batch(self, wake: Callable[[], None]) -> None:
        self.calls.append("enter_batch")
        self.wake = wake

    def enter_pipeline(self, pipeline: PipelineHandle) -> None:
        self.calls.append("enter_pipeline")
        self.pipeline = pipeline
        if self.waiters:
            pipeline.watch(self)

    def pipeline_ended(self, message: str, cause: BaseException | None) -> None:
        if not self.finished:  # a finished ticket may still be watched: its waiters run later
            self.ended = (message, cause)
            self.done.set()

    @property
    def done(self) -> anyio.Event:
        if self._done is None:
            self._done = anyio.Event()
        return self._done

    def finish(self) -> None:
        self.finished = True
        self.done.set()

    async def wait(self) -> None:
        self.waiters += 1
        if self.pipeline is not None:
            self.pipeline.watch(self)
        if self.wake is not None:
            self.wake()
        await self.done.wait()


class Finish(Stage):
    """Finishes every Ticket it passes on (what ResolveContentFutures is to content)."""

    async def run(self) -> None:
        async for ticket in self.items():
            ticket.finish()
            await self.put(ticket)


def test_the_protocol_is_public_and_resolvable_implements_it() -> None:
    """The protocol and its reference implementation are public names of stageline."""
    d: PipelineItem = DeclarativeContent(Node(name="n"))
    assert isinstance(d, Resolvable)
    for member in ("does_batch", "enter_batch", "pipeline", "enter_pipeline", "pipeline_ended"):
        assert hasattr(d, member), member


async def test_an_item_class_whose_does_batch_is_false_makes_its_batch_go_at_once() -> None:
    """A plain class with ``does_batch = False`` makes the pending batch go without waiting."""
    urgent = Urgent()
    first = FeedThenHold([1, 2, urgent])
    record = RecordBatches(minsize=1000)
    with anyio.fail_after(HANG_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [first, record, Collect()])
            await anyio.wait_all_tasks_blocked()
            assert record.seen == [[1, 2, urgent]]
            first.release.set()


async def test_an_item_subclass_with_its_own_does_batch_is_asked() -> None:
    """A DeclarativeContent subclass whose does_batch is always False is not held back."""

    class IndexItem(DeclarativeContent):
        @property
        def does_batch(self) -> bool:
            return False

    index = IndexItem(Node(name="repodata"))
    first = FeedThenHold([index])
    record = RecordBatches(minsize=1000)
    with anyio.fail_after(HANG_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [first, record, Collect()])
            await anyio.wait_all_tasks_blocked()
            assert record.seen == [[index]]
            first.release.set()


async def test_an_item_subclass_with_its_own_enter_batch_is_told() -> None:
    """The engine writes Resolvable's own batching members out inline; a subclass that
    overrides one of them still has it called, and an awaited item still wakes its
    batch."""
    told: list[str] = []

    class Logged(DeclarativeContent):
        def enter_batch(self, wake: Callable[[], None]) -> None:
            told.append(self.content.name)
            super().enter_batch(wake)

    assert batch_hooks(DeclarativeContent) == (True, True, True)
    assert batch_hooks(Logged) == (True, True, False)
    items = [Logged(Node(name="a")), Logged(Node(name="b"))]
    first = FeedThenHold(items)
    record = RecordBatches(minsize=1000)
    with anyio.fail_after(HANG_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [first, record, Resolve(), Collect()])
            await anyio.wait_all_tasks_blocked()
            assert (told, record.seen) == (["a", "b"], [])
            await items[1].resolution()  # returns only if the batch went on
            assert record.seen == [items]
            first.release.set()


async def test_a_plugin_item_awaited_in_a_pending_batch_wakes_it_through_the_protocol() -> None:
    """An item class of a plugin's own is told its batch's ``wake`` and its pipeline, and
    calling ``wake()`` when awaited makes a partly filled batch go at once."""
    tickets = [Ticket("a"), Ticket("b")]
    first = FeedThenHold(tickets)
    record = RecordBatches(minsize=1000)
    with anyio.fail_after(HANG_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [first, record, Finish()])
            await anyio.wait_all_tasks_blocked()
            assert record.seen == []  # below minsize, nobody waiting: the batch is held
            assert all(t.calls == ["enter_pipeline", "enter_batch"] for t in tickets)
            await tickets[1].wait()  # returns only if the batch went on to Finish
            assert record.seen == [tickets]
            first.release.set()
    assert tickets[1].ended is None


async def test_a_plugin_item_dropped_unfinished_is_told_when_the_pipeline_ends() -> None:
    """The pipeline calls ``pipeline_ended`` on an awaited item it never finished."""
    ticket = Ticket("dropped")

    class Drop(Stage):
        async def run(self) -> None:
            async for _ in self.items():
                pass

    with anyio.fail_after(HANG_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticket.wait)
            await anyio.wait_all_tasks_blocked()
            await create_pipeline([Feed([ticket]), Drop()])
    assert ticket.ended == ("the pipeline finished without resolving this item", None)


async def test_a_plugin_item_made_in_a_stage_belongs_to_its_pipeline_from_birth() -> None:
    """``current_pipeline()`` inside a stage is the pipeline a later put enters."""
    made: list[Ticket] = []

    class Make(Stage):
        async def run(self) -> None:
            made.append(Ticket("born here"))
            await self.put(made[0])

    assert current_pipeline() is None
    with anyio.fail_after(HANG_TIMEOUT):
        await create_pipeline([Make(), PassItems()])
    assert made[0].pipeline is not None
    assert made[0].calls == []  # born in the pipeline: nothing to enter


async def test_plain_objects_are_left_alone() -> None:
    """Objects outside the protocol, even ones refusing every attribute write, pass as is."""

    @attrs.frozen
    class Frozen:
        value: int

    things = [Frozen(1), "text", 3, (4,), Frozen(5)]
    collect = Collect()
    with anyio.fail_after(HANG_TIMEOUT):
        await create_pipeline([Feed(things), PassBatches(minsize=2), PassItems(), collect])
    assert collect.items_seen == things


async def test_a_resolvable_subclass_with_validated_fields_works() -> None:
    """A plugin's attrs subclass of Resolvable, with validators and attrs' own __eq__
    (which makes it unhashable), is awaited, watched and resolved."""

    @attrs.define
    class Job(Resolvable):
        name: str = attrs.field(validator=attrs.validators.instance_of(str))

    jobs = [Job(name=str(i)) for i in range(5)]
    got: list[str] = []

    class PutThenAwait(Stage):
        async def run(self) -> None:
            for job in jobs:
                await self.put(job)
            await jobs[2].wait_resolved()
            got.append(jobs[2].name)

    with anyio.fail_after(HANG_TIMEOUT):
        await create_pipeline([PutThenAwait(), PassBatches(minsize=100), Resolve()])
    assert got == ["2"]
    assert all(job.resolved for job in jobs)


async def test_each_batching_member_is_optional() -> None:
    """A class with enter_batch but no does_batch still gets the waker, and waking it makes
    the pending batch go."""

    class WakesAtOnce:
        def enter_batch(self, wake: Callable[[], None]) -> None:
            wake()

    item = WakesAtOnce()
    first = FeedThenHold([1, item])
    record = RecordBatches(minsize=1000)
    with anyio.fail_after(HANG_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [first, record, Collect()])
            await anyio.wait_all_tasks_blocked()
            assert record.seen == [[1, item]]
            first.release.set()


async def test_an_object_whose_pipeline_attribute_means_something_else_is_left_alone() -> None:
    """A plain object with its own ``pipeline`` attribute (and no enter_pipeline) flows."""

    @attrs.frozen
    class Job:
        pipeline: str

    jobs = [Job(pipeline="nightly"), Job(pipeline="weekly")]
    collect = Collect()
    with anyio.fail_after(HANG_TIMEOUT):
        await create_pipeline([Feed(jobs), PassBatches(minsize=5), PassItems(), collect])
    assert collect.items_seen == jobs
    assert [job.pipeline for job in jobs] == ["nightly", "weekly"]
