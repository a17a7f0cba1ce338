"""The unit of work: several store calls in one transaction, committed or rolled back whole."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from store_support import FileUnit, count_rows, sha, sync_engine

from stageline import StoreError
from stageline.models import Artifact, ContentArtifact, Remote, RemoteArtifact
from stageline.store import Store, open_store

pytestmark = pytest.mark.anyio

TABLES = ("artifacts", "content", "content_artifacts", "remote_artifacts", "plugin_notes")


@pytest.fixture
def plugin_table(database_url: str) -> str:
    """A table of a plugin's own, beside stageline's, in the test database."""
    engine = sync_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE plugin_notes (content_id BIGINT, note TEXT NOT NULL)")
    engine.dispose()
    return "plugin_notes"


async def row_counts(url: str) -> dict[str, int]:
    """How many rows each table holds, as another connection sees them."""
    return {table: await anyio.to_thread.run_sync(count_rows, url, table) for table in TABLES}


def add_note(conn: sa.Connection) -> None:
    conn.exec_driver_sql("INSERT INTO plugin_notes (note) VALUES ('seen')")


async def test_every_call_commits_when_the_block_ends(
    store: Store, database_url: str, plugin_table: str
) -> None:
    """Calls in a unit of work see each other's rows, others see none until the block ends."""
    remote = await store.save_remote(Remote(url="http://up.test/", name="up"))
    async with store.unit_of_work() as uow:
        first, second = await uow.save_artifacts(
            [Artifact(sha256=sha(1), size=1), Artifact(sha256=sha(2), size=2)]
        )
        units = [FileUnit(path=f"f{n}", digest=sha(n), size=n) for n in (1, 2)]
        cas = [
            ContentArtifact(content=units[0], artifact=first, relative_path="f1"),
            ContentArtifact(content=units[1], artifact=None, relative_path="f2"),
        ]
        saved = await uow.save_content(units, cas)
        cas[1].artifact = second
        assert await uow.update_content_artifacts(cas[1:]) == 1
        ras = await uow.save_remote_artifacts(
            [
                RemoteArtifact(
                    url=f"http://up.test/{ca.relative_path}", content_artifact=ca, remote=remote
                )
                for ca in cas
            ]
        )
        await uow.run_sync(add_note)
        # Its own rows are visible inside ...
        assert (await uow.find_artifacts([sha(1)]))[sha(1)].pk == first.pk
        found = await uow.find_content([FileUnit(path="f2", digest=sha(2))])
        assert [unit.pk for unit in found if unit] == [saved[1].pk]
        found_cas = await uow.find_content_artifacts(saved)
        assert {(ca.pk, ca.artifact.pk if ca.artifact else None) for ca in found_cas} == {
            (cas[0].pk, first.pk),
            (cas[1].pk, second.pk),
        }
        found_ras = await uow.find_remote_artifacts(cas)
        assert {(ra.pk, ra.remote.pk) for ra in found_ras} == {(ra.pk, remote.pk) for ra in ras}
        # ... and invisible outside until the block ends.
        assert set((await row_counts(database_url)).values()) == {0}
    assert await row_counts(database_url) == dict.fromkeys(TABLES, 2) | {"plugin_notes": 1}
    assert [unit.pk for unit in await store.find_content(units) if unit] == [u.pk for u in saved]


class Abort(Exception):
    """Raised inside a unit of work that the test wants to fail."""


async def test_an_exception_rolls_everything_back(
    store: Store, database_url: str, plugin_table: str
) -> None:
    """An exception leaving the block rolls back every call, and is the one the caller sees."""

    async def fail() -> None:
        async with store.unit_of_work() as uow:
            [artifact] = await uow.save_artifacts([Artifact(sha256=sha(1), size=1)])
            unit = FileUnit(path="f1", digest=sha(1))
            await uow.save_content(
                [unit], [ContentArtifact(content=unit, artifact=artifact, relative_path="f1")]
            )
            await uow.run_sync(add_note)
            raise Abort

    with pytest.raises(Abort):
        await fail()
    assert set((await row_counts(database_url)).values()) == {0}
    assert await store.find_content([FileUnit(path="f1", digest=sha(1))]) == [None]


async def test_a_cancellation_during_a_call_commits_nothing(
    store: Store, database_url: str, plugin_table: str
) -> None:
    """Cancelled while its last call runs, the unit of work rolls back instead of committing."""
    started, release = threading.Event(), threading.Event()

    def hold(conn: sa.Connection) -> None:
        add_note(conn)
        started.set()
        assert release.wait(10), "the test never released the call"

    scope = anyio.CancelScope()

    async def work() -> None:
        with scope:
            async with store.unit_of_work() as uow:
                await uow.save_content([FileUnit(path="f1", digest=sha(1))])
                await uow.run_sync(hold)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(work)
            await anyio.to_thread.run_sync(started.wait)
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert scope.cancelled_caught
    assert set((await row_counts(database_url)).values()) == {0}
    # The connection went back to the pool in a usable state.
    assert len(await store.save_content([FileUnit(path="f2", digest=sha(2))])) == 1


async def test_calls_from_several_tasks_run_one_at_a_time(store: Store) -> None:
    """Two tasks calling one unit of work at once take turns on its one connection."""
    first_in, release = threading.Event(), threading.Event()
    events: list[str] = []
    connections: list[sa.Connection] = []

    def first(conn: sa.Connection) -> None:
        connections.append(conn)
        events.append("first in")
        first_in.set()
        assert release.wait(10), "the test never released the first call"
        events.append("first out")

    def second(conn: sa.Connection) -> None:
        connections.append(conn)
        events.append("second")

    with anyio.fail_after(30):
        async with store.unit_of_work() as uow, anyio.create_task_group() as tg:
            tg.start_soon(uow.run_sync, first)
            await anyio.to_thread.run_sync(first_in.wait)
            tg.start_soon(uow.run_sync, second)
            await anyio.wait_all_tasks_blocked()
            assert events == ["first in"]
            release.set()
    assert events == ["first in", "first out", "second"]
    assert connections[0] is connections[1]


async def test_a_failed_call_leaves_only_a_rollback(store: Store, database_url: str) -> None:
    """After a call fails, later calls and the commit are refused and nothing is committed."""

    def broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("SELECT * FROM no_such_table")

    async def go_on_after_a_failure() -> None:
        async with store.unit_of_work() as uow:
            await uow.save_content([FileUnit(path="f1", digest=sha(1))])
            with pytest.raises(StoreError, match=r"could not run .*broken"):
                await uow.run_sync(broken)
            with pytest.raises(StoreError, match=r"earlier call .* failed \(could not run"):
                await uow.save_content([FileUnit(path="f2", digest=sha(2))])

    with pytest.raises(StoreError, match=r"earlier call in this unit of work failed"):
        await go_on_after_a_failure()
    assert await anyio.to_thread.run_sync(count_rows, database_url, "content") == 0


async def test_store_writes_inside_a_unit_of_work_are_refused(store: Store) -> None:
    """Inside the block the store's own writes are refused (they would wait for it); reads work."""
    unit = FileUnit(path="f1", digest=sha(1))
    async with store.unit_of_work() as uow:
        with pytest.raises(StoreError, match=r"a unit of work on this database is open"):
            await store.save_content([unit])
        with pytest.raises(StoreError, match=r"a unit of work on this database is open"):
            async with store.unit_of_work():
                pass
        assert await store.find_content([unit]) == [None]
        await uow.save_content([unit])
    assert await store.save_content([FileUnit(path="f2", digest=sha(2))])


async def test_a_unit_of_work_is_used_inside_its_block_only(store: Store) -> None:
    """Calls before or after the block, and entering twice, are refused with StoreError."""
    uow = store.unit_of_work()
    with pytest.raises(StoreError, match="not open"):
        await uow.find_artifacts([sha(1)])
    async with uow:
        pass
    with pytest.raises(StoreError, match="not open"):
        await uow.save_artifacts([Artifact(sha256=sha(1))])
    with pytest.raises(StoreError, match="entered only once"):
        async with uow:
            pass


async def test_sqlite_unit_of_work_takes_the_write_lock_at_its_first_call(tmp_path: Path) -> None:
    """On SQLite the unit of work begins IMMEDIATE with its first call, in that call's
    thread: before it other writers may write; from it to the end they are locked out."""
    path = tmp_path / "stageline.db"
    async with open_store(path) as store:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            async with store.unit_of_work() as uow:
                other.execute("BEGIN IMMEDIATE")  # no call yet: the lock is free
                other.execute("ROLLBACK")
                await uow.run_sync(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")  # ended: free again
            other.execute("ROLLBACK")
        finally:
            other.close()


async def test_a_unit_of_work_without_calls_writes_and_holds_nothing(
    store: Store, database_url: str
) -> None:
    """A block that makes no call opens no transaction: it commits nothing, fails nothing,
    and a writer of another store is not kept waiting meanwhile."""
    async with open_store(database_url) as other:
        async with store.unit_of_work():
            with anyio.fail_after(30):
                saved = await other.save_remote(Remote(url="http://x.test/", name="beside"))
        with pytest.raises(ZeroDivisionError):
            async with store.unit_of_work():
                raise ZeroDivisionError
    assert (await store.get_remote(saved.pk or 0)).url == "http://x.test/"
