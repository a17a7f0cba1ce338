"""SQLite writers of one process take the write lock in turn (the store's writer gate).

A writer behind another waits on an in-process lock rather than in SQLite's busy handler;
these tests check what a caller can see of it: writers behind a unit of work wait and then
write, a waiting writer can be cancelled, the wait ends with "database is locked" after
the busy timeout, and every way a writer ends lets the next one in. While a writer holds
the lock, the interpreter switches threads more often, unless the application chose its
own switch interval.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import pytest
from store_support import FileUnit, sha

from stageline import StoreError
from stageline.models import Artifact
from stageline.store import Store, _database, open_store

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def unit_of_work_held(store: Store, log: list[str]) -> AsyncIterator[None]:
    """A unit of work open in another task (so this task's writes are not refused) for
    the block; it commits when the block ends."""
    opened, done = anyio.Event(), anyio.Event()

    async def hold() -> None:
        async with store.unit_of_work() as uow:
            await uow.save_content([FileUnit(path="a", digest=sha(100), size=1)])
            opened.set()
            await done.wait()
            log.append("unit of work")

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await opened.wait()
        try:
            yield
        finally:
            done.set()


async def test_writers_behind_a_unit_of_work_write_once_it_commits(sqlite_store: Store) -> None:
    """Writers started while a unit of work holds the lock all write after its commit."""
    store = sqlite_store
    log: list[str] = []

    async def save(n: int) -> None:
        await store.save_artifacts([Artifact(sha256=sha(n), size=n)])
        log.append(f"artifact {n}")

    async with anyio.create_task_group() as tg, unit_of_work_held(store, log):
        for n in range(5):
            tg.start_soon(save, n)
        # Let the writers reach the gate; none of them can pass it yet.
        await anyio.sleep(0.2)
        assert log == []
    assert log[0] == "unit of work"
    assert sorted(log[1:]) == [f"artifact {n}" for n in range(5)]
    assert len(await store.find_artifacts(sha(n) for n in range(5))) == 5


async def test_a_writer_waiting_for_the_gate_can_be_cancelled(sqlite_store: Store) -> None:
    """Cancelling a writer that waits behind a unit of work ends its wait, writing nothing."""
    store = sqlite_store
    log: list[str] = []
    async with unit_of_work_held(store, log):
        with anyio.move_on_after(0.3) as scope:
            await store.save_artifacts([Artifact(sha256=sha(2), size=2)])
        assert scope.cancelled_caught
        assert log == []
    assert list(await store.find_artifacts([sha(2)])) == []
    # The gate is free again.
    await store.save_artifacts([Artifact(sha256=sha(3), size=3)])
    assert list(await store.find_artifacts([sha(3)])) == [sha(3)]


async def test_the_wait_ends_with_database_is_locked_after_the_busy_timeout(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer kept out for the busy timeout fails as SQLite would, naming the call."""
    monkeypatch.setattr(_database, "SQLITE_BUSY_TIMEOUT", 0.3)
    store = sqlite_store
    log: list[str] = []
    async with unit_of_work_held(store, log):
        with pytest.raises(
            StoreError,
            match=r"could not save artifacts .*database is locked; another writer of this process",
        ):
            await store.save_artifacts([Artifact(sha256=sha(2), size=2)])
    assert log == ["unit of work"]
    assert list(await store.find_artifacts([sha(2)])) == []


async def test_every_way_a_writer_ends_lets_the_next_one_in(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commit, rollback, a failed write and a cancelled unit of work each free the gate."""
    # A gate left taken would fail the next write ("database is locked") within seconds.
    monkeypatch.setattr(_database, "SQLITE_BUSY_TIMEOUT", 5.0)
    store = sqlite_store
    async with store.unit_of_work() as uow:  # committed
        await uow.save_artifacts([Artifact(sha256=sha(1), size=1)])

    async def rolled_back() -> None:
        async with store.unit_of_work() as uow:
            await uow.save_artifacts([Artifact(sha256=sha(2), size=2)])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await rolled_back()

    def fail(conn: object) -> None:
        raise RuntimeError("failed write")

    with pytest.raises(RuntimeError, match="failed write"):
        await store._runner.run("fail", fail, write=True)
    with anyio.CancelScope() as scope:  # cancelled inside a unit of work
        async with store.unit_of_work() as uow:
            await uow.save_artifacts([Artifact(sha256=sha(4), size=4)])
            scope.cancel()
            await anyio.sleep(1)
    # Each of those let go of the gate: this write is not kept out.
    await store.save_artifacts([Artifact(sha256=sha(5), size=5)])
    assert sorted(await store.find_artifacts(sha(n) for n in range(6))) == sorted([sha(1), sha(5)])


@pytest.fixture
def default_switch_interval() -> Iterator[None]:
    """The interpreter's default switch interval for the test, and whatever was set before
    it back afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(_database.DEFAULT_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def interval_is(seconds: float) -> bool:
    """Whether the switch interval is ``seconds`` (it is kept in whole microseconds)."""
    return sys.getswitchinterval() == pytest.approx(seconds, abs=1e-7)


async def test_threads_switch_quickly_while_a_writer_holds_the_lock(
    sqlite_store: Store, default_switch_interval: None
) -> None:
    """The switch interval is lowered from a unit of work's first call to its end, and
    around a single write; the default comes back after each."""
    store = sqlite_store
    during: list[float] = []
    async with store.unit_of_work() as uow:
        assert interval_is(_database.DEFAULT_SWITCH_INTERVAL)  # no call yet
        await uow.save_artifacts([Artifact(sha256=sha(1), size=1)])
        assert interval_is(_database.WRITER_SWITCH_INTERVAL)
    assert interval_is(_database.DEFAULT_SWITCH_INTERVAL)

    def note(conn: object) -> None:
        during.append(sys.getswitchinterval())

    await store._runner.run("note the interval", note, write=True)
    await store._runner.run("note the interval", note, write=False)
    assert during == pytest.approx(
        [_database.WRITER_SWITCH_INTERVAL, _database.DEFAULT_SWITCH_INTERVAL], abs=1e-7
    )
    assert interval_is(_database.DEFAULT_SWITCH_INTERVAL)


async def test_the_interval_comes_back_when_the_last_writer_of_any_store_ends(
    sqlite_store: Store, tmp_path: os.PathLike[str], default_switch_interval: None
) -> None:
    """Writers of two stores overlap: the interval stays low until both have ended, and a
    failed or cancelled writer lets go of its share too."""
    async with open_store(os.path.join(tmp_path, "other.db")) as other:
        async with sqlite_store.unit_of_work() as first:
            await first.save_artifacts([Artifact(sha256=sha(1), size=1)])
            async with other.unit_of_work() as second:
                await second.save_artifacts([Artifact(sha256=sha(2), size=2)])
            assert interval_is(_database.WRITER_SWITCH_INTERVAL)

            def fail(conn: object) -> None:
                raise RuntimeError("failed write")

            with pytest.raises(RuntimeError, match="failed write"):
                await other._runner.run("fail", fail, write=True)
            with anyio.CancelScope() as scope:
                async with other.unit_of_work() as third:
                    await third.save_artifacts([Artifact(sha256=sha(3), size=3)])
                    scope.cancel()
                    await anyio.sleep(1)
            assert interval_is(_database.WRITER_SWITCH_INTERVAL)
        assert interval_is(_database.DEFAULT_SWITCH_INTERVAL)


async def test_an_interval_the_application_chose_is_left_alone(
    sqlite_store: Store, default_switch_interval: None
) -> None:
    """An interval set before a write, or changed while one holds the lock, is kept."""
    store = sqlite_store
    sys.setswitchinterval(0.001)
    async with store.unit_of_work() as uow:
        await uow.save_artifacts([Artifact(sha256=sha(1), size=1)])
        assert interval_is(0.001)
    assert interval_is(0.001)

    sys.setswitchinterval(_database.DEFAULT_SWITCH_INTERVAL)
    async with store.unit_of_work() as uow:
        await uow.save_artifacts([Artifact(sha256=sha(2), size=2)])
        sys.setswitchinterval(0.003)
    assert interval_is(0.003)
