"""Fixtures shared by the sync and stage tests: a server, databases, a workspace."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import stamina
from sqlalchemy.pool import NullPool

from stageline import Workspace
from stageline.storage import ArtifactStorage
from stageline.store import Store, open_store

from ..download._servers import LocalServer, running
from ._plugin import Upstream

POSTGRESQL_ENV = "STAGELINE_TEST_POSTGRESQL_URL"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A scripted HTTP server on 127.0.0.1, stopped after the test."""
    with running(LocalServer()) as srv:
        yield srv


@pytest.fixture
def upstream(server: LocalServer) -> Upstream:
    """An upstream repository with a MANIFEST, served by ``server``."""
    return Upstream(server)


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    """stamina's testing mode: retries keep their number but wait zero seconds."""
    with stamina.set_testing(True, attempts=1_000, cap=True):
        yield


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so that an unclosed socket fails the test that leaked it."""
    yield
    gc.collect()


def _postgresql_base_url() -> str:
    url = os.environ.get(POSTGRESQL_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {POSTGRESQL_ENV} is not: the PostgreSQL tests must run in CI")
    pytest.skip(f"{POSTGRESQL_ENV} is not set (scripts/test sets it up when run as root)")


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = sa.make_url(_postgresql_base_url())
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
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: a SQLite file, or a PostgreSQL schema (for the core cases)."""
    if request.param == "sqlite":
        return str(tmp_path / "any.db")
    return str(request.getfixturevalue("postgresql_url"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder for the test's workspace."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def workspace(home: Path) -> Workspace:
    """A workspace in ``home``: a SQLite file and a local artifact storage."""
    return Workspace(home)


@pytest.fixture
def any_workspace(home: Path, any_database: str) -> Workspace:
    """A workspace on SQLite or PostgreSQL, its artifacts in ``home``."""
    return Workspace(home, database=any_database)


@pytest.fixture
def storage(tmp_path: Path) -> ArtifactStorage:
    """An artifact storage in the test's folder."""
    return ArtifactStorage(tmp_path / "storage")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An open store on a fresh SQLite file."""
    async with open_store(tmp_path / "stages.db") as opened:
        yield opened
