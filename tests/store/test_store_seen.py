"""Mirror removal through the database: mark_seen, remove_unseen, and the seen record's life."""

from __future__ import annotations

from contextlib import nullcontext

import anyio
import pytest
import sqlalchemy as sa
from store_support import FileUnit, PackageUnit, count_rows, sha

from stageline import StoreArgumentError, StoreError
from stageline.models import Content, Repository
from stageline.store import Store

pytestmark = pytest.mark.anyio

SEEN = "new_version_seen"


async def saved_files(store: Store, numbers: range | list[int], prefix: str = "f") -> list[Content]:
    return await store.save_content([FileUnit(path=f"{prefix}{n}", digest=sha(n)) for n in numbers])


async def content_of(store: Store, repository: Repository) -> set[int]:
    version = await store.latest_version(repository)
    return {unit.pk or 0 async for chunk in store.iter_content(version) for unit in chunk}


def pks(units: list[Content]) -> set[int]:
    return {unit.pk or 0 for unit in units}


async def test_remove_unseen_removes_exactly_the_units_not_marked(
    store: Store, database_url: str
) -> None:
    """Old and newly added units not marked go, marked ones stay; the record is then deleted."""
    repository = await store.create_repository(Repository(name="repo"))
    old = await saved_files(store, range(12))
    async with store.new_version(repository) as first:
        await first.add_content(old)
    new = await saved_files(store, range(4), prefix="new")
    async with store.new_version(repository) as mirror:
        await mirror.add_content(new)
        # Marked in several calls, as a stage does per batch; some units twice.
        await mirror.mark_seen(old[:3])
        await mirror.mark_seen([unit.pk or 0 for unit in old[2:5]])
        await mirror.mark_seen(new[:2])
        assert count_rows(database_url, SEEN) == 7
        removed = await mirror.remove_unseen()
    assert removed == 7 + 2  # old[5:] and new[2:]
    assert await content_of(store, repository) == pks(old[:5]) | pks(new[:2])
    result = mirror.result
    assert result is not None
    assert (result.content_count, result.added_count, result.removed_count) == (7, 2, 7)
    assert count_rows(database_url, SEEN) == 0


async def test_remove_unseen_is_idempotent_and_keeps_units_marked_later(store: Store) -> None:
    """A second call removes only what is unseen by then; marking after the first is kept."""
    repository = await store.create_repository(Repository(name="repo"))
    units = await saved_files(store, range(6))
    async with store.new_version(repository) as first:
        await first.add_content(units[:4])
    async with store.new_version(repository) as mirror:
        await mirror.mark_seen(units[:2])
        assert await mirror.remove_unseen() == 2
        assert await mirror.remove_unseen() == 0
        await mirror.add_content(units[4:])
        await mirror.mark_seen(units[4:5])
        assert await mirror.remove_unseen() == 1
    assert await content_of(store, repository) == pks(units[:2]) | pks(units[4:5])


async def test_marking_changes_nothing_in_the_version(store: Store) -> None:
    """Units marked but not added are not added; nothing marked means everything goes."""
    repository = await store.create_repository(Repository(name="repo"))
    units = await saved_files(store, range(3))
    packages = await store.save_content([PackageUnit(name="p", version="1")])
    async with store.new_version(repository) as first:
        await first.add_content([*units[:2], *packages])
    async with store.new_version(repository) as marking:
        await marking.mark_seen(units)
        await marking.mark_seen([])
    assert marking.result is None
    async with store.new_version(repository) as empty:
        assert await empty.remove_unseen() == 3
    assert await content_of(store, repository) == set()


async def test_mark_seen_refuses_unsaved_units_and_closed_versions(store: Store) -> None:
    """An unsaved unit is a StoreArgumentError; marking outside the block a StoreError."""
    repository = await store.create_repository(Repository(name="repo"))
    async with store.new_version(repository) as new_version:
        with pytest.raises(StoreArgumentError, match="must be saved to be marked seen"):
            await new_version.mark_seen([FileUnit(path="x", digest=sha(1))])
    with pytest.raises(StoreError, match="not open"):
        await new_version.mark_seen([1])
    with pytest.raises(StoreError, match="not open"):
        await new_version.remove_unseen()


@pytest.mark.parametrize("outcome", ["raise", "cancel"])
async def test_a_failed_or_cancelled_version_leaves_no_seen_rows(
    store: Store, database_url: str, outcome: str
) -> None:
    """The record of a version that fails or is cancelled goes with it; the next sync is clean."""
    repository = await store.create_repository(Repository(name="repo"))
    units = await saved_files(store, range(4))
    async with store.new_version(repository) as first:
        await first.add_content(units)
    failing = store.new_version(repository)

    async def fail(scope: anyio.CancelScope) -> None:
        async with failing:
            await failing.mark_seen(units)
            assert count_rows(database_url, SEEN) == 4
            if outcome == "cancel":
                scope.cancel()
                await anyio.sleep_forever()
            raise RuntimeError("boom")

    with anyio.CancelScope() as scope:
        with pytest.raises(RuntimeError, match="boom") if outcome == "raise" else nullcontext():
            await fail(scope)
    assert scope.cancelled_caught == (outcome == "cancel")
    assert failing.result is None
    assert count_rows(database_url, SEEN) == 0
    # The next version (on SQLite it may get the failed one's id again) sees nothing marked.
    async with store.new_version(repository) as mirror:
        await mirror.mark_seen(units[:1])
        assert await mirror.remove_unseen() == 3
    assert await content_of(store, repository) == pks(units[:1])


async def test_the_record_of_a_crashed_sync_is_removed_by_the_next_one(
    store: Store, database_url: str
) -> None:
    """Seen rows left by a version that could not be removed are deleted with it, later."""
    repository = await store.create_repository(Repository(name="repo"))
    units = await saved_files(store, range(3))
    async with store.new_version(repository) as first:
        await first.add_content(units)
    armed = [False]

    def lose_connection(conn: object, cursor: object, statement: str, *args: object) -> None:
        if armed[0] and statement.startswith(f"DELETE FROM {SEEN}"):
            raise sa.exc.OperationalError(statement, None, ConnectionError("connection lost"))

    async def crash() -> None:
        async with store.new_version(repository) as crashed:
            await crashed.mark_seen(units)
            armed[0] = True
            raise RuntimeError("the sync's own error")

    sa.event.listen(store._engine, "before_cursor_execute", lose_connection)
    try:
        with pytest.raises(RuntimeError, match="the sync's own error"):
            await crash()
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", lose_connection)
    # Left behind, as by a process that died: an incomplete version and its record.
    assert count_rows(database_url, SEEN) == 3
    async with store.new_version(repository) as mirror:
        assert count_rows(database_url, SEEN) == 0
        await mirror.mark_seen(units[1:])
        assert await mirror.remove_unseen() == 1
    assert await content_of(store, repository) == pks(units[1:])


async def test_mirror_versions_of_two_repositories_at_once_keep_their_own_record(
    store: Store, database_url: str
) -> None:
    """Interleaved mirrors of two repositories sharing units each remove only their unseen."""
    units = await saved_files(store, range(10))
    one = await store.create_repository(Repository(name="one"))
    two = await store.create_repository(Repository(name="two"))
    for repository in (one, two):
        async with store.new_version(repository) as first:
            await first.add_content(units)
    marked = {name: anyio.Event() for name in ("one", "two")}
    removed: dict[str, int] = {}

    async def mirror(repository: Repository, keep: list[Content], other: str) -> None:
        async with store.new_version(repository) as new_version:
            await new_version.mark_seen(keep[:2])
            await new_version.mark_seen(keep[2:])
            marked[repository.name].set()
            # Both records exist at once before either version removes anything.
            await marked[other].wait()
            removed[repository.name] = await new_version.remove_unseen()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(mirror, one, units[:6], "two")
            tg.start_soon(mirror, two, units[4:], "one")
    assert removed == {"one": 4, "two": 4}
    assert await content_of(store, one) == pks(units[:6])
    assert await content_of(store, two) == pks(units[4:])
    assert count_rows(database_url, SEEN) == 0


async def test_remove_content_except_keeps_the_given_keys_and_those_marked(store: Store) -> None:
    """remove_content_except marks the keys it is given, in chunks, and removes the unseen."""
    repository = await store.create_repository(Repository(name="repo"))
    units = await saved_files(store, range(25))
    async with store.new_version(repository) as first:
        await first.add_content(units)
    keep = {unit.pk or 0 for unit in units[::3]}
    async with store.new_version(repository) as mirror:
        await mirror.mark_seen(units[1:2])
        with pytest.raises(StoreArgumentError, match="chunk_size"):
            await mirror.remove_content_except(keep, chunk_size=0)
        removed = await mirror.remove_content_except(keep, chunk_size=4)
    assert removed == 25 - len(keep) - 1
    assert await content_of(store, repository) == keep | pks(units[1:2])
