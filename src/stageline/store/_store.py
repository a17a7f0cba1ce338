"""The async store: batch operations on the models, run in worker threads.

:class:`Store` is a facade: each kind of row has its own module (``_artifacts``,
``_content``, ``_remotes``, ``_repositories``, ``_version``), all working through the one
database helper in ``_database``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa

from .._exceptions import StoreArgumentError
from ..models import Remote, Repository
from ._artifacts import ArtifactCalls
from ._content import ContentCalls
from ._database import Database, require_pk
from ._engine import create_engine, translate_error
from ._listing import ListingCalls
from ._locator import ArtifactLocator
from ._migrate import ensure_schema
from ._ranges import Change
from ._remotes import RemoteCalls
from ._repositories import RepositoryCalls
from ._unit_of_work import UnitOfWork
from ._version import NewVersion

__all__ = ["Change", "Store", "open_store"]

T = TypeVar("T")


class Store(ArtifactCalls, ContentCalls, RemoteCalls, RepositoryCalls, ListingCalls):
    """The database of content, artifacts, remotes and repository versions.

    Create it with :func:`open_store`. Every method works on a whole batch in one or a few
    round trips and runs in a worker thread (at most ``max_threads`` at once), so it can be
    awaited from asyncio or Trio. Writes are insert-or-get: two processes saving the same
    rows at the same time both succeed and get the same primary keys. Rows are written in
    a sorted order so that concurrent PostgreSQL writers take row locks in the same order
    and never deadlock.

    Saving sets ``pk`` on the objects passed in (and on their related objects' rows);
    lookups return saved objects. Every method raises :class:`~stageline.StoreError` (or a
    subclass) when the database fails, with the underlying driver error as ``__cause__``.
    Each call is a transaction of its own; a call cancelled in the middle of it commits
    nothing. To make several calls one transaction, use :meth:`unit_of_work`; while one is
    open in a task, the store's own writes from that task are refused with StoreError.
    """

    def __init__(
        self, engine: sa.Engine, *, max_threads: int, storage: ArtifactLocator | None = None
    ) -> None:
        self._database = Database(engine, max_threads=max_threads, locator=storage)
        self._runner = self._database
        # The engine, for tests that watch the statements sent.
        self._engine = engine
        self._remotes: dict[int, Remote] = {}

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._database.url

    @property
    def is_postgresql(self) -> bool:
        """True on PostgreSQL, False on SQLite."""
        return self._database.is_postgresql

    @property
    def _analyze_at(self) -> dict[str, int]:
        # For tests that make a save refresh PostgreSQL's statistics at once.
        return self._database.analyze_at

    async def _run(self, what: str, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        # For tests that change rows behind the API's back.
        return await self._database.run(what, fn, write=write)

    async def _setup(self) -> None:
        engine = self._engine

        def setup() -> None:
            try:
                ensure_schema(engine)
            except sa.exc.SQLAlchemyError as exc:
                raise translate_error(
                    exc, what="create or check the schema", url=engine.url
                ) from exc

        await self._database.run_blocking(setup)

    async def aclose(self) -> None:
        """Close every database connection. The store cannot be used afterwards."""
        await self._database.aclose()

    def unit_of_work(self) -> UnitOfWork:
        """Start several calls in one database transaction; use with ``async with``.

        ``async with store.unit_of_work() as uow:`` commits when the block ends normally
        and rolls back on any exception or cancellation. See :class:`UnitOfWork`.
        """
        return UnitOfWork(self._database)

    def new_version(self, repository: Repository) -> NewVersion:
        """Start building the next version of ``repository``; use with ``async with``.

        See :class:`NewVersion`.

        Raises:
            StoreArgumentError: the repository is not saved.
        """
        require_pk(repository, "repository")
        return NewVersion(self._database, repository)


@asynccontextmanager
async def open_store(
    url_or_path: str | os.PathLike[str],
    *,
    max_threads: int = 4,
    storage: ArtifactLocator | None = None,
) -> AsyncIterator[Store]:
    """Open (creating on first use) the store at a SQLite file or a PostgreSQL database.

    Use it as ``async with open_store("stageline.db") as store: ...``; connections are
    closed when the block ends. On first use the tables are created and the schema
    revision recorded; a database made by an older stageline is upgraded (once, even when
    several processes open it at the same moment), one made by a newer stageline refused.

    Args:
        url_or_path: a file path or ``sqlite:///PATH`` for SQLite (WAL mode; the file is
            created if missing, readable by its owner only, but its folder must exist),
            or ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE`` (plain
            ``postgresql://`` means the same) for PostgreSQL. For stageline's default
            database pass :func:`default_database_path`.
        max_threads: at most this many database calls run at once (worker threads and
            pooled connections).
        storage: where artifact files are stored, e.g. an
            :class:`~stageline.storage.ArtifactStorage` (anything with ``path_for(sha256)
            -> Path``). The database stores no file paths; with a storage, every artifact
            the store returns has ``file = storage.path_for(sha256)``, without one
            ``file`` is None on artifacts read from the database.

    Yields:
        The open :class:`Store`.

    Raises:
        StoreArgumentError: ``max_threads`` < 1.
        DatabaseURLError: the URL's scheme is not supported, it names no SQLite file, or
            the SQLite file's folder does not exist.
        SchemaVersionError: the database was made or upgraded by a newer stageline, or is
            not a stageline database.
        StoreError: the database cannot be reached or created, or the PostgreSQL driver is
            missing.
    """
    if isinstance(max_threads, bool) or not isinstance(max_threads, int) or max_threads < 1:
        raise StoreArgumentError(f"max_threads must be an int >= 1, got {max_threads!r}")
    engine = await anyio.to_thread.run_sync(
        lambda: create_engine(url_or_path, pool_size=max_threads)
    )
    store = Store(engine, max_threads=max_threads, storage=storage)
    try:
        await store._setup()
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await store.aclose()
