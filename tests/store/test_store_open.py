"""Opening a store: URLs, schema creation, schema versions, and driver errors."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import sqlalchemy as sa
from store_support import POSTGRESQL_ENV, FileUnit, postgresql_base_url, sha, sync_engine

from stageline import DatabaseURLError, SchemaVersionError, StagelineError, StoreError
from stageline.models import Repository
from stageline.store import (
    SCHEMA_VERSION,
    _engine,
    default_database_path,
    default_home,
    open_store,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user@localhost/db",
        "oracle+cx_oracle://x@y/z",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://user@localhost:notaport/db",
    ],
)
async def test_unsupported_urls_are_refused(url: str) -> None:
    """An unknown scheme, a malformed URL or a SQLite URL without a file: DatabaseURLError."""
    with pytest.raises(DatabaseURLError, match=r"expected|names no database file") as info:
        async with open_store(url):
            pass
    assert isinstance(info.value, StagelineError)
    assert isinstance(info.value, ValueError)


async def test_bad_max_threads_is_refused(tmp_path: Path) -> None:
    """max_threads must be a positive int."""
    with pytest.raises(ValueError, match="max_threads"):
        async with open_store(tmp_path / "db", max_threads=0):
            pass


async def test_sqlite_file_is_created_in_wal_mode(tmp_path: Path) -> None:
    """A path creates a SQLite file in WAL mode with the schema."""
    path = tmp_path / "stageline.db"
    async with open_store(path) as store:
        assert not store.is_postgresql
        await store.save_content([FileUnit(path="a", digest=sha(1))])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT value FROM stageline_meta").fetchone() == (str(SCHEMA_VERSION),)
    async with open_store(f"sqlite:///{path}") as again:
        assert await again.find_content([FileUnit(path="a", digest=sha(1))]) != [None]


async def test_sqlite_connections_are_set_up_for_syncs(tmp_path: Path) -> None:
    """Each pooled connection: durable across crashes (NORMAL in WAL mode), foreign keys
    enforced, a 64 MiB page cache, and checkpoints every 10 000 WAL pages."""
    async with open_store(tmp_path / "stageline.db") as store:

        def pragmas(conn: sa.Connection) -> list[Any]:
            return [
                conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("synchronous", "foreign_keys", "cache_size", "wal_autocheckpoint")
            ]

        assert await store._run("read the pragmas", pragmas, write=False) == [
            1,
            1,
            -65536,
            _engine.WAL_AUTOCHECKPOINT_PAGES,
        ]
        assert _engine.WAL_AUTOCHECKPOINT_PAGES == 10_000


@pytest.mark.parametrize("form", ["path", "url"])
async def test_a_missing_folder_is_an_error_naming_it(tmp_path: Path, form: str) -> None:
    """An explicit SQLite path whose folder does not exist is refused; nothing is created."""
    folder = tmp_path / "not" / "there"
    path = folder / "stageline.db"
    with pytest.raises(DatabaseURLError, match=rf"folder {folder} does not exist") as info:
        async with open_store(path if form == "path" else f"sqlite:///{path}"):
            pass
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "not").exists()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """A umask that lets group and others read new files, as many systems default to."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("wide_umask")
async def test_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """The database file, its -wal and -shm files and its lock files are 0o600 (folders 0o700)."""
    path = tmp_path / "stageline.db"
    async with open_store(path) as store:
        repository = await store.create_repository(Repository(name="r"))
        async with store.new_version(repository) as version:
            await version.add_content(await store.save_content([FileUnit(path="a", digest=sha(1))]))
        for name in ("stageline.db", "stageline.db-wal", "stageline.db-shm"):
            assert mode_of(tmp_path / name) == 0o600, name
        locks = tmp_path / "stageline.db.locks"
        assert mode_of(locks) == 0o700
        assert {mode_of(lock) for lock in locks.iterdir()} == {0o600}


@pytest.fixture
def home_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No STAGELINE_HOME or XDG_DATA_HOME, and a HOME of the test's own."""
    monkeypatch.delenv("STAGELINE_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return monkeypatch


@pytest.mark.usefixtures("wide_umask")
def test_default_home_is_stageline_home_created_private(
    home_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """STAGELINE_HOME names the home; it is created on demand, readable by its owner only."""
    home_env.setenv("STAGELINE_HOME", str(tmp_path / "a" / "home"))
    assert default_home() == tmp_path / "a" / "home"
    assert mode_of(tmp_path / "a" / "home") == 0o700
    assert default_home() == tmp_path / "a" / "home"  # an existing one is used as it is
    assert default_database_path() == tmp_path / "a" / "home" / "stageline.db"


@pytest.mark.usefixtures("wide_umask")
def test_default_home_follows_the_xdg_data_folder(
    home_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without STAGELINE_HOME: $XDG_DATA_HOME/stageline, else ~/.local/share/stageline."""
    assert default_home() == tmp_path / "user" / ".local" / "share" / "stageline"
    home_env.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec ignores relative ones
    assert default_home() == tmp_path / "user" / ".local" / "share" / "stageline"
    home_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "stageline"
    assert mode_of(tmp_path / "xdg" / "stageline") == 0o700


async def test_the_default_database_opens_in_the_default_home(
    home_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """default_database_path() is a SQLite file in the home, which open_store opens."""
    home_env.setenv("STAGELINE_HOME", str(tmp_path / "fresh"))
    async with open_store(default_database_path()) as store:
        await store.save_content([FileUnit(path="a", digest=sha(1))])
    assert (tmp_path / "fresh" / "stageline.db").is_file()


def test_a_home_that_cannot_be_created_is_a_store_error(
    home_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A home below a file cannot be made: StoreError names it and the variable to set."""
    (tmp_path / "file").write_text("not a folder")
    home_env.setenv("STAGELINE_HOME", str(tmp_path / "file" / "home"))
    with pytest.raises(StoreError, match=r"file/home.*STAGELINE_HOME"):
        default_home()


async def test_reopening_keeps_the_data(database_url: str) -> None:
    """A second open of the same database finds the schema and the rows in place."""
    async with open_store(database_url) as store:
        await store.save_content([FileUnit(path="a", digest=sha(1))])
    async with open_store(database_url) as store:
        [found] = await store.find_content([FileUnit(path="a", digest=sha(1))])
    assert found is not None


def execute(url: str, *statements: str) -> None:
    """Run SQL statements on the database behind the store's back, in one transaction."""
    engine = sync_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


async def test_newer_schema_is_refused(database_url: str) -> None:
    """A database at a revision this code does not know is refused, naming both revisions."""
    async with open_store(database_url):
        pass
    execute(database_url, "UPDATE stageline_alembic_version SET version_num = '0099'")
    with pytest.raises(SchemaVersionError) as info:
        async with open_store(database_url):
            pass
    message = str(info.value)
    assert "revision 0099" in message
    assert f"revision {SCHEMA_VERSION:04d}" in message
    assert "upgrade stageline" in message


async def test_version_record_without_revision_is_refused(database_url: str) -> None:
    """A schema version other than 1 without a revision table is damage: refused, untouched."""
    async with open_store(database_url):
        pass
    execute(
        database_url,
        "DROP TABLE stageline_alembic_version",
        "UPDATE stageline_meta SET value = '0'",
    )
    with pytest.raises(SchemaVersionError, match=r"schema version 0 but no schema revision"):
        async with open_store(database_url):
            pass


async def test_foreign_tables_are_refused(database_url: str) -> None:
    """Tables named like ours but no version record: refused, not overwritten."""
    engine = sync_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE content (id INTEGER PRIMARY KEY, x TEXT)")
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="not created by stageline"):
        async with open_store(database_url):
            pass


@pytest.mark.postgresql
async def test_unreachable_server_is_a_store_error() -> None:
    """A server that refuses connections gives a StoreError saying what to check."""
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=5"
    with pytest.raises(StoreError, match="could not create or check the schema") as info:
        async with open_store(url):
            pass
    assert "secret" not in str(info.value)
    assert "running and reachable" in str(info.value)


def test_postgresql_tests_fail_under_ci_without_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a configured server the PostgreSQL tests skip, but fail when CI is set."""
    monkeypatch.delenv(POSTGRESQL_ENV, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        postgresql_base_url()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        postgresql_base_url()


async def test_sqlite_file_being_written_is_waited_for_not_refused(tmp_path: Path) -> None:
    """Opening a file another connection writes waits for it: no "locked" while going WAL.

    Switching a file to WAL needs its write lock, and SQLite answers "database is locked"
    at once, without the busy timeout, when another connection holds it (as when two
    processes open a new database at the same moment and both switch it). The store
    waits for the lock instead.
    """
    path = tmp_path / "busy.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE other_tool (x INTEGER)")
    writer.execute("BEGIN IMMEDIATE")
    waiting = threading.Event()

    def watch(dbapi_connection: Any, connection_record: Any) -> None:
        def trace(statement: str) -> None:
            if statement.startswith("BEGIN IMMEDIATE"):
                waiting.set()

        dbapi_connection.set_trace_callback(trace)

    opened: list[str] = []

    async def open_it() -> None:
        async with open_store(path) as store:
            opened.append(store.url)

    sa.event.listen(sa.pool.Pool, "connect", watch, insert=True)
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(open_it)
                # The store waits for the writer's lock: let the writer finish then.
                await anyio.to_thread.run_sync(waiting.wait, abandon_on_cancel=True)
                writer.execute("COMMIT")
    finally:
        sa.event.remove(sa.pool.Pool, "connect", watch)
        waiting.set()  # never leave a worker thread waiting when the open failed first
        writer.close()
    assert len(opened) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
