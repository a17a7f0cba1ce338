"""``Workspace``: where syncs keep their data and how they download, with embedded defaults."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio.to_thread
import sqlalchemy as sa

from .._exceptions import StageConfigurationError, StoreError
from ..download import DownloaderFactory
from ..stages import AlternateContentSource
from ..storage import ArtifactStorage
from ..store import HOME_ENV, Store, create_home, default_home, open_store

__all__ = ["HOME_ENV", "Workspace"]


def _shown(database: str | os.PathLike[str]) -> str:
    """The database path or URL as text, any password in the URL hidden."""
    text = os.fspath(database)
    if "://" not in text:
        return text
    try:
        return sa.make_url(text).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<a database url that does not parse>"


class Workspace:
    """Where syncs keep their data, and how they download: the one object to configure.

    A workspace names the store (a SQLite file by default, or a PostgreSQL URL), the
    artifact storage (a local folder), and how each sync makes its
    :class:`~stageline.download.DownloaderFactory`. With no arguments everything lives
    in stageline's home folder, created on first use and readable by its owner only::

        Workspace()                   # $STAGELINE_HOME, else ~/.local/share/stageline
        Workspace("/srv/stageline")   # /srv/stageline/stageline.db and /srv/stageline/artifacts
        Workspace(database="postgresql+psycopg://sync@db/stageline", artifacts="/mnt/artifacts")
        Workspace(downloader_factory=functools.partial(DownloaderFactory, allowed_digests=[...]))

    A sync opens the store for its own duration. To share one open store between
    several syncs (and save the opening), keep the workspace open around them::

        async with workspace:
            await DeclarativeVersion(first, repo_a, workspace=workspace).acreate()
            await DeclarativeVersion(first, repo_b, workspace=workspace).acreate()

    Args:
        home: stageline's folder; the default is ``$STAGELINE_HOME``, else
            ``$XDG_DATA_HOME/stageline``, else ``~/.local/share/stageline``. Only that
            default is created when missing.
        database: a SQLite file path, ``sqlite:///PATH`` or a PostgreSQL URL; the
            default is ``HOME/stageline.db``.
        artifacts: the root of the artifact storage; the default is ``HOME/artifacts``.
        downloader_factory: called with no arguments to make each sync's factory (a
            class, a subclass, or a ``functools.partial`` of one with its settings).
        max_threads: at most this many database calls at once.
        alternate_sources: the alternate content sources of this store, most preferred
            first: nearer copies of upstream files that syncs with ``acs=True`` fetch
            from first (see :class:`~stageline.stages.AlternateContentSource`).

    Attributes:
        home: stageline's folder (where the defaults below live).
        database: the database path or URL.
        storage: the artifact storage.
        downloader_factory: what makes each sync's downloader factory.
        alternate_sources: the alternate content sources (a tuple).

    Raises:
        StageConfigurationError: (a ``ValueError``) ``alternate_sources`` holds something
            else than an ``AlternateContentSource``.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        database: str | os.PathLike[str] | None = None,
        artifacts: str | os.PathLike[str] | None = None,
        downloader_factory: Callable[[], DownloaderFactory] = DownloaderFactory,
        max_threads: int = 4,
        alternate_sources: Iterable[AlternateContentSource] = (),
    ) -> None:
        folder = default_home(create=False) if home is None else Path(home).absolute()
        # Only stageline's own default home is created, and only when something is in it.
        self._create_home = home is None and (database is None or artifacts is None)
        self.home = folder
        self.database: str | os.PathLike[str] = (
            database if database is not None else folder / "stageline.db"
        )
        self.storage = ArtifactStorage(artifacts if artifacts is not None else folder / "artifacts")
        self.downloader_factory = downloader_factory
        self.max_threads = max_threads
        self.alternate_sources = tuple(alternate_sources)
        for source in self.alternate_sources:
            if not isinstance(source, AlternateContentSource):
                raise StageConfigurationError(
                    "Workspace: alternate_sources must hold AlternateContentSource(remote) "
                    f"objects, got {source!r}"
                )
        self._store: Store | None = None
        self._exit: AsyncExitStack | None = None

    def __repr__(self) -> str:
        return f"Workspace(database={_shown(self.database)!r}, storage={self.storage!r})"

    @property
    def store(self) -> Store:
        """The open store, inside ``async with workspace:``.

        Raises:
            StoreError: the workspace is not open.
        """
        if self._store is None:
            raise StoreError(
                "the workspace is not open; use `async with workspace:` (or "
                "workspace.open_store()) to get its store"
            )
        return self._store

    @asynccontextmanager
    async def open_store(self) -> AsyncIterator[Store]:
        """The workspace's store: the open one, or one opened for the block.

        Yields:
            An open store.

        Raises:
            DatabaseURLError: the database URL is not supported.
            SchemaVersionError: the database was made by another schema version.
            StoreError: the database cannot be opened, or the default home created.
        """
        if self._store is not None:
            yield self._store
            return
        if self._create_home:
            await anyio.to_thread.run_sync(create_home, self.home)
        async with open_store(
            self.database, max_threads=self.max_threads, storage=self.storage
        ) as store:
            yield store

    async def __aenter__(self) -> Self:
        if self._exit is not None:
            raise StoreError("the workspace is open already; enter it once at a time")
        async with AsyncExitStack() as stack:
            self._store = await stack.enter_async_context(self.open_store())
            self._exit = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit = self._exit, None
        self._store = None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
