"""Content types and helpers shared by the store tests and their helper processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from stageline.models import Content
from stageline.store import Store

POSTGRESQL_ENV = "STAGELINE_TEST_POSTGRESQL_URL"


@attrs.define(eq=False, kw_only=True)
class FileUnit(Content):
    """A file: identified by path and digest; one file per path in a repository version."""

    type_name: ClassVar[str] = "test.file"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("path", "digest")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("path",)

    path: str
    digest: str
    size: int = 0


@attrs.define(eq=False, kw_only=True)
class PackageUnit(Content):
    """A package: identified by name and version; no repository key."""

    type_name: ClassVar[str] = "test.package"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("name", "version")

    name: str
    version: str
    requires: list[str] = attrs.field(factory=list)


def sha(n: int) -> str:
    """A valid, distinct sha256 hex string for the integer ``n``."""
    return f"{n:064x}"


def postgresql_base_url() -> str:
    """The configured PostgreSQL URL; skips the test, or fails it under CI, when unset."""
    url = os.environ.get(POSTGRESQL_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(
            f"CI is set but {POSTGRESQL_ENV} is not: the PostgreSQL tests must run in CI; "
            "run them through scripts/test (as root it starts a server) or set the URL"
        )
    pytest.skip(f"{POSTGRESQL_ENV} is not set (scripts/test sets it up when run as root)")


def sync_engine(url: str) -> sa.Engine:
    """A plain engine on the same database, for looking at rows the API does not show."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    return sa.create_engine(url, poolclass=NullPool)


def count_rows(url: str, table: str, where: str = "") -> int:
    """How many rows ``table`` holds (optionally filtered by a SQL condition)."""
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
            return int(conn.exec_driver_sql(sql).scalar_one())
    finally:
        engine.dispose()


@contextmanager
def count_statements(store: Store) -> Iterator[list[str]]:
    """Collect the SQL statements the store sends while the block runs."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            statements.append(statement)

    engine = store._engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
