"""ArtifactResourceBudget on its own: what it counts, when it waits, what wakes it."""

from __future__ import annotations

import anyio
import pytest
from anyio.lowlevel import checkpoint
from tests.sync._plugin import file_unit

from stageline import DeclarativeContent, StageConfigurationError
from stageline.models import DownloadPolicy, Remote
from stageline.stages import ArtifactResourceBudget
from stageline.testing import run_stage

pytestmark = pytest.mark.anyio

REMOTE = Remote(url="http://127.0.0.1:9/repo/", name="r")


def unit(path: str, size: int | None, remote: Remote = REMOTE) -> DeclarativeContent:
    d = file_unit(remote, path, f"{sum(path.encode()):064x}", size or 0)
    d.d_artifacts[0].artifact.size = size
    return d


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_a_limit_that_is_not_a_positive_int_is_refused(value: object) -> None:
    """Each limit must be None or an int >= 1; the error names it and the value."""
    for name in ("max_bytes", "max_items"):
        with pytest.raises(StageConfigurationError, match=name):
            ArtifactResourceBudget(**{name: value})  # type: ignore[arg-type]


async def test_units_with_nothing_to_download_pass_uncounted() -> None:
    """Saved, deferred and file-carrying units pass a max_items=1 budget holding nothing."""
    saved, deferred = unit("saved", 5), unit("deferred", 5)
    saved.d_artifacts[0].artifact.pk = 1
    deferred.d_artifacts[0].remote = Remote(url=REMOTE.url, policy=DownloadPolicy.ON_DEMAND)
    budget = ArtifactResourceBudget(max_items=1)
    with anyio.fail_after(10):
        assert await run_stage(budget, [saved, deferred]) == [saved, deferred]
    assert (budget.pending_items, budget.peak_items) == (0, 0)


async def test_one_unit_larger_than_max_bytes_passes_when_nothing_is_held() -> None:
    """A 100-byte unit passes a 10-byte budget alone and is counted whole."""
    budget = ArtifactResourceBudget(max_bytes=10)
    big = unit("big", 100)
    with anyio.fail_after(10):
        assert await run_stage(budget, [big]) == [big]
    assert (budget.pending_items, budget.pending_bytes) == (1, 100)


async def test_an_unknown_size_counts_as_a_unit_of_no_bytes() -> None:
    """A file without a declared size: one unit, 0 bytes."""
    budget = ArtifactResourceBudget(max_bytes=10, max_items=5)
    await budget.acquire(unit("unsized", None))
    assert (budget.pending_items, budget.pending_bytes) == (1, 0)


async def test_a_waiting_acquire_raises_the_flush_event_until_a_release_makes_room() -> None:
    """Full: acquire waits with flush_event set; release() lets it in and lowers the event."""
    budget = ArtifactResourceBudget(max_items=2, max_bytes=100)
    first, second, third = unit("a", 40), unit("b", 40), unit("c", 40)
    await budget.acquire(first)
    await budget.acquire(second)
    assert not budget.flush_event.is_set()
    entered = anyio.Event()

    async def third_acquires() -> None:
        await budget.acquire(third)
        entered.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(third_acquires)
            await anyio.wait_all_tasks_blocked()
            assert budget.flush_event.is_set()
            assert not entered.is_set()
            await budget.flush_event.wait()  # set: returns at once
            budget.release([first])
            await entered.wait()
    assert not budget.flush_event.is_set()
    assert (budget.pending_items, budget.pending_bytes, budget.peak_items) == (2, 80, 2)


async def test_acquire_and_release_count_each_unit_once() -> None:
    """A unit acquired twice counts once; releasing units not held changes nothing."""
    budget = ArtifactResourceBudget(max_items=2)
    held, other = unit("a", 7), unit("b", 1)
    await budget.acquire(held)
    await budget.acquire(held)
    assert (budget.pending_items, budget.pending_bytes) == (1, 7)
    budget.release([other])
    assert budget.pending_items == 1
    budget.release([held])
    await checkpoint()
    assert (budget.pending_items, budget.pending_bytes, budget.peak_bytes) == (0, 0, 7)


async def test_release_all_wakes_a_waiter_and_counts_nothing_after_it() -> None:
    """release_all() (the sync is ending) empties the budget and lets a waiting acquire
    through uncounted: the saver that would release it is gone. This was a leak: when a
    failing sync's saver released everything, the budget stage could still wake, let its
    waiting unit in and end normally, leaving one unit held for ever."""
    budget = ArtifactResourceBudget(max_items=1)
    await budget.acquire(unit("a", 1))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(budget.acquire, unit("b", 2))
            await anyio.wait_all_tasks_blocked()
            budget.release_all()
    assert (budget.pending_items, budget.pending_bytes) == (0, 0)
    await budget.acquire(unit("c", 3))
    assert budget.pending_items == 0


async def test_running_again_after_release_all_counts_again() -> None:
    """The budget stage's run() starts a new sync: units are counted again."""
    budget = ArtifactResourceBudget(max_items=5)
    budget.release_all()
    one = unit("one", 4)
    with anyio.fail_after(10):
        assert await run_stage(budget, [one]) == [one]
    assert (budget.pending_items, budget.pending_bytes) == (1, 4)
