"""Repository versions: ranges, commit, no-op, failure, cancellation, repo keys, streaming."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from store_support import FileUnit, PackageUnit, count_rows, count_statements, sha

from stageline import StoreArgumentError, StoreError
from stageline.models import Content, Repository
from stageline.store import Store

pytestmark = pytest.mark.anyio


async def make_repository(store: Store, name: str = "repo") -> Repository:
    return await store.create_repository(Repository(name=name))


async def saved_files(store: Store, numbers: range | list[int], prefix: str = "f") -> list[Content]:
    return await store.save_content([FileUnit(path=f"{prefix}{n}", digest=sha(n)) for n in numbers])


async def content_of(store: Store, repository: Repository, number: int | None = None) -> set[int]:
    version = await store.get_version(repository, number)
    pks: set[int] = set()
    async for chunk in store.iter_content(version):
        pks.update(unit.pk or 0 for unit in chunk)
    return pks


async def test_create_repository_makes_version_zero(store: Store) -> None:
    """A new repository has an empty, complete version 0; its name is unique."""
    repository = await make_repository(store)
    [zero] = await store.list_versions(repository)
    assert (zero.number, zero.complete, zero.content_count) == (0, True, 0)
    with pytest.raises(StoreError, match="already exists"):
        await store.create_repository(Repository(name="repo"))
    again = await store.create_repository(Repository(name="repo"), exist_ok=True)
    assert again.pk == repository.pk
    assert (await store.get_repository("repo")).pk == repository.pk
    with pytest.raises(StoreError, match="no repository named 'nope'"):
        await store.get_repository("nope")


async def test_versions_number_up_by_one_and_count_changes(store: Store) -> None:
    """Each committed version is number+1 with its content, added and removed counts."""
    repository = await make_repository(store)
    units = await saved_files(store, range(10))
    async with store.new_version(repository) as first:
        await first.add_content(units[:6])
    async with store.new_version(repository) as second:
        await second.add_content(units[6:])
        await second.remove_content(units[:2])
    assert first.result is not None
    assert second.result is not None
    assert (first.result.number, first.result.content_count, first.result.added_count) == (1, 6, 6)
    v2 = second.result
    assert (v2.number, v2.base_version, v2.content_count, v2.added_count, v2.removed_count) == (
        2,
        1,
        8,
        4,
        2,
    )
    assert [v.number for v in await store.list_versions(repository)] == [0, 1, 2]
    assert await content_of(store, repository, 1) == {u.pk for u in units[:6]}
    assert await content_of(store, repository, 2) == {u.pk for u in units[2:]}
    added: list[Content] = []
    async for chunk in store.iter_content(v2, change="added"):
        added += chunk
    removed: list[Content] = []
    async for chunk in store.iter_content(v2, change="removed"):
        removed += chunk
    assert {u.pk for u in added} == {u.pk for u in units[6:]}
    assert {u.pk for u in removed} == {u.pk for u in units[:2]}


async def test_nothing_changed_creates_no_version(store: Store) -> None:
    """Adding what is there (and a refused removal of what is not) leaves no new version."""
    repository = await make_repository(store)
    units = await saved_files(store, range(3))
    async with store.new_version(repository) as first:
        await first.add_content(units[:2])
    async with store.new_version(repository) as idle:
        await idle.add_content(units[:2])
        with pytest.raises(StoreArgumentError, match="not in version 2"):
            await idle.remove_content(units[2:])
    async with store.new_version(repository) as undone:
        await undone.add_content(units[2:])
        await undone.remove_content(units[2:])
    assert idle.result is None
    assert undone.result is None
    assert [v.number for v in await store.list_versions(repository)] == [0, 1]
    async with store.new_version(repository) as next_one:
        await next_one.add_content(units[2:])
    assert next_one.result is not None
    assert next_one.result.number == 2


async def test_failed_version_leaves_nothing(store: Store) -> None:
    """An exception inside the block removes the version and undoes its changes."""
    repository = await make_repository(store)
    units = await saved_files(store, range(4))
    async with store.new_version(repository) as first:
        await first.add_content(units[:2])
    failing = store.new_version(repository)

    async def fail() -> None:
        async with failing:
            await failing.add_content(units[2:])
            await failing.remove_content(units[:1])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    assert failing.result is None
    assert [v.number for v in await store.list_versions(repository)] == [0, 1]
    assert await content_of(store, repository) == {units[0].pk, units[1].pk}
    async with store.new_version(repository) as retry:
        await retry.add_content(units[3:])
    assert retry.result is not None
    assert retry.result.number == 2
    assert await content_of(store, repository) == {units[0].pk, units[1].pk, units[3].pk}


async def test_cancelled_version_leaves_nothing(store: Store) -> None:
    """A cancellation inside the block removes the version, shielded from the cancellation."""
    repository = await make_repository(store)
    units = await saved_files(store, range(3))
    async with store.new_version(repository) as first:
        await first.add_content(units[:1])
    with anyio.CancelScope() as scope:
        async with store.new_version(repository) as cancelled:
            await cancelled.add_content(units[1:])
            await cancelled.remove_content(units[:1])
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert cancelled.result is None
    assert [v.number for v in await store.list_versions(repository)] == [0, 1]
    assert await content_of(store, repository) == {units[0].pk}


async def test_version_is_invisible_until_committed(store: Store) -> None:
    """While a version is built, readers see the previous one, unchanged."""
    repository = await make_repository(store)
    units = await saved_files(store, range(4))
    async with store.new_version(repository) as first:
        await first.add_content(units[:2])
    async with store.new_version(repository) as building:
        await building.add_content(units[2:])
        await building.remove_content(units[:1])
        latest = await store.latest_version(repository)
        assert latest.number == 1
        assert await content_of(store, repository) == {units[0].pk, units[1].pk}
        seen: set[int] = set()
        async for chunk in building.iter_content():
            seen.update(u.pk or 0 for u in chunk)
        assert seen == {units[1].pk, units[2].pk, units[3].pk}
    assert await content_of(store, repository) == {units[1].pk, units[2].pk, units[3].pk}


async def test_repo_key_last_added_wins(store: Store) -> None:
    """Two units with the same repo key never share a version: the one added last wins."""
    repository = await make_repository(store)
    old, new, newer, other = await store.save_content(
        [
            FileUnit(path="same", digest=sha(1)),
            FileUnit(path="same", digest=sha(2)),
            FileUnit(path="same", digest=sha(3)),
            FileUnit(path="other", digest=sha(4)),
        ]
    )
    async with store.new_version(repository) as v1:
        await v1.add_content([old, other])
    async with store.new_version(repository) as v2:
        await v2.add_content([new])
    assert await content_of(store, repository, 2) == {new.pk, other.pk}
    async with store.new_version(repository) as v3:
        await v3.add_content([old, newer])  # in one batch the later one wins
        await v3.add_content([old])  # and a later batch wins over an earlier one
    assert await content_of(store, repository, 3) == {old.pk, other.pk}
    assert v3.result is not None
    assert (v3.result.added_count, v3.result.removed_count) == (1, 1)
    assert await content_of(store, repository, 1) == {old.pk, other.pk}


async def test_a_present_unit_after_a_new_one_with_its_key_wins(store: Store) -> None:
    """In one batch the later of two units with one repo key wins, also when the later one
    is in the version already and the earlier one is new."""
    repository = await make_repository(store)
    old, new = await store.save_content(
        [FileUnit(path="same", digest=sha(1)), FileUnit(path="same", digest=sha(2))]
    )
    async with store.new_version(repository) as v1:
        await v1.add_content([old])
    async with store.new_version(repository) as v2:
        assert await v2.add_content([new, old]) == 0
    assert v2.result is None
    assert await content_of(store, repository) == {old.pk}


async def test_adding_units_the_version_holds_reads_and_writes_nothing(store: Store) -> None:
    """A batch wholly in the version (a re-sync's) costs one query: no key, no write."""
    repository = await make_repository(store)
    units = await saved_files(store, range(300))
    async with store.new_version(repository) as v1:
        await v1.add_content(units)
    async with store.new_version(repository) as v2:
        with count_statements(store) as statements:
            assert await v2.add_content(units) == 0
    assert [s.split()[0].upper() for s in statements] == ["SELECT"], statements
    assert v2.result is None


async def test_types_without_repo_key_coexist(store: Store) -> None:
    """Content types without repo_key_fields never replace one another."""
    repository = await make_repository(store)
    packages = await store.save_content([PackageUnit(name="p", version=str(n)) for n in range(3)])
    async with store.new_version(repository) as version:
        await version.add_content(packages)
    assert await content_of(store, repository) == {p.pk for p in packages}


async def test_remove_then_add_again_in_one_version(store: Store) -> None:
    """Removing and re-adding a unit in one version restores it without a change."""
    repository = await make_repository(store)
    units = await saved_files(store, range(2))
    async with store.new_version(repository) as first:
        await first.add_content(units)
    async with store.new_version(repository) as second:
        await second.remove_content(units)
        await second.add_content(units[:1])
    assert second.result is not None
    assert (second.result.added_count, second.result.removed_count) == (0, 1)
    assert await content_of(store, repository) == {units[0].pk}


async def test_removing_content_not_in_the_version_is_refused(store: Store) -> None:
    """remove_content of units the version does not hold names them and removes nothing."""
    repository = await make_repository(store)
    units = await saved_files(store, range(4))
    async with store.new_version(repository) as first:
        await first.add_content(units[:2])
    absent = sorted(u.pk or 0 for u in units[2:])
    async with store.new_version(repository) as second:
        with pytest.raises(
            StoreArgumentError, match=rf"\[{absent[0]}, {absent[1]}\].*not in version 2"
        ):
            await second.remove_content([units[0], units[2], units[3].pk or 0])
        await second.remove_content([units[1]])
        # Removed already in this version: not in it any more.
        with pytest.raises(StoreArgumentError, match=rf"\[{units[1].pk}\].*not in version 2"):
            await second.remove_content([units[1].pk or 0])
    assert await content_of(store, repository) == {units[0].pk}


async def test_a_version_costs_its_changes_not_the_repository(database_url: str) -> None:
    """One change on a large repository writes one row: versions are ranges, not copies."""
    from stageline.store import open_store

    async with open_store(database_url) as store:
        repository = await make_repository(store)
        units = await saved_files(store, range(1500))
        async with store.new_version(repository) as first:
            await first.add_content(units)
        rows_before = count_rows(database_url, "repository_content")
        extra = await saved_files(store, [5000], prefix="x")
        async with store.new_version(repository) as second:
            await second.add_content(extra)
        assert second.result is not None
        assert second.result.content_count == 1501
    assert count_rows(database_url, "repository_content") == rows_before + 1


async def test_iter_content_streams_in_bounded_chunks(store: Store) -> None:
    """iter_content yields chunks of at most chunk_size, covering every unit once."""
    repository = await make_repository(store)
    units = await saved_files(store, range(23))
    async with store.new_version(repository) as first:
        await first.add_content(units)
    version = await store.latest_version(repository)
    sizes: list[int] = []
    pks: list[int] = []
    async for chunk in store.iter_content(version, chunk_size=5):
        sizes.append(len(chunk))
        pks += [u.pk or 0 for u in chunk]
    assert sizes == [5, 5, 5, 5, 3]
    assert sorted(pks) == pks
    assert set(pks) == {u.pk for u in units}
    with pytest.raises(ValueError, match="chunk_size"):
        async for _chunk in store.iter_content(version, chunk_size=0):
            pass


async def test_one_new_version_per_repository_at_a_time(store: Store) -> None:
    """A second new version of a repository being built is refused with a clear error."""
    repository = await make_repository(store)
    other = await make_repository(store, "other")
    async with store.new_version(repository):
        with pytest.raises(StoreError, match="already has a new version being built"):
            async with store.new_version(repository):
                pass
        async with store.new_version(other) as parallel:
            await parallel.add_content(await saved_files(store, [1]))
        assert parallel.result is not None
    async with store.new_version(repository) as later:
        pass
    assert later.result is None


async def test_changes_outside_the_block_are_refused(store: Store) -> None:
    """A NewVersion cannot be changed before it is entered or after it closed."""
    repository = await make_repository(store)
    units = await saved_files(store, [1])
    pending = store.new_version(repository)
    with pytest.raises(StoreError, match="not open"):
        await pending.add_content(units)
    async with pending:
        await pending.add_content(units)
    with pytest.raises(StoreError, match="not open"):
        await pending.remove_content(units)
    with pytest.raises(ValueError, match="must be saved"):
        async with store.new_version(repository) as version:
            await version.add_content([FileUnit(path="x", digest=sha(9))])


@pytest.fixture
def second_database_url(database_url: str, request: pytest.FixtureRequest) -> str:
    """Another fresh database of the same kind: a second file, or a second schema."""
    if "://" not in database_url:
        return database_url + ".second.db"
    return str(request.getfixturevalue("postgresql_url_2"))


@pytest.fixture
def postgresql_url_2(postgresql_url: str) -> Iterator[str]:
    """A second PostgreSQL schema in the same database as ``postgresql_url``."""
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    url = sa.make_url(postgresql_url)
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(url.difference_update_query(["options"]), poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


async def test_stores_sharing_a_server_lock_only_their_own_repositories(
    database_url: str, second_database_url: str
) -> None:
    """Two stores in one PostgreSQL database (or one directory) build versions independently."""
    from stageline.store import open_store

    async with open_store(database_url) as one, open_store(second_database_url) as two:
        first = await make_repository(one, "first")
        second = await make_repository(two, "second")
        assert first.pk == second.pk  # the same id, in different stores
        async with one.new_version(first) as building_first:
            await building_first.add_content(await saved_files(one, [1]))
            async with two.new_version(second) as building_second:
                await building_second.add_content(await saved_files(two, [2]))
        assert building_first.result is not None
        assert building_second.result is not None


async def test_concurrent_changes_to_one_version_add_each_unit_once(store: Store) -> None:
    """Two tasks adding the same units to one new version at once add each unit once."""
    import contextlib
    import threading

    import sqlalchemy as sa

    repository = await make_repository(store)
    packages = await store.save_content([PackageUnit(name=f"p{n}", version="1") for n in range(20)])
    both_checked = threading.Barrier(2, timeout=2)

    def before_insert(conn: object, cursor: object, statement: str, *args: object) -> None:
        # Hold the first writer just before it inserts until the second one has looked up
        # what is present too (or, when the writers are serialized, for two seconds).
        if statement.startswith("INSERT INTO repository_content"):
            with contextlib.suppress(threading.BrokenBarrierError):
                both_checked.wait()

    sa.event.listen(store._engine, "before_cursor_execute", before_insert)
    try:
        async with store.new_version(repository) as version, anyio.create_task_group() as tg:
            tg.start_soon(version.add_content, packages)
            tg.start_soon(version.add_content, packages)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", before_insert)
    assert version.result is not None
    assert (version.result.content_count, version.result.added_count) == (20, 20)
    seen: list[int] = []
    async for chunk in store.iter_content(version.result):
        seen += [unit.pk or 0 for unit in chunk]
    assert sorted(seen) == sorted(p.pk or 0 for p in packages)


async def test_one_version_at_a_time_whatever_path_names_the_database(
    tmp_path: Path, database_url: str
) -> None:
    """A SQLite file opened through a symlink to it still takes the same repository lock."""
    from stageline.store import open_store

    if "://" in database_url:
        alias = database_url  # PostgreSQL: one database, whatever the URL
    else:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "link.db").symlink_to(database_url)
        alias = str(tmp_path / "elsewhere" / "link.db")
    async with open_store(database_url) as one, open_store(alias) as two:
        repository = await make_repository(one)
        async with one.new_version(repository) as building:
            await building.add_content(await saved_files(one, [1]))
            with pytest.raises(StoreError, match="already has a new version being built"):
                async with two.new_version(repository):
                    pass
        assert building.result is not None
        assert building.result.content_count == 1


def refuse_clean_up(store: Store) -> tuple[Callable[[bool], None], Callable[[], None]]:
    """Make the removal of a failed version fail as a lost connection would, once armed.

    Returns (arm, disarm): arm(True) makes every later DELETE of repository_content rows
    fail; disarm() removes the hook.
    """
    armed = [False]

    def fail_deletes(conn: object, cursor: object, statement: str, *args: object) -> None:
        if armed[0] and statement.startswith("DELETE FROM repository_content"):
            raise sa.exc.OperationalError(
                statement, None, ConnectionError("server closed the connection unexpectedly")
            )

    def arm(value: bool) -> None:
        armed[0] = value

    sa.event.listen(store._engine, "before_cursor_execute", fail_deletes)
    return arm, lambda: sa.event.remove(store._engine, "before_cursor_execute", fail_deletes)


async def test_a_failed_clean_up_does_not_hide_the_sync_error(store: Store) -> None:
    """When removing a failed version fails too, the caller sees its own error, with a note."""
    repository = await make_repository(store)
    units = await saved_files(store, range(3))
    arm, disarm = refuse_clean_up(store)

    async def fail() -> None:
        async with store.new_version(repository) as failing:
            await failing.add_content(units[:2])
            arm(True)
            raise RuntimeError("the sync's own error")

    try:
        with pytest.raises(RuntimeError, match="the sync's own error") as info:
            await fail()
        arm(False)
        with anyio.CancelScope() as scope:
            async with store.new_version(repository) as cancelled:
                await cancelled.add_content(units[2:])
                arm(True)
                scope.cancel()
                await anyio.sleep_forever()
        arm(False)
    finally:
        disarm()
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1
    assert "could not remove the failed version 1" in notes[0]
    assert "server closed the connection" in notes[0]
    assert scope.cancelled_caught
    # The versions left behind are invisible, and the next new version removes them.
    assert [v.number for v in await store.list_versions(repository)] == [0]
    async with store.new_version(repository) as retry:
        await retry.add_content(units[2:])
    assert retry.result is not None
    assert (retry.result.number, retry.result.content_count) == (1, 1)


async def test_a_failed_commit_is_raised_even_when_its_clean_up_fails(store: Store) -> None:
    """A commit that fails, followed by a failed removal, raises the commit's error with a note."""
    repository = await make_repository(store)
    units = await saved_files(store, range(2))
    arm, disarm = refuse_clean_up(store)

    def fail_commit(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("UPDATE repository_versions"):
            arm(True)
            raise sa.exc.OperationalError(statement, None, ConnectionError("commit refused"))

    sa.event.listen(store._engine, "before_cursor_execute", fail_commit)
    try:
        with pytest.raises(StoreError, match=r"could not commit version 1.*commit refused") as info:
            async with store.new_version(repository) as failing:
                await failing.add_content(units)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", fail_commit)
        disarm()
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1
    assert "could not remove the failed version 1" in notes[0]
    assert [v.number for v in await store.list_versions(repository)] == [0]
