"""Opening a store: URLs, schema creation, schema versions, and driver errors."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import sqlalchemy as sa
from store_support import POSTGRESQL_ENV, FileUnit, postgresql_base_url, sha, sync_engine

from stageline import DatabaseURLError, SchemaVersionError, StagelineError, StoreError
from stageline.store import SCHEMA_VERSION, open_store

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
    """A path creates a SQLite file (and its directory) in WAL mode with the schema."""
    path = tmp_path / "sub" / "stageline.db"
    async with open_store(path) as store:
        assert not store.is_postgresql
        await store.save_content([FileUnit(path="a", digest=sha(1))])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT value FROM stageline_meta").fetchone() == (str(SCHEMA_VERSION),)
    async with open_store(f"sqlite:///{path}") as again:
        assert await again.find_content([FileUnit(path="a", digest=sha(1))]) != [None]


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
