"""SQLite query plans: version queries use the index meant for them, whatever the index order.

SQLite has no statistics here, so between two indexes that look equally good it picks by
their order in the schema, which SQLAlchemy's create_all does not fix. These tests
recreate the repository_content indexes in both orders and check the plans of what a
version sends.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from store_support import FileUnit, sha

from stageline.models import Remote, Repository
from stageline.store import open_store

pytestmark = pytest.mark.anyio

INDEXES = [
    "ix_repository_content_content",
    "ix_repository_content_added",
    "ix_repository_content_removed",
    "ix_repository_content_repo_key",
]


def recreate_indexes(path: Path, order: list[str]) -> None:
    with sqlite3.connect(path) as conn:
        definitions = dict(
            conn.execute(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'index' AND name LIKE 'ix_repository_content_%'"
            ).fetchall()
        )
        for name in order:
            conn.execute(f"DROP INDEX {name}")
        for name in order:
            conn.execute(definitions[name])


@pytest.mark.parametrize("order", [INDEXES, INDEXES[::-1]], ids=["forward", "reverse"])
async def test_version_queries_use_their_index(tmp_path: Path, order: list[str]) -> None:
    """Lookups, repo-key checks and keyset pages never walk a whole version."""
    path = tmp_path / "plans.db"
    async with open_store(path):
        pass
    recreate_indexes(path, order)
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "repository_content" in statement:
            statements.append((statement, params))

    async with open_store(path) as store:
        repository = await store.create_repository(Repository(name="r"))
        units = await store.save_content([FileUnit(path=f"p{n}", digest=sha(n)) for n in range(20)])
        async with store.new_version(repository) as first:
            await first.add_content(units[:10])
        sa.event.listen(store._engine, "before_cursor_execute", record)
        async with store.new_version(repository) as second:
            await second.add_content(units[10:])
            await second.remove_content(units[:2])
            await second.mark_seen(units[5:])
            await second.remove_unseen()
            async for _chunk in second.iter_content(chunk_size=4):
                pass
            statements_in_block = len(statements)
        async for _chunk in store.iter_content(
            await store.latest_version(repository), chunk_size=4
        ):
            pass
        sa.event.remove(store._engine, "before_cursor_execute", record)
    del statements[statements_in_block : statements_in_block + 2]  # the commit's two counts
    assert statements
    with sqlite3.connect(path) as conn:
        for statement, params in statements:
            plan = " ".join(
                row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            )
            assert "SCAN repository_content" not in plan, (statement, plan)
            assert "ix_repository_content_removed" not in plan, (statement, plan)
            assert "ix_repository_content_added" not in plan, (statement, plan)


def plans_of(path: Path, statements: list[tuple[str, Any]]) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [
            " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params))
            for statement, params in statements
        ]


async def test_lookups_by_other_digests_and_by_remote_use_an_index(tmp_path: Path) -> None:
    """Artifacts by sha224/384/512 and a remote's files by sha256 never read a whole table."""
    path = tmp_path / "digests.db"
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    async with open_store(path) as store:
        await store.save_remote(Remote(url="http://127.0.0.1:9/", name="acs"))
        sa.event.listen(store._engine, "before_cursor_execute", record)
        for kind, length in (("sha224", 56), ("sha384", 96), ("sha512", 128)):
            await store.find_artifacts_by_digest(kind, ["a" * length, "b" * length])
        await store.find_remote_artifact_urls(Remote(url="http://x.test/", name="acs"), [sha(1)])
        sa.event.remove(store._engine, "before_cursor_execute", record)
    assert len(statements) == 4
    for (statement, _params), plan in zip(statements, plans_of(path, statements), strict=True):
        assert "SCAN artifacts" not in plan, (statement, plan)
        assert "SCAN remote_artifacts" not in plan, (statement, plan)
        assert "USING INDEX ix_" in plan, (statement, plan)


@pytest.mark.parametrize("order", [INDEXES, INDEXES[::-1]], ids=["forward", "reverse"])
async def test_removing_the_unseen_looks_each_unit_up_in_the_record(
    tmp_path: Path, order: list[str]
) -> None:
    """remove_unseen reads the repository's present rows once, probing the record by key."""
    path = tmp_path / "unseen.db"
    async with open_store(path):
        pass
    recreate_indexes(path, order)
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if "new_version_seen" in statement and not statement.startswith("INSERT"):
            statements.append((statement, params))

    async with open_store(path) as store:
        repository = await store.create_repository(Repository(name="r"))
        units = await store.save_content([FileUnit(path=f"p{n}", digest=sha(n)) for n in range(9)])
        async with store.new_version(repository) as first:
            await first.add_content(units)
        sa.event.listen(store._engine, "before_cursor_execute", record)
        async with store.new_version(repository) as second:
            await second.mark_seen(units[3:])
            await second.remove_unseen()
        sa.event.remove(store._engine, "before_cursor_execute", record)
    # The DELETE of rows this version added, the UPDATE of older ones, the commit's clean-up.
    assert [s.split()[0] for s, _p in statements] == ["DELETE", "UPDATE", "DELETE"]
    for (statement, _params), plan in zip(statements, plans_of(path, statements), strict=True):
        assert "SCAN new_version_seen" not in plan, (statement, plan)
        assert "SCAN repository_content" not in plan, (statement, plan)
