"""Database.select_rows: the rows of a query, read in one step on SQLite, as they are."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageline.store import Store

pytestmark = pytest.mark.anyio

# What the store keeps in text columns: valid Unicode without NUL (checked on the way in).
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
rows_strategy = st.lists(
    st.tuples(st.integers(-(2**63), 2**63 - 1), st.none() | texts, st.none() | texts),
    max_size=30,
)


async def _both_ways(store: Store, rows: list[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    database = store._database

    def work(conn: sa.Connection) -> tuple[list[Any], list[Any]]:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE probe (n BIGINT, a TEXT, b TEXT, pos INT)")
        try:
            for position, (n, a, b) in enumerate(rows):
                conn.exec_driver_sql(
                    f"INSERT INTO probe VALUES ({', '.join([database.placeholder] * 4)})",
                    (n, a, b, position),
                )
            rest = f"FROM probe WHERE pos >= {database.placeholder} ORDER BY pos DESC"
            got = database.select_rows(conn, "n, a, b", rest, (0,))
            plain = conn.exec_driver_sql(f"SELECT n, a, b {rest}", (0,)).fetchall()
        finally:
            conn.exec_driver_sql("DROP TABLE probe")
        return got, plain

    return await store._run("probe select_rows", work, write=True)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy)
async def test_select_rows_returns_what_a_plain_fetch_does(
    store: Store, rows: list[tuple[Any, ...]]
) -> None:
    """Integers of any size, any text (quotes, backslashes, control characters, emoji)
    and NULLs come back equal, every row once (in no set order), on SQLite and PostgreSQL."""
    got, plain = await _both_ways(store, rows)

    def key(row: Any) -> tuple[Any, ...]:
        return tuple((value is None, value) for value in row)

    assert sorted(map(tuple, got), key=key) == sorted(map(tuple, plain), key=key)
    assert sorted(map(tuple, got), key=key) == sorted(rows, key=key)


async def test_select_rows_of_nothing_is_an_empty_list(store: Store) -> None:
    got, plain = await _both_ways(store, [])
    assert got == [] == list(plain)


def test_the_artifact_row_names_every_column_of_the_table() -> None:
    """find_artifacts and find_content_artifacts read every column by name: a column
    added to the table must be added to the row type too."""
    from stageline.store import _artifacts
    from stageline.store import _schema as t

    assert set(_artifacts.ArtifactRow._fields) == {column.name for column in t.artifacts.c}


# --- Database.bulk_insert: the rows given, in the order given, as they are ----------------

_PROBE_COLUMNS = [("n", "bigint"), ("a", "text"), ("b", "text"), ("pos", "integer")]


async def _insert_twice(
    store: Store, rows: list[tuple[Any, ...]], again: list[tuple[Any, ...]]
) -> list[Any]:
    """bulk_insert ``rows``, then ``again`` as an upsert on ``pos``; the table in id order."""
    database = store._database
    serial = "BIGSERIAL PRIMARY KEY" if database.is_postgresql else "INTEGER PRIMARY KEY"

    def work(conn: sa.Connection) -> list[Any]:
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE probe (id {serial}, n BIGINT, a TEXT, b TEXT, pos INT UNIQUE)"
        )
        try:
            columns = _PROBE_COLUMNS
            first = [(n, a, b, pos) for pos, (n, a, b) in enumerate(rows)]
            assert database.bulk_insert(conn, "probe", columns, first, conflict="pos") == len(first)
            # The second pass: rows at taken positions update b where it differs, the
            # others are inserted after the first pass's rows; each of them is counted.
            second = [(n, a, b, pos) for pos, (n, a, b) in enumerate(again)]
            changed = sum(
                1 for pos, (_n, _a, b) in enumerate(again) if pos >= len(rows) or rows[pos][2] != b
            )
            assert changed == database.bulk_insert(
                conn,
                "probe",
                columns,
                second,
                conflict="pos",
                on_conflict=(
                    "DO UPDATE SET b = excluded.b WHERE probe.b IS DISTINCT FROM excluded.b"
                ),
            )
            return list(conn.exec_driver_sql("SELECT n, a, b, pos FROM probe ORDER BY id"))
        finally:
            conn.exec_driver_sql("DROP TABLE probe")

    return await store._run("probe bulk_insert", work, write=True)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, again=rows_strategy)
async def test_bulk_insert_writes_the_rows_in_order_and_upserts(
    store: Store, rows: list[tuple[Any, ...]], again: list[tuple[Any, ...]]
) -> None:
    """Integers of any size, any text and NULLs are written as they are, in the order
    given (the order key locks are taken in); a clash on the conflict columns is skipped
    or, with ``on_conflict``, updated; on SQLite and PostgreSQL alike."""
    table = [tuple(row) for row in await _insert_twice(store, rows, again)]
    expected = [(n, a, b, pos) for pos, (n, a, b) in enumerate(rows)]
    for pos, (n, a, b) in enumerate(again):
        if pos < len(expected):
            old = expected[pos]
            expected[pos] = (old[0], old[1], b, pos)
        else:
            expected.append((n, a, b, pos))
    assert table == expected


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
# From one row's width (four values) to three rows per statement.
@given(rows=rows_strategy, limit=st.integers(len(_PROBE_COLUMNS), 13))
async def test_bulk_insert_splits_rows_beyond_sqlites_parameter_limit(
    sqlite_store: Store, rows: list[tuple[Any, ...]], limit: int
) -> None:
    """On SQLite one statement binds every row's values, up to the connection's limit on
    bound parameters (999 before SQLite 3.32); beyond it the rows are split into several
    statements, still written in order."""
    store = sqlite_store
    database = store._database

    def work(conn: sa.Connection) -> list[Any]:
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        before = driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE probe (id INTEGER PRIMARY KEY, n BIGINT, a TEXT, b TEXT, "
            "pos INT UNIQUE)"
        )
        try:
            first = [(n, a, b, pos) for pos, (n, a, b) in enumerate(rows)]
            database.bulk_insert(conn, "probe", _PROBE_COLUMNS, first, conflict="pos")
            # Again: every row clashes and is skipped.
            assert (
                database.bulk_insert(conn, "probe", _PROBE_COLUMNS, first[::-1], conflict="pos")
                == 0
            )
            return list(conn.exec_driver_sql("SELECT n, a, b, pos FROM probe ORDER BY id"))
        finally:
            conn.exec_driver_sql("DROP TABLE probe")
            driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)

    table = [tuple(row) for row in await store._run("probe bulk_insert", work, write=True)]
    assert table == [(n, a, b, pos) for pos, (n, a, b) in enumerate(rows)]


# --- Database.insert_new: the ids SQLite gave rows it inserted, without reading them back --

# Steps on a probe table: insert these positions (some taken already, some repeated in
# one call is not allowed: the store inserts distinct keys), or delete the rows of the
# highest ids (so that SQLite hands those ids out again).
insert_steps = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.lists(st.integers(0, 60), max_size=25, unique=True)),
        st.tuples(st.just("delete"), st.integers(1, 5)),
    ),
    max_size=8,
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=insert_steps, limit=st.integers(len(_PROBE_COLUMNS), 40))
async def test_insert_new_tells_the_ids_rows_were_given(
    store: Store, steps: list[tuple[str, Any]], limit: int
) -> None:
    """When every row was inserted, the ids insert_new returns are those the rows hold, in
    row order, also when the rows took several statements (a low limit on bound
    parameters) or ids freed by deleted rows; when a conflict skipped some row it returns
    no ids, and the count of rows inserted. PostgreSQL never returns ids."""
    database = store._database
    serial = "BIGSERIAL PRIMARY KEY" if database.is_postgresql else "INTEGER PRIMARY KEY"
    sqlite = not database.is_postgresql

    def work(conn: sa.Connection) -> None:
        before = 0
        if sqlite:
            driver = conn.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            before = driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE probe (id {serial}, n BIGINT, a TEXT, b TEXT, pos INT UNIQUE)"
        )
        try:
            for kind, arg in steps:
                if kind == "delete":
                    conn.exec_driver_sql(
                        "DELETE FROM probe WHERE id IN "
                        f"(SELECT id FROM probe ORDER BY id DESC LIMIT {arg})"
                    )
                    continue
                taken = {pos for (pos,) in conn.exec_driver_sql("SELECT pos FROM probe")}
                rows = [(pos * 7, f"a{pos}", None, pos) for pos in arg]
                inserted, ids = database.insert_new(
                    conn, "probe", _PROBE_COLUMNS, rows, conflict="pos"
                )
                fresh = [pos for pos in arg if pos not in taken]
                assert inserted == len(fresh)
                if sqlite and len(fresh) == len(arg):
                    assert ids is not None
                    held = dict(conn.exec_driver_sql("SELECT pos, id FROM probe").fetchall())
                    assert ids == [held[pos] for pos in arg]
                else:
                    assert ids is None or (not arg and ids == [])
        finally:
            conn.exec_driver_sql("DROP TABLE probe")
            if sqlite:
                driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)

    await store._run("probe insert_new", work, write=True)
