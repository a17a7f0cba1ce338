"""Store fixtures: a real SQLite file, and a real PostgreSQL schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from store_support import postgresql_base_url

from stageline.store import Store, open_store


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = sa.make_url(postgresql_base_url())
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """A fresh database: a SQLite file in tmp_path, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return os.path.join(tmp_path, "stageline.db")
    return str(request.getfixturevalue("postgresql_url"))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """An open store on a fresh database."""
    async with open_store(database_url) as opened:
        yield opened


@pytest.fixture
async def sqlite_store(tmp_path: os.PathLike[str]) -> AsyncIterator[Store]:
    """An open store on a fresh SQLite file, for what only SQLite has (the writer gate,
    the limit on bound parameters)."""
    async with open_store(os.path.join(tmp_path, "stageline.db")) as opened:
        yield opened
