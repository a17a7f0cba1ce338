"""The rules of ``create_pipeline``: assembly, failure, cancellation, hanging awaiters."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from stageline import (
    DeclarativeContent,
    EndStage,
    PipelineError,
    Stage,
    StageConfigurationError,
    StagelineError,
    create_pipeline,
)

from .stages import HANG_TIMEOUT, Collect, Feed, PassBatches, PassItems, Resolve, make_items

pytestmark = pytest.mark.anyio


class Boom(Exception):
    """A stage's own failure."""


class FailAfter(Stage):
    """Passes ``count`` items on, then raises; records that its run has exited."""

    def __init__(self, count: int, exc: BaseException | None = None) -> None:
        self.count = count
        self.exc = exc or Boom(f"failed after {count}")
        self.exited = False

    async def run(self) -> None:
        try:
            seen = 0
            async for item in self.items():
                if seen == self.count:
                    raise self.exc
                seen += 1
                await self.put(item)
        finally:
            self.exited = True


class Tracked(Stage):
    """Passes items on forever-blocking-capable; records that its run has exited."""

    def __init__(self) -> None:
        self.exited = False

    async def run(self) -> None:
        try:
            async for item in self.items():
                await self.put(item)
        finally:
            self.exited = True


class EndlessFeed(Stage):
    """First stage that never ends on its own."""

    def __init__(self) -> None:
        self.exited = False
        self.started = anyio.Event()

    async def run(self) -> None:
        try:
            i = 0
            while True:
                await self.put(i)
                i += 1
                if i == 10:
                    self.started.set()
        finally:
            self.exited = True


async def test_no_stages_is_a_value_error() -> None:
    """An empty list of stages is refused with a StageConfigurationError (a ValueError)."""
    with pytest.raises(ValueError, match="at least one stage"):
        await create_pipeline([])


async def test_the_same_stage_twice_is_a_value_error() -> None:
    """The same stage instance at two positions is refused, naming the position."""
    stage = PassItems()
    with pytest.raises(StageConfigurationError, match=r"appears twice.*position 2"):
        await create_pipeline([Feed([1]), stage, stage])


async def test_a_non_stage_is_refused() -> None:
    """Something that is not a Stage instance is refused; a class gets a hint."""
    with pytest.raises(StageConfigurationError, match="stage 1 is not a Stage instance"):
        await create_pipeline([Feed([1]), "nope"])  # type: ignore[list-item]
    with pytest.raises(StageConfigurationError, match="instantiate it"):
        await create_pipeline([Feed([1]), PassItems])  # type: ignore[list-item]


async def test_a_single_stage_instead_of_a_list_is_refused() -> None:
    """create_pipeline(stage) is a clear mistake, not an iteration error."""
    with pytest.raises(StageConfigurationError, match="wrap it in a list"):
        await create_pipeline(Feed([1]))  # type: ignore[arg-type]


@pytest.mark.parametrize("maxsize", [-1, 1.5, "2", True])
async def test_bad_maxsize_is_refused(maxsize: Any) -> None:
    """maxsize must be an int >= 0."""
    with pytest.raises(StageConfigurationError, match="maxsize"):
        await create_pipeline([Feed([1])], maxsize=maxsize)


async def test_configuration_errors_are_stageline_errors() -> None:
    """Assembly errors are caught by both ``except ValueError`` and ``except StagelineError``."""
    assert issubclass(StageConfigurationError, ValueError)
    assert issubclass(StageConfigurationError, StagelineError)


async def test_unbuffered_streams_work() -> None:
    """maxsize=0 joins stages by rendezvous and still delivers everything in order."""
    with anyio.fail_after(HANG_TIMEOUT):
        collect = Collect()
        await create_pipeline([Feed(range(50)), PassBatches(minsize=3), collect], maxsize=0)
        assert collect.items_seen == list(range(50))


async def test_an_end_stage_is_appended_only_when_missing() -> None:
    """The last user stage may put freely: an EndStage drains it; a given EndStage is used
    as the last stage, with nothing appended after it."""

    class CountPuts(PassItems):
        def __init__(self) -> None:
            self.puts = 0

        async def put(self, item: Any) -> None:
            await super().put(item)
            self.puts += 1

    class LastEnd(EndStage):
        """Drains like EndStage, then checks that no stage follows it."""

        def __init__(self) -> None:
            self.drained = 0
            self.put_error: PipelineError | None = None

        async def run(self) -> None:
            async for _ in self.items():
                self.drained += 1
            try:
                await self.put("after the end")
            except PipelineError as exc:
                self.put_error = exc

    with anyio.fail_after(HANG_TIMEOUT):  # without a drain, the 1000 puts into a buffer of 1 hang
        last_user_stage = CountPuts()
        await create_pipeline([Feed(range(1000)), last_user_stage], maxsize=1)
        assert last_user_stage.puts == 1000

        given = LastEnd()
        await create_pipeline([Feed(range(1000)), PassItems(), given], maxsize=1)
    assert given.drained == 1000
    assert given.put_error is not None
    assert "has no output" in str(given.put_error)


async def test_a_stage_instance_can_run_again_after_its_pipeline_ended() -> None:
    """A stage is reusable once its pipeline finished."""
    with anyio.fail_after(HANG_TIMEOUT):
        collect = Collect()
        await create_pipeline([Feed([1, 2]), collect])
        await create_pipeline([Feed([3]), collect])
        assert collect.items_seen == [1, 2, 3]


async def test_a_stage_cannot_run_in_two_pipelines_at_once() -> None:
    """Using a running stage in a second pipeline is refused."""
    with anyio.fail_after(HANG_TIMEOUT):
        gate = anyio.Event()

        class Wait(Stage):
            async def run(self) -> None:
                await gate.wait()

        shared = PassItems()
        async with anyio.create_task_group() as tg:
            tg.start_soon(create_pipeline, [Wait(), shared])
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(StageConfigurationError, match="already running"):
                await create_pipeline([Feed([1]), shared])
            gate.set()


@pytest.mark.parametrize("position", [0, 1, 2, 3])
async def test_a_failing_stage_ends_the_pipeline_with_its_own_exception(position: int) -> None:
    """The exception of the one failing stage is raised as is, not in a group."""
    with anyio.fail_after(HANG_TIMEOUT):
        error = Boom("the original")

        class FailingFeed(Stage):
            async def run(self) -> None:
                for i in range(100):
                    if i == 30:
                        raise error
                    await self.put(i)

        stages: list[Stage] = [Feed(range(100)), Tracked(), Tracked(), Tracked()]
        if position == 0:
            stages[0] = FailingFeed()
        else:
            stages[position] = FailAfter(30, error)
        with pytest.raises(Boom) as info:
            await create_pipeline(stages, maxsize=2)
        assert info.value is error
        assert all(getattr(s, "exited", True) for s in stages)


async def test_the_original_exception_keeps_its_cause() -> None:
    """A stage's ``raise X from Y`` reaches the caller with ``__cause__`` intact."""
    with anyio.fail_after(HANG_TIMEOUT):
        root = OSError("disk full")

        class Chained(Stage):
            async def run(self) -> None:
                try:
                    raise root
                except OSError as exc:
                    raise Boom("could not save") from exc

        with pytest.raises(Boom) as info:
            await create_pipeline([Feed([1]), Chained()])
        assert info.value.__cause__ is root


async def test_several_failures_surface_as_an_exception_group() -> None:
    """When two stages fail at once, both errors are raised in an ExceptionGroup."""
    with anyio.fail_after(HANG_TIMEOUT):
        go = anyio.Event()

        class FailTogether(Stage):
            def __init__(self, name: str) -> None:
                self.name = name

            async def run(self) -> None:
                await go.wait()
                # Both wake in the same scheduler step and raise without a checkpoint, so
                # neither is cancelled before it raises.
                raise Boom(self.name)

        async def release() -> None:
            await anyio.wait_all_tasks_blocked()
            go.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(release)
            with pytest.raises(ExceptionGroup) as info:
                await create_pipeline([FailTogether("a"), FailTogether("b")])
        assert sorted(str(e) for e in info.value.exceptions) == ["a", "b"]


async def test_outside_cancellation_stops_every_stage() -> None:
    """Cancelling the caller's scope stops the whole pipeline and leaves no stage running."""
    with anyio.fail_after(HANG_TIMEOUT):
        feed = EndlessFeed()
        middle = [Tracked(), Tracked()]
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(create_pipeline, [feed, *middle, PassBatches(minsize=1000)])
                await feed.started.wait()
                scope.cancel()
        assert scope.cancelled_caught
        assert feed.exited
        assert all(s.exited for s in middle)


@pytest.mark.timeout(20)  # a stage that never checkpoints cannot be cancelled by fail_after
async def test_a_timeout_stops_a_pipeline_that_never_blocks() -> None:
    """A fail_after deadline cancels even stages that run on the non-blocking fast path."""
    feed = EndlessFeed()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            await create_pipeline([feed, Tracked()], maxsize=1_000_000)
    assert feed.exited


async def test_awaiter_outside_the_pipeline_is_woken_when_it_fails() -> None:
    """A task awaiting an item the failed pipeline never resolved gets a PipelineError."""
    with anyio.fail_after(HANG_TIMEOUT):
        items = make_items(5)
        errors: list[BaseException] = []
        error = Boom("stage failed")

        async def wait_for(index: int) -> None:
            try:
                await items[index].resolution()
            except PipelineError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for, 1)
            await anyio.wait_all_tasks_blocked()
            # Nothing resolves: item 1 passes FailAfter, then the pipeline fails on item 2.
            with pytest.raises(Boom):
                await create_pipeline([Feed(items), FailAfter(2, error), PassItems()], maxsize=1)
        assert len(errors) == 1
        assert "failed or was cancelled" in str(errors[0])
        assert errors[0].__cause__ is error


async def test_an_item_made_in_a_stage_is_woken_even_if_never_put() -> None:
    """An item born inside a stage belongs to its pipeline: its waiters never hang."""
    with anyio.fail_after(HANG_TIMEOUT):
        handed_out: list[DeclarativeContent] = []
        ready = anyio.Event()
        outcome: list[str] = []
        error = Boom("failed before putting")

        class MakeThenFail(Stage):
            async def run(self) -> None:
                handed_out.extend(make_items(1))
                ready.set()
                await anyio.wait_all_tasks_blocked()
                raise error

        async def wait_outside() -> None:
            await ready.wait()
            try:
                await handed_out[0].resolution()
            except PipelineError as exc:
                outcome.append(str(exc))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_outside)
            with pytest.raises(Boom):
                await create_pipeline([MakeThenFail(), PassItems()])
        assert outcome == ["the pipeline failed or was cancelled before resolving this item"]


async def test_awaiter_of_a_dropped_item_is_woken_when_the_pipeline_ends() -> None:
    """An item a stage drops without resolving does not leave its awaiter hanging."""
    with anyio.fail_after(HANG_TIMEOUT):
        items = make_items(3)
        outcome: list[str] = []

        class DropAll(Stage):
            async def run(self) -> None:
                async for _ in self.items():
                    pass

        async def wait_for(index: int) -> None:
            try:
                await items[index].resolution()
                outcome.append("resolved")
            except PipelineError as exc:
                outcome.append(str(exc))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for, 0)
            tg.start_soon(wait_for, 2)
            await anyio.wait_all_tasks_blocked()
            await create_pipeline([Feed(items), DropAll()])
        assert outcome == ["the pipeline finished without resolving this item"] * 2


async def test_awaiter_inside_the_first_stage_is_cancelled_with_the_pipeline() -> None:
    """A first stage awaiting resolution is cancelled, not hung, when another stage fails."""
    with anyio.fail_after(HANG_TIMEOUT):
        error = Boom("saver failed")
        items = make_items(1)

        class AwaitingFeed(Stage):
            def __init__(self) -> None:
                self.exited = False

            async def run(self) -> None:
                try:
                    await self.put(items[0])
                    await items[0].resolution()
                finally:
                    self.exited = True

        feed = AwaitingFeed()
        with pytest.raises(Boom) as info:
            await create_pipeline([feed, FailAfter(0, error)])
        assert info.value is error
        assert feed.exited


async def test_resolved_items_reach_their_awaiters_through_the_pipeline() -> None:
    """Every awaited item's awaiter gets its content once the resolving stage passes it."""
    items = make_items(20)
    got: dict[int, object] = {}

    class AwaitEveryThird(Stage):
        async def run(self) -> None:
            async with anyio.create_task_group() as tg:
                for i, d in enumerate(items):
                    await self.put(d)
                    if i % 3 == 0:
                        tg.start_soon(self.wait, i, d)

        async def wait(self, i: int, d: Any) -> None:
            got[i] = await d.resolution()

    with anyio.fail_after(HANG_TIMEOUT):
        await create_pipeline(
            [AwaitEveryThird(), PassBatches(minsize=500), PassBatches(minsize=7), Resolve()]
        )
    assert got == {i: items[i].content for i in range(0, 20, 3)}


async def test_an_item_moved_to_a_second_pipeline_is_answered_for_by_it() -> None:
    """An item that left an ended pipeline is watched by the next one it is put in."""
    with anyio.fail_after(HANG_TIMEOUT):
        items = make_items(1)
        await create_pipeline([Feed(items), PassItems()])  # passes it on, never resolves it
        error = Boom("second pipeline failed")
        outcome: list[BaseException] = []

        async def wait() -> None:
            try:
                await items[0].resolution()
            except PipelineError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            # Awaited after the first pipeline ended: that alone is an immediate PipelineError.
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
        assert len(outcome) == 1

        async with anyio.create_task_group() as tg:
            with pytest.raises(Boom):
                await create_pipeline([Feed(items), FailAfter(0, error)], maxsize=0)
            tg.start_soon(wait)
        assert len(outcome) == 2
        assert outcome[1].__cause__ is error

        got: list[object] = []

        class PutThenAwait(Stage):
            async def run(self) -> None:
                await self.put(items[0])
                got.append(await items[0].resolution())

        # A third pipeline that does resolve it hands the content to its waiter.
        await create_pipeline([PutThenAwait(), Resolve()])
        assert got == [items[0].content]
