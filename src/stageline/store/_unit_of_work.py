"""Several store calls in one database transaction."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import anyio
import sqlalchemy as sa

from .._exceptions import StoreError
from ..models import Remote
from ._artifacts import ArtifactCalls
from ._content import ContentCalls
from ._database import Database, Transaction
from ._remotes import RemoteCalls

__all__ = ["UnitOfWork"]

T = TypeVar("T")


class UnitOfWork(ArtifactCalls, ContentCalls, RemoteCalls):
    """Several store calls in one database transaction; get one from :meth:`Store.unit_of_work`.

    Use it as an async context manager::

        async with store.unit_of_work() as uow:
            units = await uow.save_content(units, content_artifacts)
            await uow.save_remote_artifacts(remote_artifacts)
            await uow.run_sync(save_my_plugin_rows)  # fn(connection), same transaction

    The block is one transaction: it commits when the block ends normally and rolls back
    when the block raises or is cancelled (the rollback is shielded from the
    cancellation). A cancellation still pending when the block ends normally cancels the
    commit too: nothing is committed unless the block finished and was not cancelled.

    ``uow`` offers the batch calls of :class:`Store` for artifacts, content, content
    artifacts, remotes and remote artifacts (same arguments, results and errors) plus
    :meth:`run_sync` for a plugin's own tables. Calls run one after the other on the unit
    of work's one connection, even when several tasks make them at once. Objects saved
    inside get their pks at once; after a rollback those pks name no rows, so drop the
    objects (or save them again).

    While the block runs, the store's own writes (``store.save_content``, a new version's
    changes, another unit of work) from the same task, or tasks it starts, are refused
    with StoreError: they would wait for the locks the unit of work holds until its block
    ends. The transaction begins with the block's first call, in its worker thread: on
    SQLite the unit of work then takes the database's write lock (``BEGIN IMMEDIATE``)
    and holds it to the end, so other writers wait for it: keep the block short. A block
    that makes no call opens no transaction. Each open unit of work holds one pooled
    connection from its first call and may use one worker thread beside the store's
    ``max_threads``.

    When a call inside fails, the transaction can only be rolled back: later calls, and
    leaving the block normally, raise StoreError and commit nothing.

    Raises:
        StoreError: on entering, when the database fails or a unit of work of this store
            is already open in the task; on leaving, when an earlier call failed or the
            commit fails (nothing is committed). Entering twice is a StoreError too.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._runner = self
        self._remotes: dict[int, Remote] = {}
        self._transaction: Transaction | None = None
        self._state = "new"
        # Rows written per table, for PostgreSQL's statistics once they are committed.
        self._growth: dict[str, int] = {}

    @property
    def database(self) -> Database:
        """The database the unit of work runs on."""
        return self._database

    async def __aenter__(self) -> UnitOfWork:
        if self._state != "new":
            raise StoreError(
                "a unit of work can be entered only once; call store.unit_of_work() again"
            )
        self._state = "failed"
        self._transaction = await self._database.begin("begin a unit of work")
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        transaction = self._transaction
        assert transaction is not None
        self._state = "closed"
        if exc_type is not None:
            await transaction.rollback()
            return
        try:
            await transaction.commit("commit a unit of work")
        finally:
            # Ends the transaction when the commit refused to begin; else it does nothing.
            await transaction.rollback()
        with anyio.CancelScope(shield=True):
            for table, rows in sorted(self._growth.items()):
                await self._database.note_growth(table, rows)

    async def run(self, what: str, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        """Run ``fn(connection)`` in the unit of work's transaction (the :class:`Runner` call).

        Raises:
            StoreError: the unit of work is not open, an earlier call failed, or the
                database failed.
            Exception: whatever ``fn`` raised.
        """
        if self._state != "open" or self._transaction is None:
            raise StoreError(
                f"could not {what}: the unit of work is not open (it is {self._state}); "
                "make the call inside `async with store.unit_of_work() as uow:`"
            )
        return await self._transaction.run(what, fn)

    async def note_growth(self, table: str, rows: int) -> None:
        """Count rows written to ``table``; the statistics are refreshed after the commit."""
        self._growth[table] = self._growth.get(table, 0) + rows

    async def run_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn(connection)`` in this unit of work's transaction, in a worker thread.

        For a plugin's own tables: ``fn`` gets the SQLAlchemy ``Connection`` of the
        transaction and may execute any statement on it. It must not commit, roll back or
        close it, nor keep it after it returns. Calls run one at a time.

        Args:
            fn: a blocking function of the connection.

        Returns:
            What ``fn`` returned.

        Raises:
            StoreError: the unit of work is not open, an earlier call failed, or ``fn``'s
                statements failed (the SQLAlchemy error is the ``__cause__``); the unit of
                work can then only roll back.
            Exception: whatever else ``fn`` raised; the unit of work can then only roll back.
        """
        name = getattr(fn, "__qualname__", None) or repr(fn)
        return await self.run(f"run {name} in a unit of work", fn, write=True)
