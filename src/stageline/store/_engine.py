"""Database URLs, engines, and the one seam where SQLAlchemy errors become StoreErrors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from .._exceptions import DatabaseURLError, StoreError

__all__ = ["create_engine", "describe_url", "sqlite_path", "translate_error"]

_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_POSTGRESQL_DRIVERS = {"postgresql", "postgresql+psycopg"}
_SUPPORTED = "a file path, sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"

#: Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE.
WRITE_OPTION = "stageline_write"


def _to_url(url_or_path: str | os.PathLike[str]) -> sa.URL:
    if isinstance(url_or_path, os.PathLike) or "://" not in url_or_path:
        path = Path(url_or_path)
        if not str(url_or_path):
            raise DatabaseURLError(f"the database path is empty; expected {_SUPPORTED}")
        return sa.URL.create("sqlite+pysqlite", database=str(path.absolute()))
    try:
        url = make_url(url_or_path)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise DatabaseURLError(
            f"cannot parse the database URL {url_or_path!r}: {exc}; expected {_SUPPORTED}"
        ) from exc
    if url.drivername in _SQLITE_DRIVERS:
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise DatabaseURLError(
                f"{url.render_as_string(hide_password=True)!r} names no database file; the "
                "store needs a SQLite file (several threads and processes share it), e.g. "
                "sqlite:///var/lib/stageline/stageline.db"
            )
        return url.set(drivername="sqlite+pysqlite")
    if url.drivername in _POSTGRESQL_DRIVERS:
        return url.set(drivername="postgresql+psycopg")
    raise DatabaseURLError(
        f"unsupported database URL scheme {url.drivername!r} in "
        f"{url.render_as_string(hide_password=True)!r}; expected {_SUPPORTED}"
    )


def describe_url(url: sa.URL) -> str:
    """The URL as text with any password hidden, for messages."""
    return url.render_as_string(hide_password=True)


def sqlite_path(url: sa.URL) -> Path | None:
    """The database file of a SQLite URL, None for PostgreSQL."""
    if url.get_backend_name() != "sqlite":
        return None
    assert url.database is not None
    return Path(url.database)


def create_engine(url_or_path: str | os.PathLike[str], *, pool_size: int) -> sa.Engine:
    """An engine for a SQLite file (WAL, immediate write transactions) or PostgreSQL.

    Raises:
        DatabaseURLError: the URL's scheme is not supported, it names no database file,
            or the SQLite file's folder does not exist.
        StoreError: the SQLite file cannot be created, or the PostgreSQL driver (psycopg)
            is not installed.
    """
    url = _to_url(url_or_path)
    if url.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        assert path is not None
        _create_private_file(path)
        engine = sa.create_engine(
            url,
            # The sqlite3 busy timeout: how long a writer waits for another one (threads
            # here, or another process) before "database is locked".
            connect_args={"timeout": 60.0, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
            # Reuse the most recently used connection: its page cache is the warm one
            # (SQLite drops a connection's cache whenever another connection wrote).
            pool_use_lifo=True,
        )
        _configure_sqlite(engine)
        return engine
    try:
        import psycopg  # noqa: F401  (only to give a clear error when it is missing)
    except ImportError as exc:
        raise StoreError(
            "PostgreSQL needs the psycopg driver; install it with "
            "`pip install 'stageline[postgresql]'`"
        ) from exc
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_use_lifo=True)


def _create_private_file(path: Path) -> None:
    """Create the SQLite file, readable by its owner only, unless it exists (blocking).

    SQLite gives the -wal and -shm files the mode of the database file, so they are
    private too; left to SQLite, all three would be readable by everyone (0o644), and
    the database holds remote credentials. An existing file keeps the mode it has.

    Raises:
        DatabaseURLError: the file's folder does not exist (only stageline's default home
            is created on demand: a typo in a path must not grow a tree of folders).
        StoreError: the file cannot be created.
    """
    if not path.parent.is_dir():
        raise DatabaseURLError(
            f"the folder {path.parent} does not exist, so the SQLite database {path} cannot "
            "be created in it; create the folder first, or check the path for a typo "
            "(stageline creates only its own default home, stageline.store.default_home())"
        )
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the SQLite database {path}: {exc}") from exc
    os.close(fd)


def _configure_sqlite(engine: sa.Engine) -> None:
    # The stdlib driver begins transactions lazily and commits before DDL; take control of
    # BEGIN instead (the recipe in SQLAlchemy's SQLite dialect documentation), so that
    # transactions are real and writers take the write lock up front with BEGIN IMMEDIATE:
    # a deferred transaction that reads and then writes can fail with "database is locked"
    # without waiting, while an immediate one waits for the busy timeout.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode; only a power loss
            # may drop the last transactions, never corrupt the file.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # The default 2 MB page cache is smaller than the unique indexes of a 100 000
            # unit repository, whose random digests then miss it on most inserts; and each
            # pooled connection has its own cache, dropped whenever another one wrote.
            # Memory-mapped reads share the OS page cache between them instead.
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA mmap_size=1073741824")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def translate_error(exc: sa.exc.SQLAlchemyError, *, what: str, url: sa.URL) -> StoreError:
    """A StoreError saying what failed, on which database, and what to try."""
    where = describe_url(url)
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate in ("40001", "40P01"):
        return StoreError(
            f"could not {what} in {where}: the database aborted it because of a concurrent "
            f"transaction ({detail}); run the operation (the sync) again"
        )
    if isinstance(exc, sa.exc.OperationalError) and "locked" in detail:
        return StoreError(
            f"could not {what} in {where}: {detail}; another process kept the SQLite database "
            "locked for longer than the busy timeout (60 s); use PostgreSQL for many "
            "concurrent writers"
        )
    if isinstance(exc, sa.exc.OperationalError):
        hint = (
            "check that the database server is running and reachable and that the "
            "credentials are right"
            if url.get_backend_name() == "postgresql"
            else "check that the file is writable and not locked by a crashed process on a "
            "network filesystem"
        )
        return StoreError(f"could not {what} in {where}: {detail}; {hint}")
    if isinstance(exc, sa.exc.IntegrityError):
        return StoreError(
            f"could not {what} in {where}: the database refused it as a constraint "
            f"violation ({detail}); the rows referred to may have been deleted meanwhile"
        )
    return StoreError(f"could not {what} in {where}: {detail}")
