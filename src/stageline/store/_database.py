"""The one place the store touches the database: transactions in worker threads, bulk inserts.

Every other store module (artifacts, content, remotes, repositories, :class:`NewVersion`)
works through the small public interface of :class:`Database` and the :class:`Runner`
protocol, never through an engine or a connection of its own.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar, Token
from itertools import chain
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as _pg
from sqlalchemy.dialects import sqlite as _sqlite

from .._exceptions import StoreArgumentError, StoreError
from ._engine import (
    SQLITE_BUSY_TIMEOUT,
    WRITE_OPTION,
    describe_url,
    sqlite_path,
    translate_error,
)
from ._locator import ArtifactLocator
from ._values import check_int

__all__ = [
    "CHUNK",
    "Database",
    "Runner",
    "Transaction",
    "check_cancelled_before_commit",
    "chunks",
    "require_pk",
]

T = TypeVar("T")

#: Rows per IN (...) list or multi-row statement: well under SQLite's 32766 variables and
#: small enough that PostgreSQL plans each list as an index lookup.
CHUNK = 500

#: Rows a table must gain before its PostgreSQL statistics are first refreshed.
_FIRST_ANALYZE = 2000

# The databases on which a transaction (a unit of work) is open in the current task and
# the tasks it started. A write there in a transaction of its own would wait for the
# locks the open one holds until its block ends, which it never would: SQLite's write lock
# always, PostgreSQL's row locks when the rows meet.
_open_transactions: ContextVar[tuple[Database, ...]] = ContextVar(
    "stageline_open_transactions", default=()
)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def require_pk(obj: Any, what: str) -> int:
    """The primary key of a saved object.

    Raises:
        StoreArgumentError: ``obj`` has no ``pk`` yet (the message names ``what`` and the
            object), or the pk is beyond the range of primary keys (it was not given by a
            store).
    """
    pk = getattr(obj, "pk", None)
    if pk is None:
        raise StoreArgumentError(f"{what} must be saved first (it has no pk): {obj!r}")
    pk = int(pk)
    check_int(pk, f"the pk of {what}")
    return pk


def check_cancelled_before_commit() -> None:
    """In a worker thread, raise the caller's cancellation if it arrived meanwhile.

    Call it just before committing. The caller waits for a worker thread shielded from
    cancellation (anyio runs the thread to its end), so without this check a store call
    cancelled in the middle of its transaction still committed: its rows were written
    although the caller saw only the cancellation, and its objects got no pks. Raised
    inside the ``with conn.begin():`` block, the cancellation rolls the transaction back
    and reaches the caller as its own cancellation. One that arrives after this check
    lets the commit finish; the caller then sees it at its next checkpoint.
    """
    anyio.from_thread.check_cancelled()


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


#: The interpreter's default thread switch interval (``sys.getswitchinterval()``), seconds.
DEFAULT_SWITCH_INTERVAL = 0.005

#: The switch interval while one of this process's SQLite writers holds the write lock.
WRITER_SWITCH_INTERVAL = 0.0002


class _QuickSwitching:
    """Lowers the interpreter's switch interval while a SQLite writer holds the write lock.

    The driver lets go of the GIL around each SQLite call of a statement (prepare, step,
    reset, commit) and must take it back after: from an event-loop thread busy with
    Python, that happens only when the switch interval forces it, up to 5 ms later. A
    writer waits that long several times per transaction, while it holds SQLite's one
    write lock and every other writer of the process waits behind it: in a first sync
    of 100 000 units on_demand the lock was held ~90 % of the time, about two thirds of
    it by writers waiting for the GIL. At 0.2 ms the same sync ran 1.05-1.5x as fast
    (docs/benchmarks.md, session 12).

    Process-wide: the interval is lowered when the first writer (of any store) takes the
    lock and put back to the default when the last one lets go, unless it was changed
    meanwhile. An interval the application set itself (anything but the default) is
    left alone.
    """

    __slots__ = ("_holders", "_lock", "_lowered")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._lowered = False

    def enter(self) -> None:
        with self._lock:
            self._holders += 1
            if self._holders == 1 and _switch_interval_is(DEFAULT_SWITCH_INTERVAL):
                sys.setswitchinterval(WRITER_SWITCH_INTERVAL)
                self._lowered = True

    def leave(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._lowered:
                self._lowered = False
                if _switch_interval_is(WRITER_SWITCH_INTERVAL):
                    sys.setswitchinterval(DEFAULT_SWITCH_INTERVAL)


def _switch_interval_is(seconds: float) -> bool:
    """Whether the interpreter's switch interval is ``seconds``; it keeps whole
    microseconds, so 0.0002 reads back as 0.00019999999999999998."""
    return round(sys.getswitchinterval() * 1_000_000) == round(seconds * 1_000_000)


_quick_switching = _QuickSwitching()


class _WriterGate:
    """SQLite's write lock, taken in turn by this process's writers before they ask SQLite.

    SQLite lets one connection write at a time; a writer that finds the lock taken sleeps
    in its busy handler for 1, 2, 5, 10, 15, 20, 25 … ms between tries, so a stage whose
    transaction queued behind another's slept up to ~25 ms past the moment the lock was
    free, while the sync's other writers (saving content, remote artifacts, adding to the
    version) took turns. The writers of one process wait here instead, on a lock that
    wakes the next one as soon as the last one commits. Other processes are still kept
    out by SQLite's own lock (and its busy handler).

    Waiting is done in the worker thread, in steps, so that a cancelled caller stops
    waiting within one step; after the busy timeout it fails as SQLite would. While a
    writer holds the lock, threads switch more often (see :class:`_QuickSwitching`).
    """

    __slots__ = ("_lock",)

    #: Seconds between checks for a cancellation of the waiting caller.
    STEP = 0.05

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, what: str, url: str) -> None:
        """Take the lock (in a worker thread started by anyio).

        Raises:
            StoreError: it stayed taken for the busy timeout.
            Cancelled: the caller was cancelled while it waited.
        """
        lock = self._lock
        if not lock.acquire(blocking=False):
            deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
            while not lock.acquire(timeout=self.STEP):
                anyio.from_thread.check_cancelled()
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"could not {what} in {url}: database is locked; another writer of "
                        f"this process kept the SQLite database locked for longer than the "
                        f"busy timeout ({SQLITE_BUSY_TIMEOUT:g} s)"
                    )
        _quick_switching.enter()

    def release(self) -> None:
        """Let the next writer in (from any thread)."""
        _quick_switching.leave()
        self._lock.release()


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
        # SQLite: this process's writers take its write lock in turn (see _WriterGate).
        self._writer_gate = None if self._postgresql else _WriterGate()
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

        The transaction commits when ``fn`` returns and rolls back when it raises, or when
        the caller was cancelled while it ran (the cancellation then goes on). With
        ``write`` it takes SQLite's write lock up front (``BEGIN IMMEDIATE``).

        Args:
            what: completes "could not …" in error messages ("save artifacts").
            fn: the blocking work; it must not keep the connection.
            write: whether ``fn`` writes.

        Returns:
            What ``fn`` returned.

        Raises:
            StoreError: the database failed (the driver's error is the ``__cause__``), or
                ``write`` and a unit of work on this database is open in this task.
            Exception: whatever ``fn`` raised, the transaction rolled back.
        """
        if write:
            self._refuse_inside_transaction(what)
        return await anyio.to_thread.run_sync(
            lambda: self._call(what, fn, write=write), limiter=self._limiter
        )

    def _refuse_inside_transaction(self, what: str) -> None:
        if self in _open_transactions.get():
            raise StoreError(
                f"could not {what} in {self.url}: a unit of work on this database is open "
                "in this task, and a transaction of its own would wait for the locks the "
                "unit of work holds until its block ends; inside `async with "
                "store.unit_of_work() as uow:` use the unit of work's calls "
                "(uow.save_content, uow.run_sync, ...), or finish the unit of work first"
            )

    async def begin(self, what: str) -> Transaction:
        """Open a write transaction on a pooled connection of its own; see :class:`Transaction`.

        The transaction begins in the worker thread of its first call, before that call:
        on SQLite it then takes the write lock (``BEGIN IMMEDIATE``), waiting for another
        writer up to the busy timeout. Until the transaction ends, writes through
        :meth:`run` in the current task (and tasks it starts) are refused.

        Args:
            what: what the transaction is for, for error messages.

        Raises:
            StoreError: a transaction is already open on this database in the current task.
        """
        self._refuse_inside_transaction(what)
        await anyio.lowlevel.checkpoint()
        token = _open_transactions.set((*_open_transactions.get(), self))
        return Transaction(self, what, anyio.CapacityLimiter(1), token)

    def _begin(self, what: str) -> tuple[sa.Connection, _WriterGate | None]:
        gate = self._writer_gate
        if gate is not None:
            gate.acquire(what, self.url)
        opened = False
        try:
            try:
                conn = self._engine.connect()
            except sa.exc.SQLAlchemyError as exc:
                raise translate_error(exc, what=what, url=self._url) from exc
            try:
                conn.execution_options(**{WRITE_OPTION: True})
                conn.begin()
                # A caller cancelled meanwhile would never end the transaction: end it here.
                anyio.from_thread.check_cancelled()
                opened = True
            except sa.exc.SQLAlchemyError as exc:
                raise translate_error(exc, what=what, url=self._url) from exc
            finally:
                if not opened:
                    close_connection(conn)
        finally:
            if not opened and gate is not None:
                gate.release()
        return conn, gate

    def _call(self, what: str, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        gate = self._writer_gate if write else None
        if gate is not None:
            gate.acquire(what, self.url)
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    result = fn(conn)
                    check_cancelled_before_commit()
                    return result
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, what=what, url=self._url) from exc
        finally:
            if gate is not None:
                gate.release()

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

    def describe_error(self, exc: sa.exc.SQLAlchemyError, what: str) -> StoreError:
        """The StoreError for a driver error while doing ``what`` (raise it ``from exc``)."""
        return translate_error(exc, what=what, url=self._url)

    # -- SQL shared by the store modules ---------------------------------------------------

    @property
    def placeholder(self) -> str:
        """The driver's placeholder for one parameter (``?`` or ``%s``)."""
        return self._placeholder

    def params(self, count: int) -> str:
        """A parenthesized list of ``count`` placeholders in the driver's style."""
        return "(" + ", ".join([self._placeholder] * count) + ")"

    def select_rows(
        self, conn: sa.Connection, columns: str, rest: str, parameters: tuple[Any, ...]
    ) -> list[Any]:
        """The rows of ``SELECT {columns} {rest}``, as a list of sequences, in no set order.

        SQLite does not define the order in which an aggregate sees its rows, even from
        an ordered subquery: use this only where the rows' order does not matter.

        On SQLite the rows come back as one JSON array built by the database
        (``json_group_array``), read in one step: the driver releases the GIL around
        every step, so fetching 500 rows one by one hands the GIL to a busy event-loop
        thread up to 500 times, and each time waits for it to come back (up to the
        interpreter's switch interval, 5 ms). ``columns`` are comma-separated column
        names (``ca.id, ra.url``: no commas inside one) of integers, text or NULL; ``rest``
        (FROM ... WHERE ...) is used in a subquery there.
        """
        if self._postgresql:
            return list(conn.exec_driver_sql(f"SELECT {columns} {rest}", parameters).fetchall())
        names = [name.strip() for name in columns.split(",")]
        aliases = ", ".join(f"c{i}" for i in range(len(names)))
        renamed = ", ".join(f"{name} AS c{i}" for i, name in enumerate(names))
        text = conn.exec_driver_sql(
            f"SELECT json_group_array(json_array({aliases})) FROM (SELECT {renamed} {rest})",
            parameters,
        ).scalar_one()
        rows: list[Any] = json.loads(text)
        return rows

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
        on_conflict: str = "DO NOTHING",
    ) -> int:
        """Insert ``rows`` (tuples in ``columns`` order) in one or a few round trips.

        The store's one bulk-insert path. ``columns`` are (name, PostgreSQL array element
        type) pairs; ``conflict`` names the unique columns whose clash skips a row (``ON
        CONFLICT (…) DO NOTHING``), or None; ``on_conflict`` replaces ``DO NOTHING`` (a
        ``DO UPDATE SET col = excluded.col … WHERE …`` that both dialects read alike).
        Driver-level SQL, as SQLAlchemy's per-row parameter handling costs more than the
        insert itself here: SQLite gets the rows as one multi-row ``INSERT ... VALUES``
        with bound parameters (one step: see the comment there); PostgreSQL one ``INSERT ...
        SELECT FROM unnest(arrays)`` (its executemany made a round trip per row).
        Values must be integers, text or None, as the columns' types say. Both insert in
        the order given, which callers sort by the unique key so that concurrent writers
        take key locks in one order. Pass at most :data:`CHUNK` rows per call.

        Returns the database's count of rows changed: those inserted, and those an
        ``on_conflict`` update changed.
        """
        if not rows:
            return 0
        names = ", ".join(name for name, _type in columns)
        tail = f" ON CONFLICT ({conflict}) {on_conflict}" if conflict else ""
        if self._postgresql:
            arrays = ", ".join(f"%s::{pg_type}[]" for _name, pg_type in columns)
            aliases = [f"c{i}" for i in range(len(columns))]
            # ORDER BY the array position: the order rows are inserted in is the order key
            # locks are taken in, which must be the sorted one.
            result = conn.exec_driver_sql(
                f"INSERT INTO {table} ({names}) SELECT {', '.join(aliases)} "
                f"FROM unnest({arrays}) WITH ORDINALITY AS u({', '.join(aliases)}, n) "
                f"ORDER BY n{tail}",
                tuple(list(values) for values in zip(*rows, strict=True)),
            )
            return int(result.rowcount)
        return self._sqlite_insert(conn, table, names, len(columns), rows, tail)[0]

    def insert_new(
        self,
        conn: sa.Connection,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[tuple[Any, ...]],
        *,
        conflict: str,
    ) -> tuple[int, list[int] | None]:
        """:meth:`bulk_insert` (``DO NOTHING`` on a conflict) into a table whose ``id`` is
        SQLite's rowid; also the ids of the rows, in order, when SQLite inserted them all.

        SQLite gives a row inserted without an id the largest id in the table plus one,
        and inserts a multi-row statement's rows in order, all under this transaction's
        write lock: rows inserted together, none skipped, get consecutive ids up to the
        last one inserted. Reading them back would be a statement more under the lock.
        (Only a table already holding the largest possible id, 2**63 - 1, gets random
        ids, and the store never inserts ids of its own.)

        Returns:
            How many rows were inserted, and their ids in the order of ``rows``; the ids
            are None on PostgreSQL, or when a conflict skipped some row (read the ids by
            the rows' unique keys then).
        """
        if not rows:
            return 0, []
        if self._postgresql:
            return self.bulk_insert(conn, table, columns, rows, conflict=conflict), None
        names = ", ".join(name for name, _type in columns)
        inserted, last = self._sqlite_insert(
            conn, table, names, len(columns), rows, f" ON CONFLICT ({conflict}) DO NOTHING"
        )
        if inserted != len(rows) or last is None:
            return inserted, None
        return inserted, list(range(last - inserted + 1, last + 1))

    def _sqlite_insert(
        self,
        conn: sa.Connection,
        table: str,
        names: str,
        width: int,
        rows: Sequence[tuple[Any, ...]],
        tail: str,
    ) -> tuple[int, int | None]:
        """Insert ``rows`` on SQLite: how many rows changed, and the last id inserted.

        One multi-row VALUES statement (or a few, when the rows' parameters exceed
        SQLite's limit), each run in one step: an executemany releases the GIL around
        every row it steps, and beside a busy event loop thread each release costs a
        hand-over and a wait to get it back (see select_rows). Bound parameters rather
        than one JSON array unpacked by json_each: json_extract parses a row's text once
        per column, which made wide rows cost half as much again.
        """
        per_statement = self.rows_per_statement(conn, width)
        changed = 0
        last: int | None = None
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            result = conn.exec_driver_sql(
                _values_sql(table, names, width, len(part), tail),
                tuple(chain.from_iterable(part)),
            )
            changed += result.rowcount
            last = result.lastrowid
        return changed, last

    @staticmethod
    def rows_per_statement(conn: sa.Connection, width: int) -> int:
        """How many rows of ``width`` values one statement on ``conn`` (SQLite) can bind.

        The connection's own limit on bound parameters: 32766 since SQLite 3.32, 999
        before, or what the application set with ``setlimit``.
        """
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return max(1, min(CHUNK, driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))


@functools.lru_cache(maxsize=64)
def _values_sql(table: str, names: str, width: int, count: int, tail: str) -> str:
    """The text of a multi-row INSERT of ``count`` rows: the same text for the same shape,
    which the driver's statement cache then finds without compiling it again (a few
    distinct batch sizes recur)."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * count)}{tail}"


def close_connection(conn: sa.Connection) -> None:
    """Close ``conn``, rolling back what it has open; discard it when that fails.

    A connection whose rollback failed must not go back to the pool with its transaction
    (and PostgreSQL locks); discarding it ends the session, and the server rolls back.
    """
    try:
        conn.close()
    except sa.exc.SQLAlchemyError:
        conn.invalidate()
        conn.close()


class Transaction:
    """A write transaction held open across calls: the engine of a unit of work.

    Get one from :meth:`Database.begin`. It holds one pooled connection until
    :meth:`commit` or :meth:`rollback`. Calls run one at a time, each in a worker thread
    of the transaction's own (a limiter of one thread): never the database's shared
    limiter, whose threads may all be waiting for the locks this transaction holds.

    A call that fails leaves the transaction good only for a rollback (PostgreSQL refuses
    every later statement of a transaction one statement failed in; SQLite would commit
    the failed call's first half): later calls and :meth:`commit` raise StoreError.

    The connection is taken and the transaction begun by the first call, in its worker
    thread, just before it runs: on SQLite the write lock is then held only from the
    moment there is work for it, not while the event loop gets round to the first call
    (the sync's other writers wait for that lock). A transaction without calls commits
    and rolls back nothing.
    """

    def __init__(
        self,
        database: Database,
        what: str,
        limiter: anyio.CapacityLimiter,
        token: Token[tuple[Database, ...]],
    ) -> None:
        self._database = database
        # What the transaction is for, for the errors of beginning it.
        self._what = what
        # The writer gate this transaction holds (SQLite), let go when its connection is.
        self._gate: _WriterGate | None = None
        # None before the first call (not begun yet) and after the end.
        self._connection: sa.Connection | None = None
        self._ended = False
        self._limiter = limiter
        self._token = token
        self._one_at_a_time = anyio.Lock()
        # "could not ..." of the call that failed, once one did.
        self._failed: str | None = None

    async def run(self, what: str, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn(connection)`` in this transaction, in a worker thread.

        Raises:
            StoreError: the transaction has ended, an earlier call failed, or the database
                failed (the transaction is then good only for a rollback).
            Exception: whatever ``fn`` raised (the same).
        """
        async with self._one_at_a_time:
            self._usable(what)
            failed = True
            try:
                result = await anyio.to_thread.run_sync(
                    lambda: self._call(what, fn), limiter=self._limiter
                )
                failed = False
            finally:
                if failed:
                    self._failed = self._failed or what
            return result

    def _usable(self, what: str) -> None:
        if self._ended:
            raise StoreError(
                f"could not {what}: the unit of work has ended; make the call inside "
                "`async with store.unit_of_work() as uow:`"
            )
        if self._failed is not None:
            raise StoreError(
                f"could not {what}: an earlier call in this unit of work failed (could not "
                f"{self._failed}), so its transaction can only be rolled back; let that "
                "error leave the `async with` block and start a new unit of work"
            )

    def _call(self, what: str, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in the worker thread, beginning the transaction first if need be."""
        conn = self._connection
        if conn is None:  # the first call (the end, which also clears it, refuses calls)
            conn, self._gate = self._database._begin(self._what)
            self._connection = conn
        try:
            return fn(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise self._database.describe_error(exc, what) from exc

    async def commit(self, what: str) -> None:
        """Commit, unless the caller was cancelled meanwhile; the transaction ends either way.

        Raises:
            StoreError: an earlier call failed, or the commit failed (nothing is committed).
            Cancelled: the caller was cancelled before the commit began (nothing is).
        """
        async with self._one_at_a_time:
            self._usable(what)
            conn = self._connection
            self._end()
            if conn is None:
                return  # no call began it: nothing to commit
            closed = False

            def commit_and_close() -> None:
                nonlocal closed
                try:
                    check_cancelled_before_commit()
                    conn.commit()
                except sa.exc.SQLAlchemyError as exc:
                    raise self._database.describe_error(exc, what) from exc
                finally:
                    self._close(conn)
                    closed = True

            try:
                await anyio.to_thread.run_sync(commit_and_close, limiter=self._limiter)
            finally:
                if not closed:
                    # Cancelled before the thread started: roll back here.
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(
                            lambda: self._close(conn), limiter=self._limiter
                        )

    async def rollback(self) -> None:
        """Roll back and give the connection back (shielded from cancellation).

        Never fails: a connection whose rollback fails is discarded, which ends its
        session and so the transaction.
        """
        with anyio.CancelScope(shield=True):
            async with self._one_at_a_time:
                if self._ended:
                    return
                conn = self._connection
                self._end()
                if conn is not None:
                    await anyio.to_thread.run_sync(lambda: self._close(conn), limiter=self._limiter)

    def _close(self, conn: sa.Connection) -> None:
        """Give the connection back (rolling back what is not committed), then the gate."""
        try:
            close_connection(conn)
        finally:
            gate, self._gate = self._gate, None
            if gate is not None:
                gate.release()

    def _end(self) -> None:
        self._connection = None
        self._ended = True
        try:
            _open_transactions.reset(self._token)
        except ValueError:
            # Ended from another context than the one that began it (an async generator
            # finalized elsewhere): drop this database from that context's list instead.
            current = _open_transactions.get()
            _open_transactions.set(tuple(db for db in current if db is not self._database))
