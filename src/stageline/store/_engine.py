"""Database URLs, engines, and the one seam where SQLAlchemy errors become StoreErrors."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from .._exceptions import DatabaseURLError, StoreError

__all__ = [
    "SQLITE_BUSY_TIMEOUT",
    "create_engine",
    "describe_url",
    "sqlite_path",
    "translate_error",
]

#: Seconds a SQLite writer waits for the write lock (held by another connection of this
#: process or by another process) before the store reports "database is locked".
SQLITE_BUSY_TIMEOUT: Final = 60.0

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
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False},
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


#: How many times a connection waits for another one's write lock to switch the file to
#: WAL: each wait lasts up to the busy timeout; a file that some other writer keeps
#: taking back again after that is refused.
_WAL_TRIES = 3


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database file to WAL (it stays so), waiting for other writers.

    The switch needs the file's write lock, and SQLite answers "database is locked" at
    once, without the busy timeout, when another connection holds that lock: when two
    processes open a new database at the same moment and both switch it, or a file not
    yet in WAL mode is being written. ``BEGIN IMMEDIATE`` does wait, so wait for the
    lock with it and switch again; a file the other connection switched meanwhile is
    then in WAL mode already.
    """
    for attempt in range(_WAL_TRIES):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WAL_TRIES - 1:
                raise
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("ROLLBACK")


#: Pages the WAL holds before a commit copies them into the database file (SQLite's
#: default is 1 000).
WAL_AUTOCHECKPOINT_PAGES = 10_000


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
            _use_wal(cursor)
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
            # A checkpoint copies every page changed since the last one from the WAL into
            # the database file; a sync changes the same index pages batch after batch, so
            # the rarer the checkpoints, the fewer copies. At 10 000 pages (the WAL grows
            # to ~40 MB) rather than 1 000, the database threads of an on_demand sync of
            # 100 000 units used 5-8 µs less CPU per unit, all of it under the write lock.
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


# SQLSTATEs of PostgreSQL errors whose hint differs from their exception class's.
_SERIALIZATION = ("40001", "40P01")
_CONSTRAINT_HINTS = {
    "23505": "unique",
    "23503": "foreign key",
    "23502": "not null",
    "23514": "check",
}
# The same kinds in SQLite's messages ("CHECK constraint failed: ck_artifacts_size").
_SQLITE_CONSTRAINTS = {
    "UNIQUE constraint": "unique",
    "FOREIGN KEY constraint": "foreign key",
    "NOT NULL constraint": "not null",
    "CHECK constraint": "check",
}


def _constraint_hint(kind: str | None) -> str:
    if kind == "check":
        return (
            "a value broke one of the schema's CHECK constraints (named in the message: "
            "sizes, counts and version numbers are never negative, remote names never "
            "empty); stageline's own checks refuse such values first, so it came from "
            "elsewhere (a plugin's SQL, or an object changed behind its validators): fix "
            "the value"
        )
    if kind == "unique":
        return (
            "a row with the same unique key exists, written meanwhile by another writer or "
            "outside the store's calls; run the operation again, or pick another name"
        )
    if kind == "not null":
        return "a required value is missing (None); give it a value"
    if kind == "foreign key":
        return (
            "the rows referred to do not exist (deleted meanwhile, or never saved in this "
            "database); save them first"
        )
    return "the row breaks a constraint of the schema; fix the values"


def _postgresql_hint(sqlstate: str | None, *, operational: bool) -> str | None:
    if sqlstate is not None and sqlstate.startswith("54"):
        return (
            "a value is larger than PostgreSQL allows there: an index entry is limited to "
            "about 2.7 kB, so indexed text (names, relative paths) must be short; shorten "
            "the value (the store refuses names over 255 characters and relative paths over "
            "2048 bytes before they reach the database)"
        )
    if sqlstate is not None and sqlstate.startswith("53"):
        return (
            "the server ran out of a resource (disk, memory or connections); free some, or "
            "lower max_threads"
        )
    if sqlstate in ("42P01", "42703"):
        return (
            "a table or column the store uses is missing: the schema was changed outside "
            "stageline; restore it, or point stageline at another database"
        )
    if sqlstate == "42501":
        return (
            "the database user lacks a privilege on stageline's tables; grant it, or connect "
            "as the user that owns them"
        )
    if operational and (sqlstate is None or sqlstate.startswith(("08", "57P", "28"))):
        # No SQLSTATE: the connection failed before the server answered.
        return (
            "check that the database server is running and reachable and that the "
            "credentials are right"
        )
    return None


# SQLite's messages about the database file itself (opening, writing, reading it), which
# the file's permissions, its folder or its filesystem explain.
_SQLITE_FILE_TROUBLE = ("unable to open", "readonly", "read-only", "disk i/o", "locking protocol")


def _sqlite_hint(detail: str) -> str | None:
    lowered = detail.lower()
    if "no such table" in lowered or "no such column" in lowered:
        return (
            "a table or column the store uses is missing: the schema was changed outside "
            "stageline; restore it, or point stageline at another database"
        )
    if "full" in lowered:
        return "the disk (or the file's quota) is full; free some space"
    if "malformed" in lowered or "not a database" in lowered:
        return (
            "the file is not a SQLite database or is damaged; restore it from a backup, or "
            "point stageline at another database"
        )
    if any(text in lowered for text in _SQLITE_FILE_TROUBLE):
        return (
            "check that the file and its folder are writable, and that it is not locked by "
            "a crashed process on a network filesystem"
        )
    # Anything else (a statement SQLite refused, such as a plugin's SQL) is told as it is:
    # a guess about the file would send the reader the wrong way.
    return None


def translate_error(exc: sa.exc.SQLAlchemyError, *, what: str, url: sa.URL) -> StoreError:
    """A StoreError saying what failed, on which database, and a hint that fits the cause.

    The hint follows the driver's error: PostgreSQL's SQLSTATE where there is one,
    SQLite's message otherwise. A value over an index's size limit is not a server that
    cannot be reached, nor a broken CHECK constraint a concurrent deletion.
    """
    where = describe_url(url)
    original = getattr(exc, "orig", None)
    detail = str(original or exc).strip().splitlines()[0]
    sqlstate = getattr(original, "sqlstate", None)
    postgresql = url.get_backend_name() == "postgresql"
    if sqlstate in _SERIALIZATION:
        return StoreError(
            f"could not {what} in {where}: the database aborted it because of a concurrent "
            f"transaction ({detail}); run the operation (the sync) again"
        )
    if isinstance(exc, sa.exc.IntegrityError):
        kind = _CONSTRAINT_HINTS.get(sqlstate or "")
        if not postgresql:
            kind = next((k for text, k in _SQLITE_CONSTRAINTS.items() if text in detail), None)
        return StoreError(
            f"could not {what} in {where}: the database refused it as a constraint "
            f"violation ({detail}); {_constraint_hint(kind)}"
        )
    if isinstance(exc, sa.exc.DataError):
        return StoreError(
            f"could not {what} in {where}: the database refused a value ({detail}): out of "
            "its column's range, too long, or holding a NUL character; the store refuses most of "
            "these before they reach the database, so it came from elsewhere (a plugin's "
            "SQL?): fix the value"
        )
    if isinstance(exc, sa.exc.OperationalError) and not postgresql and "locked" in detail:
        return StoreError(
            f"could not {what} in {where}: {detail}; another process kept the SQLite "
            f"database locked for longer than the busy timeout ({SQLITE_BUSY_TIMEOUT:g} s); "
            "use PostgreSQL for many concurrent writers"
        )
    operational = isinstance(exc, sa.exc.OperationalError)
    hint: str | None = None
    if postgresql:
        hint = _postgresql_hint(sqlstate, operational=operational)
    elif operational:
        hint = _sqlite_hint(detail)
    if hint is None:
        return StoreError(f"could not {what} in {where}: {detail}")
    return StoreError(f"could not {what} in {where}: {detail}; {hint}")
