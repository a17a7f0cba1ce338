"""SQLite writers of one process take the write lock in turn (the store's writer gate).

A writer behind another waits on an in-process lock rather than in SQLite's busy handler;
these tests check what a caller can see of it: writers behind a unit of work wait and then
write, a waiting writer can be cancelled, the wait ends with "database is locked" after
the busy timeout, and every way a writer ends lets the next one in.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from store_support import FileUnit, sha

from stageline import StoreError
from stageline.models import Artifact
from stageline.store import Store, _database, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite_store(tmp_path: os.PathLike[str]) -> AsyncIterator[Store]:
    """An open store on a fresh SQLite file (the gate is SQLite's only)."""
    async with open_store(os.path.join(tmp_path, "stageline.db")) as opened:
        yield opened


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
