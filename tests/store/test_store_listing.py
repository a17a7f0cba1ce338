"""Listing what is saved: repositories, a version's files by path, the remotes of a version."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from store_support import FileUnit, postgresql_base_url, sha

from stageline import StoreArgumentError
from stageline.models import (
    Artifact,
    Content,
    ContentArtifact,
    Remote,
    RemoteArtifact,
    Repository,
    RepositoryVersion,
)
from stageline.store import Store, open_store
from stageline.store._migrate import upgrade_to

pytestmark = pytest.mark.anyio

PATHS = ["a", "b/c", "b/d/e", "b/d/f", "b0", "bz", "b/é", "b/\U0001f600", "c"]


async def saved_files(store: Store, paths: list[str]) -> list[Content]:
    """Save a FileUnit per path, each with one content artifact at that path (deferred)."""
    units = [FileUnit(path=path, digest=sha(n)) for n, path in enumerate(paths)]
    return await store.save_content(
        units,
        [ContentArtifact(content=unit, artifact=None, relative_path=unit.path) for unit in units],  # type: ignore[attr-defined]
    )


async def version_of(store: Store, paths: list[str]) -> RepositoryVersion:
    """Version 1 of a new repository "repo" holding one saved file per path."""
    repository = await store.create_repository(Repository(name="repo"))
    units = await saved_files(store, paths)
    async with store.new_version(repository) as new:
        await new.add_content(units)
    version = await store.find_version("repo")
    assert version is not None
    return version


async def test_list_repositories_by_name(store: Store) -> None:
    """Every repository is listed, ordered by name, with its description."""
    assert await store.list_repositories() == []
    await store.create_repository(Repository(name="zeta", description="last"))
    await store.create_repository(Repository(name="alpha"))
    listed = await store.list_repositories()
    assert [(r.name, r.description) for r in listed] == [("alpha", ""), ("zeta", "last")]
    assert all(r.pk is not None for r in listed)


async def test_list_content_artifacts_by_prefix_in_code_point_order(store: Store) -> None:
    """Paths come in code point order, only those under the prefix, paged with after."""
    repository = await store.create_repository(Repository(name="repo"))
    outside = await store.create_repository(Repository(name="outside"))
    units = await saved_files(store, PATHS)
    async with store.new_version(repository) as new:
        await new.add_content(units[:-1])  # "c" is not in this version
    async with store.new_version(outside) as new:
        await new.add_content(units)
    version = await store.find_version("repo")
    assert version is not None

    every = [ca.relative_path for ca in await store.list_content_artifacts(version)]
    assert every == sorted(PATHS[:-1])
    under_b = await store.list_content_artifacts(version, prefix="b/")
    assert [ca.relative_path for ca in under_b] == ["b/c", "b/d/e", "b/d/f", "b/é", "b/\U0001f600"]
    assert all(ca.artifact is None and ca.pk is not None for ca in under_b)
    assert under_b[0].content.path == "b/c"  # type: ignore[attr-defined]

    pages: list[str] = []
    after = None
    while page := await store.list_content_artifacts(version, prefix="b", after=after, limit=2):
        pages.extend(ca.relative_path for ca in page)
        after = page[-1].relative_path
    assert pages == ["b/c", "b/d/e", "b/d/f", "b/é", "b/\U0001f600", "b0", "bz"]

    assert await store.list_content_artifacts(version, prefix="nothing/") == []
    assert await store.list_content_artifacts(version, prefix="b\x00") == []
    zero = await store.find_version("repo", 0)
    assert zero is not None
    assert await store.list_content_artifacts(zero) == []


async def test_list_content_artifacts_carries_saved_artifacts(store: Store) -> None:
    """A content artifact whose file is saved comes with its artifact."""
    repository = await store.create_repository(Repository(name="repo"))
    [artifact] = await store.save_artifacts([Artifact(size=3, sha256=sha(99))])
    unit = FileUnit(path="x", digest=sha(99))
    await store.save_content(
        [unit], [ContentArtifact(content=unit, artifact=artifact, relative_path="x")]
    )
    async with store.new_version(repository) as new:
        await new.add_content([unit])
    version = await store.find_version("repo")
    assert version is not None
    [found] = await store.list_content_artifacts(version)
    assert found.artifact is not None
    assert (found.artifact.sha256, found.artifact.size) == (sha(99), 3)


async def test_list_content_artifacts_refuses_bad_arguments(store: Store) -> None:
    """A limit below 1 or a prefix that is no str is a StoreArgumentError."""
    repository = await store.create_repository(Repository(name="repo"))
    version = await store.find_version("repo")
    assert version is not None
    assert version.repository.pk == repository.pk
    with pytest.raises(StoreArgumentError, match="limit"):
        await store.list_content_artifacts(version, limit=0)
    with pytest.raises(StoreArgumentError, match="prefix"):
        await store.list_content_artifacts(version, prefix=None)  # type: ignore[arg-type]


async def test_find_version_remotes(store: Store) -> None:
    """The remotes with a remote artifact in the version are found, each once, oldest first."""
    repository = await store.create_repository(Repository(name="repo"))
    first = await store.save_remote(Remote(url="http://one.test/", name="one"))
    second = await store.save_remote(Remote(url="http://two.test/", name="two"))
    await store.save_remote(Remote(url="http://unused.test/", name="unused"))
    units = await saved_files(store, ["a", "b"])
    content_artifacts = await store.find_content_artifacts(units)
    await store.save_remote_artifacts(
        [
            RemoteArtifact(
                url="http://two.test/a", content_artifact=content_artifacts[0], remote=second
            ),
            RemoteArtifact(
                url="http://one.test/a", content_artifact=content_artifacts[0], remote=first
            ),
            RemoteArtifact(
                url="http://two.test/b", content_artifact=content_artifacts[1], remote=second
            ),
        ]
    )
    zero = await store.find_version("repo")
    assert zero is not None
    assert await store.find_version_remotes(zero) == []
    async with store.new_version(repository) as new:
        await new.add_content(units)
    version = await store.find_version("repo")
    assert version is not None
    assert [r.name for r in await store.find_version_remotes(version)] == ["one", "two"]


async def test_listing_orders_by_code_point_under_any_collation(store: Store) -> None:
    """On PostgreSQL, the listing is the same when the database's collation is not bytewise
    (an explicit "C" comparison) as when it is (the path index); SQLite is bytewise."""
    version = await version_of(store, PATHS)
    native = [ca.relative_path for ca in await store.list_content_artifacts(version, prefix="b")]
    assert native == ["b/c", "b/d/e", "b/d/f", "b/é", "b/\U0001f600", "b0", "bz"]
    assert store._bytewise_text is True  # SQLite, and the test PostgreSQL (collation "C")
    if store.is_postgresql:
        store._bytewise_text = False  # as on a database ordering text by language rules
        forced = await store.list_content_artifacts(version, prefix="b")
        assert [ca.relative_path for ca in forced] == native


@pytest.fixture
def icu_database_url() -> Iterator[str]:
    """A PostgreSQL database whose default collation is ICU's "en-US" while its C library
    setting (``datcollate``) is "C"; dropped after the test. Skipped where the server
    cannot make one (PostgreSQL before 15, or built without ICU)."""
    base = sa.make_url(postgresql_base_url())
    name = f"test_icu_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            try:
                conn.exec_driver_sql(
                    f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu "
                    "ICU_LOCALE 'en-US' LOCALE 'C'"
                )
            except sa.exc.DBAPIError as exc:
                pytest.skip(f"this PostgreSQL cannot make an ICU database: {exc.orig}")
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        admin.dispose()


@pytest.mark.postgresql
async def test_an_icu_collation_is_not_taken_for_code_point_order(icu_database_url: str) -> None:
    """On a database that sorts text by ICU's rules but names "C" as its C library
    collation, listings still come in code point order with the right prefix ranges
    (the store compares in "C" explicitly there)."""
    async with open_store(icu_database_url) as store:
        version = await version_of(store, ["B", "a", "b-", "b/c", "b0", "bZ", "c"])
        listed = await store.list_content_artifacts(version, prefix="b")
        assert [ca.relative_path for ca in listed] == ["b-", "b/c", "b0", "bZ"]
        everything = await store.list_content_artifacts(version)
        assert [ca.relative_path for ca in everything] == sorted(
            ["B", "a", "b-", "b/c", "b0", "bZ", "c"]
        )
        assert store._bytewise_text is False


def _indexes(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        return {index["name"] for index in sa.inspect(engine).get_indexes("content_artifacts")}
    finally:
        engine.dispose()


@pytest.mark.postgresql
async def test_listings_under_a_non_c_collation_walk_an_index(icu_database_url: str) -> None:
    """Where PostgreSQL orders text by language rules, the store has an index on paths in
    "C" (revision 0005), and a listing's query walks it instead of sorting the version."""
    async with open_store(icu_database_url) as store:
        version = await version_of(store, PATHS)
        statements: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            if "ORDER BY" in statement:
                statements.append((statement, parameters))

        sa.event.listen(store._engine, "before_cursor_execute", record)
        try:
            listed = await store.list_content_artifacts(version, prefix="b/", after="b/c")
        finally:
            sa.event.remove(store._engine, "before_cursor_execute", record)
    assert [ca.relative_path for ca in listed] == ["b/d/e", "b/d/f", "b/é", "b/\U0001f600"]
    assert "ix_content_artifacts_relative_path_c" in _indexes(icu_database_url)
    [(statement, parameters)] = statements
    engine = sa.create_engine(icu_database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            # A few rows make a sequential scan cheapest; the question is whether the
            # index can serve the query at all.
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_sort = off")
            raw = conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor:
                cursor.execute("EXPLAIN " + statement, parameters)
                plan = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        engine.dispose()
    assert "ix_content_artifacts_relative_path_c" in plan, plan


@pytest.mark.postgresql
async def test_a_c_database_has_no_second_path_index(postgresql_url: str) -> None:
    """On a "C" database (the test server's) the path index already orders by code point:
    no second one costs writes."""
    async with open_store(postgresql_url):
        pass
    indexes = _indexes(postgresql_url)
    assert "ix_content_artifacts_relative_path" in indexes
    assert "ix_content_artifacts_relative_path_c" not in indexes


@pytest.mark.postgresql
async def test_an_upgrade_adds_the_code_point_path_index(icu_database_url: str) -> None:
    """A database at revision 0004 under a non-"C" collation gets the index on upgrade."""
    engine = sa.create_engine(icu_database_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            upgrade_to(conn, "0004")
    finally:
        engine.dispose()
    assert "ix_content_artifacts_relative_path_c" not in _indexes(icu_database_url)
    async with open_store(icu_database_url):
        pass
    assert "ix_content_artifacts_relative_path_c" in _indexes(icu_database_url)
