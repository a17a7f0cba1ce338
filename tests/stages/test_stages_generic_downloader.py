"""GenericDownloader: many units at once, bounded, in order; failures cancel or skip."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stageline import DeclarativeContent, DownloadError, StageConfigurationError
from stageline.stages import DownloadFailurePolicy, GenericDownloader
from stageline.testing import run_stage, sample_items, start_awaiter

pytestmark = pytest.mark.anyio


class Gated(GenericDownloader):
    """Each unit waits for its gate; records when units start, finish and get cancelled."""

    def __init__(self, count: int, max_concurrent_content: int = 200, **options: object) -> None:
        super().__init__(max_concurrent_content, **options)  # type: ignore[arg-type]
        self.gates = [anyio.Event() for _ in range(count)]
        self.running = 0
        self.peak = 0
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.failing: dict[str, Exception] = {}

    async def _handle_content_unit(self, d_content: DeclarativeContent) -> int:
        name = d_content.content.name  # type: ignore[attr-defined]
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.gates[int(name)].wait()
            if name in self.failing:
                raise self.failing[name]
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(name)
            raise
        finally:
            self.running -= 1
        self.finished.append(name)
        return 1


async def test_units_finishing_out_of_order_are_put_in_input_order() -> None:
    """Handled at once and finished last-first, the units still come out first-first."""
    items = sample_items(3)
    stage = Gated(3)
    result: list[DeclarativeContent] = []

    async def run() -> None:
        result.extend(await run_stage(stage, items))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        for gate in reversed(stage.gates):
            await anyio.wait_all_tasks_blocked()
            gate.set()
    assert stage.finished == ["2", "1", "0"]
    assert result == items
    assert stage.downloaded == 3


async def test_at_most_max_concurrent_content_units_run_at_once() -> None:
    """With a cap of 2, two units run while the others wait; all finish in order."""
    items = sample_items(5)
    stage = Gated(5, max_concurrent_content=2)
    result: list[DeclarativeContent] = []

    async def run() -> None:
        result.extend(await run_stage(stage, items))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        for gate in stage.gates:
            await anyio.wait_all_tasks_blocked()
            assert stage.running == min(2, 5 - len(stage.finished))
            gate.set()
    assert stage.peak == 2
    assert result == items


async def test_the_first_failure_cancels_the_other_units_and_comes_out_unwrapped() -> None:
    """Unit 1 fails: unit 0, still waiting, is cancelled; the error itself is raised."""
    items = sample_items(2)
    stage = Gated(2)
    error = DownloadError("unit 1 failed", url="http://127.0.0.1:9/1")
    stage.failing["1"] = error
    stage.gates[1].set()
    with pytest.raises(DownloadError) as info:
        await run_stage(stage, items)
    assert info.value is error
    assert stage.cancelled == ["0"]


async def test_the_skip_policy_drops_a_failed_unit_and_goes_on() -> None:
    """A failed unit is recorded and left out; the others go on, in order."""
    items = sample_items(3)
    policy = DownloadFailurePolicy("skip")
    stage = Gated(3, failure_policy=policy)
    error = DownloadError("unit 1 failed", url="http://127.0.0.1:9/1")
    stage.failing["1"] = error
    for gate in stage.gates:
        gate.set()
    assert await run_stage(stage, items) == [items[0], items[2]]
    [skipped] = policy.skipped
    assert skipped.content is items[1].content
    assert skipped.error is error
    assert skipped.urls == ()  # sample items declare no artifacts
    assert stage.downloaded == 2


async def test_awaiting_a_skipped_unit_raises_instead_of_hanging() -> None:
    """Whoever awaits a unit the policy skipped gets a PipelineError caused by its failure."""
    items = sample_items(1)
    stage = Gated(1, failure_policy=DownloadFailurePolicy("skip"))
    error = DownloadError("unit 0 failed", url="http://127.0.0.1:9/0")
    stage.failing["0"] = error
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            awaiter = await start_awaiter(tg, items[0])
            stage.gates[0].set()
            assert await run_stage(stage, items) == []
    assert awaiter.error is not None
    assert awaiter.error.__cause__ is error
    assert "was skipped" in str(awaiter.error)


async def test_errors_other_than_download_errors_are_never_skipped() -> None:
    """A bug in a stage (here a RuntimeError) fails the stage even under the skip policy."""
    items = sample_items(1)
    stage = Gated(1, failure_policy=DownloadFailurePolicy("skip"))
    stage.failing["0"] = RuntimeError("a bug")
    stage.gates[0].set()
    with pytest.raises(RuntimeError, match="a bug"):
        await run_stage(stage, items)


class Picky(GenericDownloader):
    """Handles only units whose name is even."""

    def __init__(self) -> None:
        super().__init__(1)
        self.handled: list[str] = []

    def _needs_handling(self, d_content: DeclarativeContent) -> bool:
        return int(d_content.content.name) % 2 == 0  # type: ignore[attr-defined]

    async def _handle_content_unit(self, d_content: DeclarativeContent) -> int:
        self.handled.append(d_content.content.name)  # type: ignore[attr-defined]
        return 0


async def test_units_with_nothing_to_do_pass_in_order_without_being_handled() -> None:
    """_needs_handling False: the unit is not handled but keeps its place."""
    items = sample_items(5)
    stage = Picky()
    assert await run_stage(stage, items) == items
    assert stage.handled == ["0", "2", "4"]


async def test_a_stage_that_does_not_implement_the_handler_says_so() -> None:
    """GenericDownloader itself has no handler: NotImplementedError names the method."""
    with pytest.raises(NotImplementedError, match="_handle_content_unit"):
        await run_stage(GenericDownloader(), sample_items(1))


def test_max_concurrent_content_must_be_positive() -> None:
    """0 units at once could never make progress: refused with the argument named."""
    with pytest.raises(StageConfigurationError, match="max_concurrent_content"):
        GenericDownloader(0)


class Mixed(GenericDownloader):
    """Handles the units named in ``handled``, each after a number of scheduler passes of
    its own, so that they finish out of order while units with nothing to do go by."""

    def __init__(self, delays: dict[str, int], max_concurrent_content: int) -> None:
        super().__init__(max_concurrent_content)
        self.delays = delays

    def _needs_handling(self, d_content: DeclarativeContent) -> bool:
        return d_content.content.name in self.delays  # type: ignore[attr-defined]

    async def _handle_content_unit(self, d_content: DeclarativeContent) -> int:
        for _ in range(self.delays[d_content.content.name]):  # type: ignore[attr-defined]
            await anyio.lowlevel.checkpoint()
        return 1


@given(
    plan=st.lists(st.none() | st.integers(min_value=0, max_value=5), max_size=40),
    concurrency=st.integers(min_value=1, max_value=4),
    maxsize=st.integers(min_value=1, max_value=3),
)
@settings(max_examples=60, deadline=None)
async def test_handled_and_passing_units_keep_their_order(
    plan: list[int | None], concurrency: int, maxsize: int
) -> None:
    """Any mix of units to handle (finishing out of order) and units with nothing to do
    (put on directly when nothing before them is pending) comes out in input order, also
    when the next stage's buffer is full."""
    items = sample_items(len(plan))
    delays = {str(n): delay for n, delay in enumerate(plan) if delay is not None}
    stage = Mixed(delays, concurrency)
    assert await run_stage(stage, items, maxsize=maxsize) == items
    assert stage.downloaded == len(delays)
