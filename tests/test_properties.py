"""Property tests of the engine rules (DESIGN.md §2, §3, §8), on asyncio and trio.

Every run is bounded by ``anyio.fail_after(TIMEOUT)``: a deadlock fails the example with
``TimeoutError`` instead of hanging. The bound is never part of an assertion.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from stageline import DeclarativeContent, PipelineError, Stage, create_pipeline
from stageline.testing import (
    DEFAULT_TIMEOUT,
    Awaiter,
    AwaitPlan,
    Collector,
    Discoverer,
    DiscoveryNode,
    Feeder,
    PassThrough,
    PipelineShape,
    PlannedAwaits,
    Resolver,
    StageShape,
    await_plans,
    buffer_sizes,
    discovery_trees,
    failure_plans,
    minsizes,
    pipeline_shapes,
    run_stage,
    sample_items,
    stage_shapes,
    subsets,
)

TIMEOUT = DEFAULT_TIMEOUT

#: No deadline (the first example on trio imports and warms up), few examples per
#: backend so that the whole module stays within seconds. For a long hunt, scale them:
#: STAGELINE_PROPERTY_SCALE=20 bash scripts/test tests/test_properties.py --timeout=0
SCALE = float(os.environ.get("STAGELINE_PROPERTY_SCALE", "1"))

#: Every example is bounded by TIMEOUT, but shrinking re-runs a failing example hundreds
#: of times, and one that hangs costs TIMEOUT each time: unbounded, a deadlock would
#: outlast pytest's timeout and end without a report. So by default a failure is reported
#: as found, at most about two TIMEOUTs after it happens (Hypothesis prints the falsifying
#: example and keeps it in its example database). To shrink it, run again with
#: STAGELINE_PROPERTY_SHRINK=1 (and --timeout=0): the saved failure is replayed first.
PHASES = (
    tuple(Phase)
    if os.environ.get("STAGELINE_PROPERTY_SHRINK")
    else (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
)
fast = settings(deadline=None, max_examples=max(1, int(60 * SCALE)), phases=PHASES)
heavy = settings(deadline=None, max_examples=max(1, int(25 * SCALE)), phases=PHASES)


def plans_for_an_interrupted_pipeline(count: int) -> st.SearchStrategy[list[AwaitPlan]]:
    """Await plans for a pipeline that may stop early.

    Outside awaiters start only once their item was put: an item that never entered a
    pipeline has no pipeline to abandon it (see the last section of docs/testing.md).
    """
    inside = await_plans(count, awaiters=("first_stage", "stage_task"), max_plans=6)
    outside = await_plans(
        count, awaiters=("outside_task",), moments=("after_put", "in_batch"), max_plans=4
    )
    return st.tuples(inside, outside).map(lambda pair: pair[0] + pair[1])


#: Each moment with an "in_batch" await costs a wait_all_tasks_blocked(), which polls
#: every 0.1 s on asyncio: a bounded number keeps every example far from TIMEOUT.
MAX_PLANS = 12


class Boom(Exception):
    """The error a stage raises in the failure properties."""


def assert_same(actual: Sequence[Any], expected: Sequence[Any]) -> None:
    """``actual`` holds exactly the objects of ``expected``, in the same order."""
    assert len(actual) == len(expected)
    for position, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert got is want, f"position {position}: got {got!r}, expected {want!r}"


def check_batches(stage: PassThrough) -> None:
    """The batch rules: never empty; short only when last, awaited or flushed."""
    assert stage.minsize is not None
    records = stage.batches_seen
    for number, record in enumerate(records):
        assert record.items, f"{stage!r} yielded an empty batch"
        short = len(record.items) < stage.minsize
        last = number == len(records) - 1
        assert not short or last or record.awaited or record.flushed, (
            f"{stage!r}: batch {number} of {len(records)} holds {len(record.items)} items, "
            "but it is not the last, holds no awaited item and was not flushed"
        )


def check_awaiters_got_content(awaiters: Sequence[Awaiter]) -> None:
    """Every awaiter finished with its item's content."""
    for awaiter in awaiters:
        assert awaiter.done.is_set(), f"{awaiter.plan!r} is still waiting"
        assert awaiter.error is None, f"{awaiter.plan!r}: {awaiter.error!r}"
        assert not awaiter.cancelled, f"{awaiter.plan!r} was cancelled"
        assert awaiter.content is awaiter.item.content


@pytest.mark.anyio
@given(shape=pipeline_shapes(max_items=300, max_minsize=600), plain=st.booleans())
@fast
async def test_every_item_reaches_the_end_once_and_in_order(
    shape: PipelineShape, plain: bool
) -> None:
    """Every item put reaches the end exactly once and in order, through any mix of stages."""
    items: list[Any] = (
        [object() for _ in range(shape.item_count)] if plain else sample_items(shape.item_count)
    )
    middle = shape.build()
    collector = Collector()
    with anyio.fail_after(TIMEOUT):
        await create_pipeline([Feeder(items), *middle, collector], maxsize=shape.maxsize)
    for stage in middle:
        assert_same(stage.seen, items)
    assert_same(collector.collected, items)


class FlushingPlannedAwaits(PlannedAwaits):
    """PlannedAwaits that sets a flush event when it starts putting item ``flush_at``."""

    def __init__(self, *args: Any, flush_event: anyio.Event, flush_at: int | None, **kw: Any):
        super().__init__(*args, **kw)
        self.flush_event = flush_event
        self.flush_at = flush_at

    async def put(self, item: Any) -> None:
        if self.flush_at is not None and self.started_puts > self.flush_at:
            self.flush_event.set()
        await super().put(item)


@pytest.mark.anyio
@given(data=st.data(), shape=pipeline_shapes(max_items=120, max_minsize=200))
@fast
@pytest.mark.slow
async def test_batches_are_full_unless_last_awaited_or_flushed(
    data: st.DataObject, shape: PipelineShape
) -> None:
    """Batches: non-empty, only items already put, full unless last, awaited or flushed."""
    items = sample_items(shape.item_count)
    plans = data.draw(await_plans(len(items), max_plans=6), label="plans")
    flush_at = data.draw(st.none() | st.integers(0, max(len(items) - 1, 0)), label="flush_at")
    flush_event = anyio.Event()
    position = {id(item): index for index, item in enumerate(items)}

    def only_items_already_put(batch: list[Any]) -> None:
        for item in batch:
            assert position[id(item)] < first.started_puts

    middle = shape.build(flush_event=flush_event, on_batch=only_items_already_put)
    collector = Collector()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as outside:
            first = FlushingPlannedAwaits(
                items, plans, outside=outside, flush_event=flush_event, flush_at=flush_at
            )
            await create_pipeline([first, *middle, Resolver(), collector], maxsize=shape.maxsize)
    assert_same(collector.collected, items)
    for stage in middle:
        if stage.minsize is not None:
            check_batches(stage)
    check_awaiters_got_content(first.awaiters)


@pytest.mark.anyio
@given(
    data=st.data(),
    count=st.integers(1, 40),
    batching=st.lists(stage_shapes(max_minsize=10_000), max_size=3),
    minsize=minsizes(max_minsize=10_000),
    maxsize=buffer_sizes(max_buffer=16),
)
@fast
@pytest.mark.slow
async def test_every_awaiter_gets_its_content_and_the_pipeline_ends(
    data: st.DataObject,
    count: int,
    batching: list[StageShape],
    minsize: int,
    maxsize: int,
) -> None:
    """Any awaited subset, by anyone, at any moment, resolves and ends, minsize up to 10 000."""
    items = sample_items(count)
    plans = data.draw(await_plans(count, max_plans=MAX_PLANS), label="plans")
    # At least one batching stage, so that an awaited item can sit in a partial batch.
    middle = [PassThrough(minsize=minsize), *(shape.build() for shape in batching)]
    resolver = Resolver()
    collector = Collector()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as outside:
            first = PlannedAwaits(items, plans, outside=outside)
            await create_pipeline([first, *middle, resolver, collector], maxsize=maxsize)
    assert len(first.awaiters) == len(plans)
    check_awaiters_got_content(first.awaiters)
    assert_same(resolver.resolved, items)
    assert_same(collector.collected, items)


class ConcurrentWorkers(Stage):
    """Handles up to ``limit`` items at once, each in its own task, like a downloader.

    Each item takes a few scheduler rounds (fixed by its natural key, so runs repeat), so
    items leave in a different order than they came.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def run(self) -> None:
        slots = anyio.Semaphore(self.limit)
        async with anyio.create_task_group() as tg:
            async for item in self.items():
                await slots.acquire()
                tg.start_soon(self.work, item, slots)

    async def work(self, item: DeclarativeContent, slots: anyio.Semaphore) -> None:
        try:
            for _ in range(sum(map(ord, str(item.content.natural_key()))) % 4):
                await anyio.lowlevel.checkpoint()
            await self.put(item)
        finally:
            slots.release()


@pytest.mark.anyio
@given(
    roots=st.integers(1, 3).flatmap(
        lambda n: st.tuples(
            *(discovery_trees(max_depth=4, max_width=3, root_name=str(i)) for i in range(n))
        )
    ),
    concurrent=st.booleans(),
    before=st.lists(stage_shapes(max_minsize=10_000), max_size=3),
    after=st.lists(stage_shapes(max_minsize=10_000), max_size=2),
    workers=st.none() | st.tuples(st.integers(0, 3), st.integers(1, 4)),
    maxsize=buffer_sizes(max_buffer=16),
)
@fast
async def test_multi_level_discovery_delivers_every_node_once_after_its_parent(
    roots: tuple[DiscoveryNode, ...],
    concurrent: bool,
    before: list[StageShape],
    after: list[StageShape],
    workers: tuple[int, int] | None,
    maxsize: int,
) -> None:
    """Discovery delivers every node once, each child after its parent resolved, no deadlock."""
    discoverer = Discoverer(roots, concurrent=concurrent)
    collector = Collector()
    middle: list[Stage] = [shape.build() for shape in before]
    if workers is not None:
        position, limit = workers
        middle.insert(min(position, len(middle)), ConcurrentWorkers(limit))
    stages: list[Stage] = [
        discoverer,
        *middle,
        Resolver(),
        *(shape.build() for shape in after),
        collector,
    ]
    with anyio.fail_after(TIMEOUT):
        await create_pipeline(stages, maxsize=maxsize)

    nodes = [node for root in roots for node in root.walk()]
    arrived = [discoverer.node_for[item] for item in collector.collected]
    assert len(arrived) == len(nodes)
    assert {id(node) for node in arrived} == {id(node) for node in nodes}
    arrival = {id(node): index for index, node in enumerate(arrived)}
    event_at = {(kind, id(node)): index for index, (kind, node) in enumerate(discoverer.log)}
    for parent in nodes:
        for child in parent.children:
            assert event_at["resolved", id(parent)] < event_at["put", id(child)]
            assert arrival[id(parent)] < arrival[id(child)]


class ResolveChosen(Stage):
    """Resolves the chosen items; drops them when ``drop``, passes every other item on."""

    def __init__(self, chosen: Sequence[DeclarativeContent], *, drop: bool) -> None:
        self.chosen = {id(item) for item in chosen}
        self.drop = drop

    async def run(self) -> None:
        async for item in self.items():
            if id(item) in self.chosen:
                item.resolve()
                if self.drop:
                    continue
            await self.put(item)


@pytest.mark.anyio
@given(
    data=st.data(),
    count=st.integers(0, 40),
    before=st.lists(stage_shapes(max_minsize=10_000), max_size=2),
    after=st.lists(stage_shapes(max_minsize=10_000), max_size=2),
    maxsize=buffer_sizes(max_buffer=16),
)
@fast
@pytest.mark.slow
async def test_items_resolved_early_wake_their_awaiters_and_go_no_further(
    data: st.DataObject,
    count: int,
    before: list[StageShape],
    after: list[StageShape],
    maxsize: int,
) -> None:
    """Items a middle stage resolve()s and drops wake their awaiters and go no further."""
    items = sample_items(count)
    dropped = data.draw(subsets(items), label="dropped")
    plans = data.draw(await_plans(count, max_plans=MAX_PLANS), label="plans")
    dropped_ids = {id(item) for item in dropped}
    kept = [item for item in items if id(item) not in dropped_ids]
    later = [shape.build() for shape in after]
    resolver = Resolver()
    collector = Collector()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as outside:
            first = PlannedAwaits(items, plans, outside=outside)
            stages: list[Stage] = [
                first,
                *(shape.build() for shape in before),
                ResolveChosen(dropped, drop=True),
                *later,
                resolver,
                collector,
            ]
            await create_pipeline(stages, maxsize=maxsize)
    check_awaiters_got_content(first.awaiters)
    assert all(item.resolved for item in items)
    for stage in later:
        assert_same(stage.seen, kept)
    assert_same(resolver.resolved, kept)
    assert_same(collector.collected, kept)


@pytest.mark.anyio
@given(data=st.data(), shape=pipeline_shapes(max_items=40, max_minsize=10_000, max_buffer=16))
@fast
async def test_a_failing_stage_ends_the_pipeline_with_its_exception(
    data: st.DataObject, shape: PipelineShape
) -> None:
    """A stage raising anywhere ends the pipeline with that exception; nothing runs or hangs."""
    items = sample_items(shape.item_count)
    plans = data.draw(plans_for_an_interrupted_pipeline(len(items)), label="plans")
    stage_count = len(shape.stages) + 3  # first stage, middle stages, resolver, collector
    plan = data.draw(failure_plans(stage_count, max_items=len(items) + 1), label="failure")
    boom = Boom(f"stage {plan.stage_index} after {plan.after_items} items")

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as outside:
            first = PlannedAwaits(items, plans, outside=outside)
            stages = [first, *shape.build(), Resolver(), Collector()]
            stages[plan.stage_index].fail_after = plan.after_items
            stages[plan.stage_index].error = boom
            with pytest.raises(Boom) as raised:
                await create_pipeline(stages, maxsize=shape.maxsize)
        # Leaving the task group means every outside awaiter has finished.

    assert raised.value is boom
    for stage in stages:
        assert stage.exited, f"{stage!r} is still running"
    for awaiter in first.awaiters:
        assert awaiter.done.is_set()
        assert awaiter.plan is not None
        if awaiter.content is not None:
            assert awaiter.item.resolved
        elif awaiter.plan.awaiter == "outside_task":
            # Outside the pipeline nothing cancels it: it must be told with an error.
            assert isinstance(awaiter.error, PipelineError)
            assert awaiter.error.__cause__ is boom
        else:
            assert awaiter.cancelled or isinstance(awaiter.error, PipelineError)


class RoundFeeder(Stage):
    """Puts items in rounds; after each, waits for them at the collector and for quiet."""

    def __init__(
        self,
        rounds: Sequence[list[DeclarativeContent]],
        flush_event: anyio.Event,
        collector: Collector,
    ) -> None:
        self.rounds = rounds
        self.flush_event = flush_event
        self.collector = collector
        self.held_before_flush: list[Any] | None = None

    async def run(self) -> None:
        total = 0
        for number, batch in enumerate(self.rounds):
            for item in batch:
                await self.put(item)
            total += len(batch)
            if number == 0:
                # Below minsize and no flush yet: the batch must wait for more.
                await anyio.wait_all_tasks_blocked()
                self.held_before_flush = list(self.collector.collected)
                self.flush_event.set()
            await self.collector.wait_for(total)
            # Returns only if the batching stage blocks: a set event must not make it spin.
            await anyio.wait_all_tasks_blocked()


@pytest.mark.anyio
@given(
    data=st.data(),
    minsize=st.integers(2, 10_000),
    maxsize=buffer_sizes(max_buffer=16),
)
@heavy
@pytest.mark.slow
async def test_a_set_flush_event_yields_pending_batches_without_spinning(
    data: st.DataObject, minsize: int, maxsize: int
) -> None:
    """A set flush event yields pending batches below minsize and never spins on an empty one."""
    sizes = data.draw(
        st.lists(st.integers(1, min(minsize - 1, 30)), min_size=1, max_size=3), label="rounds"
    )
    rounds = [sample_items(size, prefix=f"r{n}.") for n, size in enumerate(sizes)]
    flush_event = anyio.Event()
    batching = PassThrough(minsize=minsize, flush_event=flush_event)
    collector = Collector()
    feeder = RoundFeeder(rounds, flush_event, collector)
    with anyio.fail_after(TIMEOUT):
        await create_pipeline([feeder, batching, collector], maxsize=maxsize)

    assert feeder.held_before_flush == []
    assert_same(collector.collected, [item for batch in rounds for item in batch])
    round_of = {id(item): n for n, batch in enumerate(rounds) for item in batch}
    for record in batching.batches_seen:
        assert record.items
        assert record.flushed
        assert len({round_of[id(item)] for item in record.items}) == 1


@pytest.mark.anyio
@given(
    items=st.lists(st.integers()),
    minsize=st.none() | minsizes(max_minsize=600),
    maxsize=buffer_sizes(),
)
@fast
async def test_run_stage_returns_what_the_stage_put(
    items: list[int], minsize: int | None, maxsize: int
) -> None:
    """run_stage feeds a stage through a real pipeline and returns everything it put, in order."""
    assert await run_stage(PassThrough(minsize=minsize), items, maxsize=maxsize) == items


@pytest.mark.anyio
@given(data=st.data(), shape=pipeline_shapes(max_items=30, max_minsize=50, max_buffer=16))
@fast
async def test_awaiting_an_item_after_its_pipeline_ended_never_hangs(
    data: st.DataObject, shape: PipelineShape
) -> None:
    """After a pipeline ended, resolution() returns resolved content, else raises PipelineError."""
    items = sample_items(shape.item_count)
    resolved = data.draw(subsets(items), label="resolved")
    fails = data.draw(st.booleans(), label="fails")
    boom = Boom("the last stage fails at the end of its input")
    last = Collector(fail_after=len(items), error=boom) if fails else Collector()
    stages = [Feeder(items), ResolveChosen(resolved, drop=False), *shape.build(), last]
    with anyio.fail_after(TIMEOUT):
        if fails:
            with pytest.raises(Boom):
                await create_pipeline(stages, maxsize=shape.maxsize)
        else:
            await create_pipeline(stages, maxsize=shape.maxsize)
        resolved_ids = {id(item) for item in resolved}
        for item in items:
            if id(item) in resolved_ids:
                assert await item.resolution() is item.content
            else:
                with pytest.raises(PipelineError) as raised:
                    await item.resolution()
                assert raised.value.__cause__ is (boom if fails else None)


class CancelAfter(Stage):
    """Passes items on; cancels ``scope`` after ``after`` items, or at the end of input."""

    def __init__(self, scope: anyio.CancelScope, after: int) -> None:
        self.scope = scope
        self.after = after
        self.exited = False

    async def run(self) -> None:
        try:
            passed = 0
            async for item in self.items():
                if passed == self.after:
                    self.scope.cancel()
                await self.put(item)
                passed += 1
            self.scope.cancel()
        finally:
            self.exited = True


@pytest.mark.anyio
@given(data=st.data(), shape=pipeline_shapes(max_items=40, max_minsize=10_000, max_buffer=16))
@fast
async def test_cancelling_from_outside_stops_every_stage_and_wakes_awaiters(
    data: st.DataObject, shape: PipelineShape
) -> None:
    """Cancelling the scope around a pipeline at any point stops all stages; no awaiter hangs."""
    items = sample_items(shape.item_count)
    plans = data.draw(plans_for_an_interrupted_pipeline(len(items)), label="plans")
    position = data.draw(st.integers(0, len(shape.stages)), label="canceller position")
    after = data.draw(st.integers(0, len(items)), label="cancel after")
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as outside:
            first = PlannedAwaits(items, plans, outside=outside)
            resolver = Resolver()
            with anyio.CancelScope() as scope:
                middle: list[Any] = shape.build()
                middle.insert(position, CancelAfter(scope, after))
                stages = [first, *middle, resolver, Collector()]
                await create_pipeline(stages, maxsize=shape.maxsize)
        # Leaving the task group means every outside awaiter has finished.

    for stage in stages:
        assert stage.exited, f"{stage!r} is still running"
    for awaiter in first.awaiters:
        assert awaiter.done.is_set()
        assert awaiter.plan is not None
        if awaiter.content is not None:
            assert awaiter.item.resolved
        elif awaiter.plan.awaiter == "outside_task":
            assert isinstance(awaiter.error, PipelineError)
        else:
            assert awaiter.cancelled or isinstance(awaiter.error, PipelineError)


class Gate(Collector):
    """Reads nothing until every other task is blocked; records how far the first stage got."""

    def __init__(self, first: Feeder) -> None:
        super().__init__()
        self.first = first
        self.puts_when_blocked: int | None = None

    async def _run(self) -> None:
        await anyio.wait_all_tasks_blocked()
        self.puts_when_blocked = self.first.started_puts
        await super()._run()


@pytest.mark.anyio
@given(shape=pipeline_shapes(min_items=1, max_items=400, max_minsize=50, max_buffer=16))
@heavy
@pytest.mark.slow
async def test_a_stalled_stage_holds_back_the_first_stage(shape: PipelineShape) -> None:
    """A first stage gets no further ahead of a stalled stage than buffers and batch sizes allow."""
    items = sample_items(shape.item_count)
    first = Feeder(items)
    middle = shape.build()
    gate = Gate(first)
    with anyio.fail_after(TIMEOUT):
        await create_pipeline([first, *middle, gate], maxsize=shape.maxsize)

    # Items put but not taken by the gate sit in a buffer (one per stream into the gate),
    # in a middle stage's hands (a whole batch, or the one item being passed on), or in
    # the first stage's own blocked put.
    held_by = [1 if stage.minsize is None else stage.minsize for stage in middle]
    bound = (len(middle) + 1) * shape.maxsize + sum(held_by) + 1
    assert gate.puts_when_blocked is not None
    assert gate.puts_when_blocked <= min(bound, len(items))
    assert_same(gate.collected, items)


@pytest.mark.anyio
@given(data=st.data(), shape=pipeline_shapes(min_items=1, max_items=30, max_minsize=500))
@fast
async def test_items_made_in_a_stage_never_leave_outside_awaiters_hanging(
    data: st.DataObject, shape: PipelineShape
) -> None:
    """Items a stage creates belong to its pipeline: awaited from outside before or after
    their put, they resolve or fail with PipelineError, whichever stage fails when."""
    count = shape.item_count
    awaited = data.draw(subsets(range(count)), label="awaited")
    stage_count = len(shape.stages) + 3
    plan = data.draw(failure_plans(stage_count, max_items=count + 1), label="failure")
    fails = data.draw(st.booleans(), label="fails")
    boom = Boom(f"stage {plan.stage_index} after {plan.after_items} items")
    outcomes: dict[int, object] = {}

    async def await_outside(index: int, item: DeclarativeContent) -> None:
        try:
            outcomes[index] = await item.resolution()
        except PipelineError as exc:
            outcomes[index] = exc

    class MakeAndHandOut(Feeder):
        """Creates its items in run(), hands some to outside tasks, then puts them."""

        def __init__(self, outside: anyio.abc.TaskGroup) -> None:
            super().__init__([])
            self.outside = outside
            self.made: list[DeclarativeContent] = []

        async def _run(self) -> None:
            self.items_to_put = self.made = sample_items(count)
            for index in awaited:
                self.outside.start_soon(await_outside, index, self.made[index])
            await anyio.wait_all_tasks_blocked()  # awaiting before the first put
            await super()._run()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as outside:
            first = MakeAndHandOut(outside)
            stages = [first, *shape.build(), Resolver(), Collector()]
            if fails:
                stages[plan.stage_index].fail_after = plan.after_items
                stages[plan.stage_index].error = boom
                with pytest.raises(Boom):
                    await create_pipeline(stages, maxsize=shape.maxsize)
            else:
                await create_pipeline(stages, maxsize=shape.maxsize)
        # Leaving the task group means every outside awaiter has finished.

    assert set(outcomes) == set(awaited)
    for index in awaited:
        item, outcome = first.made[index], outcomes[index]
        if item.resolved:
            assert outcome is item.content
        else:
            assert fails
            assert isinstance(outcome, PipelineError)
            assert outcome.__cause__ is boom


def test_a_failing_example_is_reported_without_a_long_shrink_phase() -> None:
    """With this module's settings a failing example runs about twice (found, then replayed
    for the report), so one that hangs fails the test after about two TIMEOUTs rather than
    after a shrink phase of them (unless STAGELINE_PROPERTY_SHRINK asks for shrinking)."""
    runs = 0

    @settings(fast, database=None)
    @given(values=st.lists(st.integers(), min_size=5))
    def hangs(values: list[int]) -> None:
        nonlocal runs
        runs += 1
        raise TimeoutError("stands for an example that reached its fail_after(TIMEOUT)")

    with pytest.raises(TimeoutError):
        hangs()
    assert runs <= 2 or Phase.shrink in PHASES, f"the failing example ran {runs} times"
