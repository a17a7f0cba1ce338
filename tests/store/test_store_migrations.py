"""Schema migrations: a database made by an older stageline is upgraded on open, once."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from schema_v1 import create_version_1
from sqlalchemy.pool import NullPool
from store_support import FileUnit, sha, sync_engine

from stageline import SchemaVersionError, StoreError
from stageline.models import Remote, Repository
from stageline.storage import ArtifactStorage
from stageline.store import SCHEMA_VERSION, open_store
from stageline.store._codec import encode_content
from stageline.store._migrate import BASELINE_REVISION, HEAD_REVISION, VERSION_TABLE, upgrade_to

pytestmark = pytest.mark.anyio

#: Alembic logs each step; the first one, from the baseline, runs once per upgrade.
UPGRADE_LOG = f"Running upgrade {BASELINE_REVISION} -> "
STAMP_LOG = f"Running stamp_revision  -> {BASELINE_REVISION}"
# A remote's settings as version 1 stored them (JSON; the omitted ones take their defaults).
SETTINGS = '{"policy": "on_demand", "max_retries": 7}'


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same kind: another file, or another schema."""
    if "://" not in database_url:
        yield str(tmp_path / "fresh.db")
        return
    url = sa.make_url(database_url)
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


def run_sql(url: str, *statements: str, version_1: bool = False) -> None:
    """In one transaction: optionally create the version-1 tables, then run ``statements``."""
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            if version_1:
                create_version_1(conn)
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


def fill_version_1(url: str) -> None:
    """A version-1 database holding every kind of row, as the release before Alembic saved them.

    Two artifacts with stored file paths (one with a negative size, which that release's
    validators would have refused but a plugin's SQL could write), a unit with a deferred
    and a downloaded file, three remotes of which two share a name and one has none, a
    repository with two versions.
    """
    unit = FileUnit(path="a", digest=sha(1))
    other = FileUnit(path="b", digest=sha(2))
    content = ", ".join(
        "('{}', '{}', '{}', '{}', '{}')".format(*encode_content(u)) for u in (unit, other)
    )
    run_sql(
        url,
        "INSERT INTO artifacts (sha256, size, md5, file) VALUES "
        f"('{sha(1)}', 5, '{'a' * 32}', '/old/host/storage/artifacts/00/01'), "
        f"('{sha(2)}', -1, NULL, '/old/host/storage/artifacts/00/02')",
        "INSERT INTO content (type, natural_key, natural_key_digest, repo_key_digest, data) "
        f"VALUES {content}",
        "INSERT INTO content_artifacts (content_id, artifact_id, relative_path) VALUES "
        "(1, 1, 'a'), (2, NULL, 'b')",
        "INSERT INTO remotes (name, url, settings) VALUES "
        f"('', 'http://one.test/', '{SETTINGS}'), ('mirror', 'http://two.test/', '{SETTINGS}'), "
        f"('mirror', 'http://three.test/', '{SETTINGS}')",
        "INSERT INTO remote_artifacts (content_artifact_id, remote_id, url, size, sha256) VALUES "
        f"(2, 2, 'http://two.test/b', 7, '{sha(2)}')",
        "INSERT INTO repositories (name, description) VALUES ('repo', 'kept')",
        "INSERT INTO repository_versions (repository_id, number, base_version, complete, "
        "content_count, added_count, removed_count, owner) VALUES "
        "(1, 0, NULL, TRUE, 0, 0, 0, ''), (1, 1, 0, TRUE, 2, 2, 0, '')",
        "INSERT INTO repository_content (repository_id, content_id, repo_key_digest, "
        "version_added, version_removed) VALUES "
        f"(1, 1, '{'1' * 40}', 1, NULL), (1, 2, '{'2' * 40}', 1, NULL)",
        version_1=True,
    )


@contextmanager
def held_at_begin(parties: int) -> Iterator[None]:
    """Hold the first ``parties`` transactions of any engine at BEGIN until all got there.

    Opening a store begins its schema transaction first, so ``parties`` stores opened at
    once race for the migration lock (or run their Alembic commands) together, rather
    than one after the other.
    """
    all_there = threading.Barrier(parties, timeout=30)
    begun: list[int] = []
    counting = threading.Lock()

    def hold(conn: sa.Connection) -> None:
        with counting:
            begun.append(1)
            mine = len(begun)
        if mine <= parties:
            all_there.wait()

    sa.event.listen(sa.Engine, "begin", hold, insert=True)
    try:
        yield
    finally:
        sa.event.remove(sa.Engine, "begin", hold)


def schema_of(url: str) -> dict[str, Any]:
    """Every table's columns, keys, constraints and indexes, as the database reports them."""
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            schema: dict[str, Any] = {}
            for table in sorted(inspector.get_table_names()):
                schema[table] = {
                    "columns": [
                        (column["name"], str(column["type"]), column["nullable"])
                        for column in inspector.get_columns(table)
                    ],
                    "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
                    "unique": sorted(
                        (str(unique["name"]), *unique["column_names"])
                        for unique in inspector.get_unique_constraints(table)
                    ),
                    "checks": sorted(
                        (str(check["name"]), " ".join(check["sqltext"].split()))
                        for check in inspector.get_check_constraints(table)
                    ),
                    "foreign keys": sorted(
                        (
                            *foreign["constrained_columns"],
                            foreign["referred_table"],
                            *foreign["referred_columns"],
                        )
                        for foreign in inspector.get_foreign_keys(table)
                    ),
                    "indexes": sorted(
                        (
                            str(index["name"]),
                            repr(index["column_names"]),
                            bool(index["unique"]),
                            repr(
                                sorted(
                                    (key, str(value))
                                    for key, value in index.get("dialect_options", {}).items()
                                )
                            ),
                        )
                        for index in inspector.get_indexes(table)
                    ),
                }
            return schema
    finally:
        engine.dispose()


async def test_baseline_database_is_upgraded_and_keeps_its_data(
    database_url: str, tmp_path: Path
) -> None:
    """A version-1 database is upgraded on open: every row survives, paths are derived."""
    fill_version_1(database_url)
    storage = ArtifactStorage(tmp_path / "storage")
    async with open_store(database_url, storage=storage) as store:
        found = await store.find_artifacts([sha(1), sha(2)])
        [unit, other] = await store.find_content(
            [FileUnit(path="a", digest=sha(1)), FileUnit(path="b", digest=sha(2))]
        )
        assert unit is not None
        assert other is not None
        content_artifacts = await store.find_content_artifacts([unit, other])
        remote_artifacts = await store.find_remote_artifacts(content_artifacts)
        repository = await store.get_repository("repo")
        versions = await store.list_versions(repository)
        present = [u async for chunk in store.iter_content(versions[-1]) for u in chunk]
        remote_names = [(await store.get_remote(pk)).name for pk in (1, 2, 3)]

    assert found[sha(1)].size == 5
    assert found[sha(1)].md5 == "a" * 32
    # The stored path of another host is gone: the file is where this storage keeps it.
    assert found[sha(1)].file == storage.path_for(sha(1))
    # A negative size, which the new CHECK constraint forbids, became "unknown".
    assert found[sha(2)].size is None
    assert [(ca.relative_path, ca.artifact and ca.artifact.pk) for ca in content_artifacts] == [
        ("a", found[sha(1)].pk),
        ("b", None),
    ]
    assert [(ra.url, ra.size, ra.sha256, ra.remote.pk) for ra in remote_artifacts] == [
        ("http://two.test/b", 7, sha(2), 2)
    ]
    assert repository.description == "kept"
    assert [(v.number, v.base_version, v.content_count) for v in versions] == [
        (0, None, 0),
        (1, 0, 2),
    ]
    assert sorted(u.pk for u in present if u.pk is not None) == [unit.pk, other.pk]
    # Names made unique and non-empty; the oldest remote keeps a shared name.
    assert remote_names == ["remote-1", "mirror", "mirror-3"]
    assert rows(database_url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD_REVISION,)]
    assert rows(database_url, "SELECT key, value FROM stageline_meta") == [
        ("schema_version", str(SCHEMA_VERSION))
    ]


async def test_upgraded_database_enforces_the_new_constraints(database_url: str) -> None:
    """After the upgrade, negative sizes and counts and shared remote names cannot be written."""
    fill_version_1(database_url)
    async with open_store(database_url):
        pass
    refused = [
        "UPDATE artifacts SET size = -1",
        "UPDATE remote_artifacts SET size = -2",
        "UPDATE repository_versions SET content_count = -1",
        "UPDATE repository_versions SET number = -1 WHERE number = 0",
        "UPDATE repository_content SET version_removed = version_added",
        "UPDATE remotes SET name = 'mirror'",
        "UPDATE remotes SET name = ''",
    ]
    for statement in refused:
        with pytest.raises(sa.exc.IntegrityError):
            run_sql(database_url, statement)
    with pytest.raises(sa.exc.SQLAlchemyError, match="file"):
        run_sql(database_url, "SELECT file FROM artifacts")


async def test_upgraded_schema_is_the_schema_of_a_new_database(
    database_url: str, fresh_database_url: str
) -> None:
    """Upgrading the baseline gives exactly the tables, constraints and indexes made new."""
    fill_version_1(database_url)
    async with open_store(database_url):
        pass
    async with open_store(fresh_database_url):
        pass
    upgraded, new = schema_of(database_url), schema_of(fresh_database_url)
    assert upgraded == new
    assert [name for name, _text in new["artifacts"]["checks"]] == ["ck_artifacts_size"]
    assert "file" not in [column[0] for column in new["artifacts"]["columns"]]


async def test_baseline_revision_is_the_frozen_version_1_schema(
    database_url: str, fresh_database_url: str
) -> None:
    """The baseline revision creates the very schema the release before Alembic created."""
    run_sql(database_url, version_1=True)
    engine = sync_engine(fresh_database_url)
    try:
        with engine.begin() as conn:
            upgrade_to(conn, BASELINE_REVISION)
            conn.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")
    finally:
        engine.dispose()
    assert schema_of(fresh_database_url) == schema_of(database_url)
    assert rows(fresh_database_url, "SELECT key, value FROM stageline_meta") == [
        ("schema_version", "1")
    ]


async def test_failed_upgrade_changes_nothing(database_url: str) -> None:
    """A row the new constraints refuse fails the upgrade, naming it; the database stays v1."""
    fill_version_1(database_url)
    run_sql(database_url, "UPDATE repository_versions SET added_count = -3 WHERE number = 1")
    with pytest.raises(StoreError, match="ck_repository_versions_counts"):
        async with open_store(database_url):
            pass
    assert rows(database_url, "SELECT value FROM stageline_meta") == [("1",)]
    assert rows(database_url, "SELECT count(*) FROM artifacts WHERE file IS NOT NULL") == [(2,)]
    assert rows(database_url, "SELECT count(*) FROM remotes WHERE name = ''") == [(1,)]
    run_sql(database_url, "UPDATE repository_versions SET added_count = 2 WHERE number = 1")
    async with open_store(database_url) as store:
        repository = await store.get_repository("repo")
        assert (await store.latest_version(repository)).number == 1


async def test_two_concurrent_opens_of_a_baseline_database_upgrade_it_once(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two stores opening an old database at the same moment: one upgrades, both work."""
    fill_version_1(database_url)
    found: list[Any] = []

    async def open_and_read() -> None:
        async with open_store(database_url) as store:
            found.append(await store.find_artifacts([sha(1)]))

    with held_at_begin(2), caplog.at_level(logging.INFO, logger="alembic"):
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(open_and_read)
                tg.start_soon(open_and_read)
    assert [sorted(result) for result in found] == [[sha(1)], [sha(1)]]
    logged = [record.getMessage() for record in caplog.records]
    assert len([message for message in logged if STAMP_LOG in message]) == 1
    assert len([message for message in logged if UPGRADE_LOG in message]) == 1
    assert rows(database_url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD_REVISION,)]


async def test_stores_creating_databases_at_once_each_get_their_own_schema(
    tmp_path: Path,
) -> None:
    """Four stores of one process creating four databases at once: each gets its tables."""

    async def create(number: int) -> None:
        async with open_store(tmp_path / f"{number}.db") as store:
            await store.create_repository(Repository(name=f"repo-{number}"))

    with held_at_begin(4), anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for number in range(4):
                tg.start_soon(create, number)
    for number in range(4):
        url = str(tmp_path / f"{number}.db")
        assert rows(url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD_REVISION,)]
        assert rows(url, "SELECT name FROM repositories") == [(f"repo-{number}",)]


async def test_reopening_an_upgraded_database_runs_no_revision(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An up-to-date database is only checked on open: no revision runs again."""
    fill_version_1(database_url)
    with caplog.at_level(logging.INFO, logger="alembic"):
        async with open_store(database_url):
            pass
        async with open_store(database_url) as store:
            await store.create_repository(Repository(name="new"))
    logged = [record.getMessage() for record in caplog.records]
    assert len([message for message in logged if STAMP_LOG in message]) == 1
    assert len([message for message in logged if UPGRADE_LOG in message]) == 1


async def test_opening_an_up_to_date_database_logs_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Alembic is not run, and so logs nothing, when the schema is at the head revision: an
    operator's INFO log does not repeat Alembic's set-up lines on every open."""
    async with open_store(database_url):
        pass
    with caplog.at_level(logging.DEBUG, logger="alembic"):
        async with open_store(database_url) as store:
            await store.create_repository(Repository(name="new"))
    assert [
        record.getMessage() for record in caplog.records if record.name.startswith("alembic")
    ] == []


async def test_unknown_schema_version_without_revisions_is_refused(database_url: str) -> None:
    """A stageline_meta version newer than 1 with no revision table is refused, untouched."""
    run_sql(database_url, "UPDATE stageline_meta SET value = '7'", version_1=True)
    with pytest.raises(SchemaVersionError) as info:
        async with open_store(database_url):
            pass
    assert "schema version 7" in str(info.value)
    assert f"revision {HEAD_REVISION}" in str(info.value)
    assert rows(database_url, "SELECT value FROM stageline_meta") == [("7",)]


def test_revision_ids_follow_the_schema_version() -> None:
    """The newest revision file is the head this code expects, and every file is a revision."""
    from alembic.script import ScriptDirectory

    from stageline.store import _migrate

    script = ScriptDirectory(str(Path(_migrate.__file__).with_name("_migrations")))
    assert script.get_heads() == [HEAD_REVISION]
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == [
        f"{n:04d}" for n in range(1, SCHEMA_VERSION + 1)
    ]
    versions = Path(_migrate.__file__).with_name("_migrations") / "versions"
    files = sorted(p.name for p in versions.glob("v*.py"))
    assert [name[1:5] for name in files] == [f"{n:04d}" for n in range(1, SCHEMA_VERSION + 1)]
    assert os.path.exists(versions / "__init__.py")


def fill_revision_3(url: str) -> None:
    """A database at revision 0003 holding artifacts found by sha512, a remote's files, a
    repository whose version 1 has three units, and an incomplete version 2 left by a sync
    that died (its rows must be undone by the next sync, as before)."""
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            upgrade_to(conn, "0003")
    finally:
        engine.dispose()
    units = [FileUnit(path=name, digest=sha(n)) for n, name in enumerate("abc", 1)]
    content = ", ".join("('{}', '{}', '{}', '{}', '{}')".format(*encode_content(u)) for u in units)
    run_sql(
        url,
        "INSERT INTO artifacts (sha256, size, sha512) VALUES "
        f"('{sha(1)}', 5, '{'e' * 128}'), ('{sha(2)}', 6, '{'f' * 128}')",
        "INSERT INTO content (type, natural_key, natural_key_digest, repo_key_digest, data) "
        f"VALUES {content}",
        "INSERT INTO content_artifacts (content_id, artifact_id, relative_path) VALUES "
        "(1, 1, 'a'), (2, 2, 'b'), (3, NULL, 'c')",
        f"INSERT INTO remotes (name, url, settings) VALUES ('up', 'http://up.test/', '{SETTINGS}')",
        "INSERT INTO remote_artifacts (content_artifact_id, remote_id, url, size, sha256) VALUES "
        f"(3, 1, 'http://up.test/c', 7, '{sha(3)}')",
        "INSERT INTO repositories (name, description) VALUES ('repo', '')",
        "INSERT INTO repository_versions (repository_id, number, base_version, complete, "
        "content_count, added_count, removed_count, owner) VALUES "
        "(1, 0, NULL, TRUE, 0, 0, 0, ''), (1, 1, 0, TRUE, 3, 3, 0, ''), "
        "(1, 2, 1, FALSE, 0, 0, 0, 'dead-host:1')",
        "INSERT INTO repository_content (repository_id, content_id, repo_key_digest, "
        "version_added, version_removed) VALUES "
        f"(1, 1, '{'1' * 40}', 1, 2), (1, 2, '{'2' * 40}', 1, NULL), (1, 3, '{'3' * 40}', 1, NULL)",
    )


async def test_a_revision_3_database_with_data_is_upgraded_to_the_head(
    database_url: str,
) -> None:
    """0003 -> 0004 (and on) keeps every row, adds the indexes and the seen record; mirrors
    then work."""
    fill_revision_3(database_url)
    async with open_store(database_url) as store:
        by_sha512 = await store.find_artifacts_by_digest("sha512", ["e" * 128, "0" * 128])
        urls = await store.find_remote_artifact_urls(
            Remote(url="http://up.test/", name="up"), [sha(3)]
        )
        repository = await store.get_repository("repo")
        units = [
            unit
            async for chunk in store.iter_content(await store.latest_version(repository))
            for unit in chunk
        ]
        async with store.new_version(repository) as mirror:
            await mirror.mark_seen([unit for unit in units if unit.pk != 3])
            removed = await mirror.remove_unseen()
    assert {value: artifact.sha256 for value, artifact in by_sha512.items()} == {"e" * 128: sha(1)}
    assert urls == {sha(3): "http://up.test/c"}
    assert sorted(unit.pk or 0 for unit in units) == [1, 2, 3]
    # The dead sync's version 2 was undone (unit 1 is back) before this one was numbered.
    assert removed == 1
    assert mirror.result is not None
    assert (mirror.result.number, mirror.result.content_count) == (2, 2)
    assert rows(database_url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD_REVISION,)]
    assert rows(database_url, "SELECT value FROM stageline_meta") == [(str(SCHEMA_VERSION),)]
    assert rows(database_url, "SELECT count(*) FROM new_version_seen") == [(0,)]
    engine = sync_engine(database_url)
    try:
        inspector = sa.inspect(engine)
        indexes = {
            index["name"]
            for table in ("artifacts", "remote_artifacts")
            for index in inspector.get_indexes(table)
        }
    finally:
        engine.dispose()
    assert {
        "ix_artifacts_sha224",
        "ix_artifacts_sha384",
        "ix_artifacts_sha512",
        "ix_remote_artifacts_remote_sha256",
    } <= indexes
