"""Store calls on repositories and their complete versions, and reading a version's content."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import sqlalchemy as sa

from .._exceptions import StoreError
from ..models import Content, Repository, RepositoryVersion
from . import _schema as t
from ._codec import decode_content
from ._database import Runner, require_pk
from ._values import INTEGER_MAX, NAME_MAX_CHARS, check_int, check_text

__all__ = [
    "Change",
    "RepositoryCalls",
    "iter_repository_content",
    "version_condition",
    "working_view_condition",
]

#: Which rows of a version :meth:`Store.iter_content` streams.
Change = Literal["present", "added", "removed"]


def _version_from_row(repository: Repository, row: Any) -> RepositoryVersion:
    return RepositoryVersion(
        repository=repository,
        number=row.number,
        base_version=row.base_version,
        complete=bool(row.complete),
        content_count=row.content_count,
        added_count=row.added_count,
        removed_count=row.removed_count,
        pk=row.id,
    )


def version_condition(number: int, change: Change) -> sa.ColumnElement[bool]:
    """The ``repository_content`` rows of version ``number`` (or of its changes).

    Raises:
        ValueError: ``change`` is not one of the three kinds.
    """
    rc = t.repository_content
    if change == "present":
        # Not indexable on purpose (see working_view_condition): the keyset pages must walk
        # the (repository_id, content_id) index, not the version_added or version_removed
        # ones, which would scan and sort the whole repository for every page.
        return sa.and_(
            rc.c.version_added + 0 <= number,
            sa.func.coalesce(rc.c.version_removed, number + 1) > number,
        )
    if change == "added":
        return rc.c.version_added == number
    if change == "removed":
        return rc.c.version_removed == number
    raise ValueError(f"change must be 'present', 'added' or 'removed', got {change!r}")


def working_view_condition() -> sa.ColumnElement[bool]:
    """Rows present in the version being built (``version_removed IS NULL``).

    Written so that no index can serve it: keyset pages must walk the (repository_id,
    content_id) index in order, and a bare ``version_removed IS NULL`` offers a planner
    without up-to-date statistics the version_removed index instead, which would mean
    reading and sorting the whole version for every page.
    """
    rc = t.repository_content
    return sa.func.coalesce(rc.c.version_removed, -1) == -1


async def iter_repository_content(
    runner: Runner, repository_id: int, condition: sa.ColumnElement[bool], chunk_size: int
) -> AsyncIterator[list[Content]]:
    """Stream a repository's content rows matching ``condition``, by content primary key.

    Keyset pagination: one indexed query per chunk, no cursor held between chunks.

    Raises:
        ValueError: ``chunk_size`` < 1.
        ContentTypeError: saved content's type is declared by no imported module.
        StoreError: the database failed.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}")
    rc, c = t.repository_content, t.content
    last = 0
    while True:
        query = (
            sa.select(c.c.id, c.c.type, c.c.data)
            .select_from(rc.join(c, c.c.id == rc.c.content_id))
            .where(rc.c.repository_id == repository_id, rc.c.content_id > last, condition)
            .order_by(rc.c.content_id)
            .limit(chunk_size)
        )
        rows = await runner.run(
            "read repository content",
            lambda conn, query=query: list(conn.execute(query)),  # type: ignore[misc]
            write=False,
        )
        if not rows:
            return
        yield [decode_content(type_name, data, pk) for pk, type_name, data in rows]
        if len(rows) < chunk_size:
            return
        last = rows[-1][0]


class RepositoryCalls:
    """The repository and version calls of :class:`~stageline.store.Store`."""

    _runner: Runner

    async def create_repository(
        self, repository: Repository, *, exist_ok: bool = False
    ) -> Repository:
        """Save a new repository and its empty version 0.

        Args:
            repository: an unsaved repository; names are unique.
            exist_ok: when a repository of that name exists, return it instead of failing.

        Returns:
            ``repository`` with its ``pk`` set, or the existing repository.

        Raises:
            StoreArgumentError: the name or description holds a NUL character, or the name is
                longer than 255 characters.
            StoreError: the name is taken (and ``exist_ok`` is False), or the database failed.
        """
        check_text(repository.name, "repository name", max_chars=NAME_MAX_CHARS)
        check_text(repository.description, "repository description")
        r, v = t.repositories, t.repository_versions
        stmt = (
            self._runner.database.insert(r)
            .values(name=repository.name, description=repository.description)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(r.c.id)
        )

        def work(conn: sa.Connection) -> tuple[bool, Any]:
            pk = conn.execute(stmt).scalar()
            if pk is not None:
                conn.execute(
                    sa.insert(v).values(
                        repository_id=pk, number=0, complete=True, owner="", content_count=0
                    )
                )
                return True, pk
            return False, conn.execute(sa.select(r).where(r.c.name == repository.name)).one()

        created, value = await self._runner.run(
            f"create repository {repository.name!r}", work, write=True
        )
        if created:
            repository.pk = value
            return repository
        if not exist_ok:
            raise StoreError(
                f"a repository named {repository.name!r} already exists; pick another name, "
                "or pass exist_ok=True to use it"
            )
        return Repository(name=value.name, description=value.description, pk=value.id)

    async def get_repository(self, name: str) -> Repository:
        """The saved repository called ``name``.

        Raises:
            StoreArgumentError: the name holds a NUL character or is longer than 255 characters.
            StoreError: there is none, or the database failed.
        """
        check_text(name, "repository name", max_chars=NAME_MAX_CHARS)
        r = t.repositories
        row = await self._runner.run(
            f"read repository {name!r}",
            lambda conn: conn.execute(sa.select(r).where(r.c.name == name)).one_or_none(),
            write=False,
        )
        if row is None:
            raise StoreError(f"there is no repository named {name!r}; create it first")
        return Repository(name=row.name, description=row.description, pk=row.id)

    async def list_versions(self, repository: Repository) -> list[RepositoryVersion]:
        """Every complete version of ``repository``, oldest first.

        Versions being built (or abandoned by a crashed process) are not listed.

        Raises:
            ValueError: the repository is not saved.
            StoreError: the database failed.
        """
        pk = require_pk(repository, "repository")
        v = t.repository_versions
        rows = await self._runner.run(
            "list repository versions",
            lambda conn: list(
                conn.execute(
                    sa.select(v)
                    .where(v.c.repository_id == pk, v.c.complete.is_(True))
                    .order_by(v.c.number)
                )
            ),
            write=False,
        )
        return [_version_from_row(repository, row) for row in rows]

    async def get_version(
        self, repository: Repository, number: int | None = None
    ) -> RepositoryVersion:
        """One complete version of ``repository``: ``number``, or the latest when None.

        Raises:
            ValueError: the repository is not saved.
            StoreArgumentError: ``number`` is beyond the range of version numbers.
            StoreError: there is no such complete version, or the database failed.
        """
        pk = require_pk(repository, "repository")
        if number is not None:
            check_int(number, "version number", maximum=INTEGER_MAX)
        v = t.repository_versions
        query = sa.select(v).where(v.c.repository_id == pk, v.c.complete.is_(True))
        if number is None:
            query = query.order_by(v.c.number.desc()).limit(1)
        else:
            query = query.where(v.c.number == number)
        row = await self._runner.run(
            "read a repository version",
            lambda conn: conn.execute(query).one_or_none(),
            write=False,
        )
        if row is None:
            which = "any version" if number is None else f"a complete version {number}"
            raise StoreError(f"repository {repository.name!r} has no {which}")
        return _version_from_row(repository, row)

    async def latest_version(self, repository: Repository) -> RepositoryVersion:
        """The newest complete version of ``repository`` (version 0 when never synced).

        Raises:
            ValueError: the repository is not saved.
            StoreError: the database failed.
        """
        return await self.get_version(repository)

    async def iter_content(
        self,
        version: RepositoryVersion,
        *,
        change: Change = "present",
        chunk_size: int = 1000,
    ) -> AsyncIterator[list[Content]]:
        """Stream a version's content in chunks, ordered by primary key.

        Each chunk is one indexed query, so memory stays bounded by ``chunk_size`` whatever
        the repository's size, and no database cursor is held between chunks.

        Args:
            version: a saved version.
            change: ``"present"`` for the content in the version, ``"added"`` or
                ``"removed"`` for what it changed relative to the version before it.
            chunk_size: units per chunk (>= 1).

        Yields:
            Non-empty lists of saved units.

        Raises:
            ValueError: the version is not saved, or ``chunk_size`` < 1, or ``change`` is
                not one of the three kinds.
            StoreArgumentError: the version's pk or number is beyond its column's range.
            ContentTypeError: saved content's type is declared by no imported module.
            StoreError: the database failed.
        """
        require_pk(version, "repository version")
        check_int(version.number, "version number", maximum=INTEGER_MAX)
        condition = version_condition(version.number, change)
        async for chunk in iter_repository_content(
            self._runner, require_pk(version.repository, "repository"), condition, chunk_size
        ):
            yield chunk
