"""Building a new repository version: the context that commits it or leaves no trace."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from types import TracebackType
from typing import Any

import anyio
import sqlalchemy as sa

from .._exceptions import RepositoryBusyError, StoreArgumentError, StoreError
from ..models import Content, Repository, RepositoryVersion
from . import _schema as t
from ._codec import repo_key_of
from ._database import Database
from ._lock import RepositoryLock, acquire_repository_lock
from ._ranges import (
    add_rows,
    clear_seen,
    count_changes,
    discard_version,
    mark_seen_rows,
    remove_rows,
    remove_unseen_rows,
    working_view_condition,
)
from ._repositories import iter_repository_content

__all__ = ["NewVersion"]


class NewVersion:
    """The next version of a repository, being built; get one from :meth:`Store.new_version`.

    Use it as an async context manager::

        async with store.new_version(repository) as new_version:
            await new_version.add_content(units)
            await new_version.remove_content(old_units)
        print(new_version.result)   # the committed version, or None if nothing changed

    A mirror sync marks what it brings and removes the rest at the end, without holding
    the repository's keys in memory::

        async with store.new_version(repository) as new_version:
            for batch in batches:
                await new_version.add_content(batch)
                await new_version.mark_seen(batch)
            await new_version.remove_unseen()

    Entering takes the repository's lock (one new version per repository at a time,
    across processes), cleans up what a crashed process left of an earlier attempt, and
    creates version ``latest + 1`` as *incomplete*: readers never see it. Changes are
    written batch by batch, each in its own transaction, and cost O(batch), not
    O(repository size); calls from several tasks at once run one after the other. Leaving
    the block normally commits the version (marks it
    complete with its counts), unless nothing changed, in which case it is deleted and
    :attr:`result` is None. Leaving with an exception or a cancellation deletes it and
    undoes its changes, even while being cancelled.

    Repository keys: when a unit is added while another unit with the same
    ``repo_key_fields`` values is in the version, the other unit is removed; within one
    ``add_content`` call, the later unit of two with the same repo key wins.

    When removing a failed version fails too (the database went away), the caller still
    sees the block's own error, or its cancellation, or the commit's error: the clean-up
    error is attached to it as a note (PEP 678), and the next new version of the
    repository removes what is left.

    Raises:
        StoreError: on entering, when another new version of the repository is being built
            (by this or another process), when the repository does not exist, when a unit
            of work of the store is open in the task, or when the database fails; on
            leaving, when the commit fails (the version is then removed). Entering twice
            is a StoreError too.
    """

    def __init__(self, database: Database, repository: Repository) -> None:
        self._database = database
        self.repository = repository
        self._repository_id = repository.pk if repository.pk is not None else -1
        self._lock: RepositoryLock | None = None
        self._version: RepositoryVersion | None = None
        self._result: RepositoryVersion | None = None
        self._state = "new"
        # Changes run one at a time: each reads what the version holds and then writes, in
        # its own transaction. Two at once on PostgreSQL (READ COMMITTED) both found a unit
        # absent and both inserted it, or both kept a different unit of one repo key.
        self._changing: anyio.Lock | None = None

    @property
    def version(self) -> RepositoryVersion:
        """The version being built (incomplete until the block ends without error).

        Raises:
            StoreError: the context was not entered.
        """
        if self._version is None:
            raise StoreError("the new version exists only inside `async with new_version:`")
        return self._version

    @property
    def result(self) -> RepositoryVersion | None:
        """After the block: the committed version, or None when nothing changed or it failed."""
        return self._result

    def _check_open(self) -> tuple[int, int]:
        if self._state != "open" or self._version is None or self._changing is None:
            raise StoreError(
                f"the new version of {self.repository.name!r} is not open (it is "
                f"{self._state}); change content inside `async with store.new_version(...)`"
            )
        return self._repository_id, self._version.number

    # -- the context ---------------------------------------------------------------------

    async def __aenter__(self) -> NewVersion:
        if self._state != "new":
            raise StoreError("a NewVersion can be entered only once; call new_version() again")
        self._state = "starting"
        database = self._database
        repository_id = self._repository_id
        try:
            lock = await database.run_blocking(
                lambda: acquire_repository_lock(
                    database.engine, database.sqlite_file, repository_id
                )
            )
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            self._state = "failed"
            raise StoreError(
                f"could not lock repository {self.repository.name!r} in {database.url} to build "
                f"a new version: {exc}"
            ) from exc
        if lock is None:
            self._state = "failed"
            raise RepositoryBusyError(
                f"repository {self.repository.name!r} already has a new version being built "
                "by another sync (this or another process); wait for it to finish"
            )
        self._lock = lock
        owner = f"{socket.gethostname()}:{os.getpid()}"
        started = False
        try:
            row = await database.run(
                f"start a new version of repository {self.repository.name!r}",
                lambda conn: self._start(conn, owner),
                write=True,
            )
            started = True
        finally:
            if not started:
                self._state = "failed"
                with anyio.CancelScope(shield=True):
                    await self._release()
        self._version = RepositoryVersion(
            repository=self.repository,
            number=row.number,
            base_version=row.base_version,
            complete=False,
            content_count=0,
            pk=row.id,
        )
        self._base_count = int(row.base_count)
        self._changing = anyio.Lock()
        self._state = "open"
        return self

    def _start(self, conn: sa.Connection, owner: str) -> Any:
        v = t.repository_versions
        repository_id = self._repository_id
        # We hold the repository's lock, so any incomplete version belongs to a sync that
        # died: undo it before numbering the new one.
        abandoned = conn.execute(
            sa.select(v.c.id, v.c.number).where(
                v.c.repository_id == repository_id, v.c.complete.is_(False)
            )
        ).all()
        for version_id, number in abandoned:
            discard_version(conn, repository_id, number, version_id)
        base = conn.execute(
            sa.select(v.c.number, v.c.content_count)
            .where(v.c.repository_id == repository_id, v.c.complete.is_(True))
            .order_by(v.c.number.desc())
            .limit(1)
        ).one_or_none()
        if base is None:
            raise StoreError(
                f"repository {self.repository.name!r} (pk {repository_id}) does not exist in "
                f"{self._database.url}; create it with create_repository() first"
            )
        number = base.number + 1
        pk = conn.execute(
            sa.insert(v)
            .values(
                repository_id=repository_id,
                number=number,
                base_version=base.number,
                complete=False,
                owner=owner,
            )
            .returning(v.c.id)
        ).scalar_one()
        return _Row(id=pk, number=number, base_version=base.number, base_count=base.content_count)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        database = self._database
        version = self.version
        name = self.repository.name
        self._state = "closing"
        # The error the caller sees, if any: the block's own, or the commit's. Clean-up
        # errors are attached to it as notes, never raised in its place.
        failure = exc if exc_type is not None else None
        # Shielded: a cancelled sync must still remove its version (or finish committing
        # it) before the cancellation goes on.
        with anyio.CancelScope(shield=True):
            try:
                if failure is None:
                    try:
                        self._result = await database.run(
                            f"commit version {version.number} of repository {name!r}",
                            self._commit,
                            write=True,
                        )
                    except Exception as commit_error:
                        failure = commit_error
                        raise
            finally:
                if failure is not None:
                    await self._clean_up(failure, self._discard_now)
                self._state = "closed"
                await self._clean_up(failure, self._release)

    @staticmethod
    async def _clean_up(failure: BaseException | None, step: Callable[[], Awaitable[None]]) -> None:
        """Run a clean-up ``step``; if it fails while ``failure`` propagates, note it there."""
        if failure is None:
            await step()
            return
        try:
            await step()
        except Exception as cleanup_error:
            failure.add_note(f"cleaning up after this error failed too: {cleanup_error}")

    async def _discard_now(self) -> None:
        version = self.version
        await self._database.run(
            f"remove the failed version {version.number} of repository {self.repository.name!r}"
            " (the next new version of it will retry)",
            lambda conn: discard_version(
                conn, self._repository_id, version.number, self.version.pk or 0
            ),
            write=True,
        )

    async def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            await anyio.to_thread.run_sync(lock.release)

    def _commit(self, conn: sa.Connection) -> RepositoryVersion | None:
        v = t.repository_versions
        version = self.version
        clear_seen(conn, version.pk or 0)
        added, removed = count_changes(conn, self._repository_id, version.number)
        if not added and not removed:
            conn.execute(sa.delete(v).where(v.c.id == version.pk))
            return None
        count = self._base_count + added - removed
        conn.execute(
            sa.update(v)
            .where(v.c.id == version.pk)
            .values(
                complete=True,
                content_count=count,
                added_count=added,
                removed_count=removed,
                owner="",
            )
        )
        version.complete = True
        version.content_count = count
        version.added_count = added
        version.removed_count = removed
        return version

    # -- changes -------------------------------------------------------------------------

    async def add_content(self, units: Sequence[Content]) -> int:
        """Add saved units to the version (already present ones are left as they are).

        A unit with the same repository key as one in the version replaces it; of two
        units with the same repository key in ``units``, the later one wins.

        Args:
            units: saved units of declared content types.

        Returns:
            How many units were added: those not in the version before the call.

        Raises:
            StoreArgumentError: a unit is not saved.
            ContentTypeError: a unit's class is not a declared content type.
            StoreError: the version is not open, or the database failed.
        """
        repository_id, number = self._check_open()
        pks: list[int] = []
        for unit in units:
            if unit.pk is None:
                raise StoreArgumentError(f"content must be saved before it is added: {unit!r}")
            pks.append(unit.pk)
        if not pks:
            return 0

        def choose() -> dict[int, str | None]:
            # The repository keys, computed only when some unit is not in the version
            # (a re-sync's batches usually are all there): of two units with one key,
            # the later wins, whether it is new or present.
            chosen: dict[int, str | None] = {}
            holder: dict[str, int] = {}
            for unit in units:
                pk = unit.pk
                assert pk is not None
                key = repo_key_of(unit)
                if key is not None:
                    previous = holder.get(key)
                    if previous is not None and previous != pk:
                        del chosen[previous]
                    holder[key] = pk
                chosen[pk] = key
            return chosen

        assert self._changing is not None
        async with self._changing:
            added, inserted = await self._database.run(
                f"add content to version {number} of repository {self.repository.name!r}",
                lambda conn: add_rows(conn, self._database, repository_id, number, pks, choose),
                write=True,
            )
        await self._database.note_growth("repository_content", inserted)
        return added

    async def remove_content(self, units: Sequence[Content] | Sequence[int]) -> None:
        """Remove units (or content primary keys) from the version.

        All or nothing: when some of them are not in the version (never added, or removed
        already), nothing is removed and the error names their primary keys.

        Args:
            units: saved units, or their primary keys.

        Raises:
            StoreArgumentError: a unit is not saved, or some are not in the version.
            StoreError: the version is not open, or the database failed.
        """
        self._check_open()
        pks = sorted({_pk_of(unit, "removed") for unit in units})
        if pks:
            assert self._changing is not None
            async with self._changing:
                await self._remove_now(pks)

    async def _remove_now(self, pks: list[int]) -> None:
        """Remove ``pks`` from the version; the caller holds ``self._changing``."""
        repository_id, number = self._check_open()
        missing = await self._database.run(
            f"remove content from version {number} of repository {self.repository.name!r}",
            lambda conn: remove_rows(conn, self._database, repository_id, number, pks),
            write=True,
        )
        if missing:
            shown = f"{missing[:20]}" + (
                f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            )
            raise StoreArgumentError(
                f"cannot remove content {shown} from the new version of repository "
                f"{self.repository.name!r}: not in version {number} (never added to it, or "
                "removed already); nothing was removed; remove only units the version "
                "holds (new_version.iter_content() streams them)"
            )

    async def mark_seen(self, units: Iterable[Content] | Iterable[int]) -> None:
        """Record units (or content primary keys) as brought by this sync, in the database.

        A mirror sync marks every unit its stream brings, batch by batch, and at the end
        calls :meth:`remove_unseen`. The record lives in the database (the
        ``new_version_seen`` table), so memory holds one batch, whatever the size of the
        repository. It only grows: marking a unit twice is harmless, and there is no
        unmarking. It is deleted when the version is committed or discarded. Marking
        changes nothing in the version: a unit marked but never added is not added, and
        a primary key of no saved unit is recorded and never matches.

        Args:
            units: saved units, or their primary keys.

        Raises:
            StoreArgumentError: a unit is not saved.
            StoreError: the version is not open, or the database failed.
        """
        _repository_id, number = self._check_open()
        pks = sorted({_pk_of(unit, "marked seen") for unit in units})
        if not pks:
            return
        version_id = self.version.pk or 0
        assert self._changing is not None
        async with self._changing:
            await self._database.run(
                f"record content seen by version {number} of repository {self.repository.name!r}",
                lambda conn: mark_seen_rows(conn, self._database, version_id, pks),
                write=True,
            )

    async def remove_unseen(self) -> int:
        """Remove every unit of the version that was not marked seen (a mirror sync's end).

        One pass of the database over the version's rows and the record of
        :meth:`mark_seen`, in one transaction: nothing of the repository is read into
        memory. Units marked seen stay; units added after the call stay too. The record
        stays until the version is committed, so calling it again removes only what is
        unseen by then (units marked in between are kept).

        Returns:
            How many units were removed.

        Raises:
            StoreError: the version is not open, or the database failed.
        """
        repository_id, number = self._check_open()
        version_id = self.version.pk or 0
        assert self._changing is not None
        async with self._changing:
            return await self._database.run(
                f"remove the content version {number} of repository "
                f"{self.repository.name!r} did not see",
                lambda conn: remove_unseen_rows(conn, repository_id, number, version_id),
                write=True,
            )

    async def remove_content_except(self, keep: Collection[int], *, chunk_size: int = 5000) -> int:
        """Remove every unit whose primary key is not in ``keep`` nor marked seen already.

        For keys a caller holds in memory anyway (a small repository, or a port of code
        that collected them): it marks ``keep`` seen, ``chunk_size`` keys per call, then
        calls :meth:`remove_unseen`. A sync should mark each batch as it passes instead
        (:meth:`mark_seen`), so that it never holds the repository's keys.

        Args:
            keep: primary keys of the units to keep.
            chunk_size: primary keys marked per database call (>= 1).

        Returns:
            How many units were removed.

        Raises:
            StoreArgumentError: ``chunk_size`` < 1.
            StoreError: the version is not open, or the database failed.
        """
        self._check_open()
        if chunk_size < 1:
            raise StoreArgumentError(f"chunk_size must be >= 1, got {chunk_size!r}")
        ordered = sorted(set(keep))
        for start in range(0, len(ordered), chunk_size):
            await self.mark_seen(ordered[start : start + chunk_size])
        return await self.remove_unseen()

    async def iter_content(self, *, chunk_size: int = 1000) -> AsyncIterator[list[Content]]:
        """Stream the content of the version as built so far, in chunks by primary key.

        Args:
            chunk_size: units per chunk (>= 1).

        Yields:
            Non-empty lists of saved units.

        Raises:
            StoreArgumentError: ``chunk_size`` < 1.
            ContentTypeError: saved content's type is declared by no imported module.
            StoreError: the version is not open, or the database failed.
        """
        repository_id, _number = self._check_open()
        condition = working_view_condition()
        async for chunk in iter_repository_content(
            self._database, repository_id, condition, chunk_size
        ):
            yield chunk


def _pk_of(unit: Content | int, done: str) -> int:
    if isinstance(unit, int):
        return unit
    if unit.pk is None:
        raise StoreArgumentError(f"content must be saved to be {done}: {unit!r}")
    return unit.pk


class _Row:
    def __init__(self, *, id: int, number: int, base_version: int, base_count: int) -> None:
        self.id = id
        self.number = number
        self.base_version = base_version
        self.base_count = base_count
