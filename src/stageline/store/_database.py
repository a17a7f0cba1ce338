"""The one place the store touches the database: transactions in worker threads, bulk inserts.

Every other store module (artifacts, content, remotes, repositories, :class:`NewVersion`)
works through the small public interface of :class:`Database` and the :class:`Runner`
protocol, never through an engine or a connection of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as _pg
from sqlalchemy.dialects import sqlite as _sqlite

from ._engine import WRITE_OPTION, describe_url, sqlite_path, translate_error
from ._locator import ArtifactLocator
from ._values import check_int

__all__ = ["CHUNK", "Database", "Runner", "chunks", "require_pk"]

T = TypeVar("T")

#: Rows per IN (...) list or multi-row statement: well under SQLite's 32766 variables and
#: small enough that PostgreSQL plans each list as an index lookup.
CHUNK = 500

#: Rows a table must gain before its PostgreSQL statistics are first refreshed.
_FIRST_ANALYZE = 2000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def require_pk(obj: Any, what: str) -> int:
    """The primary key of a saved object.

    Raises:
        ValueError: ``obj`` has no ``pk`` yet; the message names ``what`` and the object.
        StoreArgumentError: the pk is beyond the range of primary keys (it was not given by a
            store).
    """
    pk = getattr(obj, "pk", None)
    if pk is None:
        raise ValueError(f"{what} must be saved first (it has no pk): {obj!r}")
    pk = int(pk)
    check_int(pk, f"the pk of {what}")
    return pk


class Runner(Protocol):
    """Where a store call runs its SQL: a transaction of its own, or a unit of work's.

    The domain modules (artifacts, content, remotes, repositories) are written against
    this protocol, so the same code serves :class:`~stageline.store.Store` (each call its
    own transaction) and a unit of work (every call in one transaction).
    """

    @property
    def database(self) -> Database:
        """The database the work runs on (for its dialect helpers)."""
        ...

    async def run(self, what: str, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        """Run ``fn(connection)`` in a transaction, in a worker thread.

        ``what`` completes "could not …" in error messages.
        """
        ...

    async def note_growth(self, table: str, rows: int) -> None:
        """Record that ``rows`` rows were written to ``table`` (see Database.note_growth)."""
        ...


class Database:
    """An engine, the worker threads that use it, and the SQL every store module shares.

    Args:
        engine: a SQLite or PostgreSQL engine made by ``create_engine``.
        max_threads: at most this many calls run in worker threads at once.
        locator: where artifact files are stored, to set ``file`` on the artifacts read
            back; None leaves their ``file`` None.
    """

    def __init__(
        self, engine: sa.Engine, *, max_threads: int, locator: ArtifactLocator | None = None
    ) -> None:
        self._engine = engine
        self._locator = locator
        self._url = engine.url
        self._postgresql = engine.dialect.name == "postgresql"
        self._sqlite_file = sqlite_path(engine.url)
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._placeholder = "%s" if self._postgresql else "?"
        # Rows written per table since statistics were last refreshed, and the count at
        # which they are refreshed next (tests lower it to reach the refresh quickly).
        self._growth: dict[str, int] = {}
        self.analyze_at: dict[str, int] = {}

    # -- what it is ----------------------------------------------------------------------

    @property
    def database(self) -> Database:
        """The database itself: a Database is the :class:`Runner` of one-call transactions."""
        return self

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (pooled connections; use it from worker threads only)."""
        return self._engine

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return describe_url(self._url)

    @property
    def is_postgresql(self) -> bool:
        """True on PostgreSQL, False on SQLite."""
        return self._postgresql

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, None on PostgreSQL."""
        return self._sqlite_file

    def artifact_file(self, sha256: str) -> Path | None:
        """Where the stored file of ``sha256`` is, or None when the store has no locator."""
        return None if self._locator is None else self._locator.path_for(sha256)

    # -- running work ----------------------------------------------------------------------

    async def run(self, what: str, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        """Run ``fn(connection)`` in a transaction of its own, in a worker thread.

        The transaction commits when ``fn`` returns and rolls back when it raises. With
        ``write`` it takes SQLite's write lock up front (``BEGIN IMMEDIATE``).

        Args:
            what: completes "could not …" in error messages ("save artifacts").
            fn: the blocking work; it must not keep the connection.
            write: whether ``fn`` writes.

        Returns:
            What ``fn`` returned.

        Raises:
            StoreError: the database failed (the driver's error is the ``__cause__``).
            Exception: whatever ``fn`` raised, the transaction rolled back.
        """
        return await anyio.to_thread.run_sync(
            lambda: self._call(what, fn, write=write), limiter=self._limiter
        )

    def _call(self, what: str, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    return fn(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, what=what, url=self._url) from exc

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        """Run a blocking ``fn()`` that opens its own connection, in a worker thread."""
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    async def note_growth(self, table: str, rows: int) -> None:
        """Refresh PostgreSQL's statistics of ``table`` each time its growth doubles.

        Call it after ``rows`` rows were committed to ``table``. PostgreSQL plans from
        statistics that autovacuum refreshes only now and then; a first sync outgrows them
        within seconds, and the planner then scans whole tables for each batch (insert fell
        from 12 000 to 5 000 units/s over 100 000 units). Doubling keeps it to O(log n)
        ANALYZEs, each reading a bounded sample. Nothing happens on SQLite.

        Raises:
            StoreError: the database failed.
        """
        if not self._postgresql or rows <= 0:
            return
        grown = self._growth.get(table, 0) + rows
        self._growth[table] = grown
        if grown < self.analyze_at.get(table, _FIRST_ANALYZE):
            return
        self.analyze_at[table] = 2 * grown
        # Shielded: this runs after the caller's rows are committed and before its objects
        # get their pks; a cancellation here made a completed save raise Cancelled and
        # left its objects unsaved. The cancellation reaches the caller at its next await.
        with anyio.CancelScope(shield=True):
            await self.run(
                f"refresh the statistics of {table}",
                lambda conn: conn.exec_driver_sql(f"ANALYZE {table}"),
                write=False,
            )

    async def aclose(self) -> None:
        """Close every pooled connection. The database cannot be used afterwards."""
        await anyio.to_thread.run_sync(self._engine.dispose)

    # -- SQL shared by the store modules ---------------------------------------------------

    def params(self, count: int) -> str:
        """A parenthesized list of ``count`` placeholders in the driver's style."""
        return "(" + ", ".join([self._placeholder] * count) + ")"

    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT for ``table``, which offers ``on_conflict_do_…``."""
        return _pg.insert(table) if self._postgresql else _sqlite.insert(table)

    def bulk_insert(
        self,
        conn: sa.Connection,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[tuple[Any, ...]],
        *,
        conflict: str | None,
    ) -> None:
        """Insert ``rows`` (tuples in ``columns`` order) in one or a few round trips.

        The store's one bulk-insert path. ``columns`` are (name, PostgreSQL array element
        type) pairs; ``conflict`` names the unique columns whose clash skips a row (``ON
        CONFLICT (…) DO NOTHING``), or None. Driver-level SQL, as SQLAlchemy's per-row
        parameter handling costs more than the insert itself here: SQLite gets an
        executemany of a prepared statement; PostgreSQL one ``INSERT ... SELECT FROM
        unnest(arrays)`` (its executemany made a round trip per row). Both insert in the
        order given, which callers sort by the unique key so that concurrent writers take
        key locks in one order. Pass at most :data:`CHUNK` rows per call.
        """
        if not rows:
            return
        names = ", ".join(name for name, _type in columns)
        tail = f" ON CONFLICT ({conflict}) DO NOTHING" if conflict else ""
        if self._postgresql:
            arrays = ", ".join(f"%s::{pg_type}[]" for _name, pg_type in columns)
            aliases = [f"c{i}" for i in range(len(columns))]
            # ORDER BY the array position: the order rows are inserted in is the order key
            # locks are taken in, which must be the sorted one.
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({names}) SELECT {', '.join(aliases)} "
                f"FROM unnest({arrays}) WITH ORDINALITY AS u({', '.join(aliases)}, n) "
                f"ORDER BY n{tail}",
                tuple(list(values) for values in zip(*rows, strict=True)),
            )
        else:
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({names}) VALUES {self.params(len(columns))}{tail}",
                list(rows),
            )
