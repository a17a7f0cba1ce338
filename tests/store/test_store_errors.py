"""Database refusals become StoreErrors whose hint fits the cause, on SQLite and PostgreSQL.

The store's own checks refuse bad values first (see test_store_values.py); these rows go
in behind them, with SQL of the test's own, as a plugin's SQL could.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from stageline import StoreError
from stageline.store import Store

pytestmark = pytest.mark.anyio

UNREACHABLE = "running and reachable"


async def refusal(store: Store, *statements: str) -> str:
    """Run ``statements`` in one store transaction; return the StoreError's message."""

    def work(conn: sa.Connection) -> None:
        for statement in statements:
            conn.exec_driver_sql(statement)

    with pytest.raises(StoreError) as info:
        await store._run("write rows behind the store's back", work, write=True)
    assert isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)
    return str(info.value)


async def test_broken_check_constraint_names_it(store: Store) -> None:
    """A negative size breaks a CHECK constraint: the hint says so, not "deleted meanwhile"."""
    message = await refusal(
        store, f"INSERT INTO artifacts (sha256, size) VALUES ('{'a' * 64}', -1)"
    )
    assert "ck_artifacts_size" in message
    assert "CHECK constraints" in message
    assert "deleted meanwhile" not in message
    assert UNREACHABLE not in message


async def test_duplicate_unique_key_says_it_exists(store: Store) -> None:
    """A second remote of one name breaks a unique constraint: the hint says a row exists."""
    message = await refusal(
        store,
        "INSERT INTO remotes (name, url, settings) VALUES ('same', 'http://a.test/', '{}')",
        "INSERT INTO remotes (name, url, settings) VALUES ('same', 'http://b.test/', '{}')",
    )
    assert "same unique key exists" in message
    assert "deleted meanwhile" not in message


async def test_missing_row_of_a_foreign_key_says_to_save_it(store: Store) -> None:
    """A content artifact of content that does not exist: the hint is about the missing rows."""
    message = await refusal(
        store, "INSERT INTO content_artifacts (content_id, relative_path) VALUES (4242, 'a')"
    )
    assert "rows referred to do not exist" in message


async def test_missing_table_says_the_schema_was_changed(store: Store) -> None:
    """A table the store needs is gone: the hint is the schema, not the server or the file."""
    message = await refusal(
        store, "DROP TABLE repository_content", "SELECT * FROM repository_content"
    )
    assert "schema was changed outside stageline" in message
    assert UNREACHABLE not in message
    assert "writable" not in message


async def test_a_statement_sqlite_refuses_gets_no_guess_about_the_file(store: Store) -> None:
    """SQL the database refuses (a plugin's, say) is told as it is: no hint about the file
    or the server, which would send the reader the wrong way."""
    message = await refusal(store, "SELECT no_such_function_here(1)")
    assert "no_such_function_here" in message
    assert "writable" not in message
    assert UNREACHABLE not in message


async def test_a_read_only_sqlite_database_says_to_check_the_file(
    tmp_path: os.PathLike[str],
) -> None:
    """A write to a SQLite database that refuses writes: the hint is the file's permissions."""
    from stageline.store import open_store

    async with open_store(os.path.join(tmp_path, "ro.db")) as store:
        message = await refusal(
            store,
            "PRAGMA query_only = ON",
            "INSERT INTO remotes (name, url, settings) VALUES ('r', 'http://a.test/', '{}')",
        )
    assert "readonly" in message
    assert "writable" in message


@pytest.mark.postgresql
async def test_value_over_an_index_size_limit_is_not_an_unreachable_server(
    postgresql_url: str,
) -> None:
    """A relative path over PostgreSQL's btree entry limit: the hint says to shorten it."""
    from stageline.store import open_store

    path = os.urandom(1500).hex()  # 3000 bytes that do not compress
    async with open_store(postgresql_url) as store:
        message = await refusal(
            store,
            "INSERT INTO content (type, natural_key, natural_key_digest, data) "
            "VALUES ('t', '[]', 'd', '{}')",
            "INSERT INTO content_artifacts (content_id, relative_path) "
            f"SELECT id, '{path}' FROM content",
        )
    assert UNREACHABLE not in message
    assert "index entry is limited" in message
    assert "shorten" in message


@pytest.mark.postgresql
async def test_value_out_of_range_says_which_values_are_refused(postgresql_url: str) -> None:
    """An integer beyond its column (PostgreSQL's DataError): the hint names value problems."""
    from stageline.store import open_store

    async with open_store(postgresql_url) as store:
        message = await refusal(
            store, f"INSERT INTO artifacts (sha256, size) VALUES ('{'b' * 64}', {2**70})"
        )
    assert "refused a value" in message
    assert "out of its column's range" in message
    assert UNREACHABLE not in message
