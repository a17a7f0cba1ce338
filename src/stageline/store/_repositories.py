"""Store calls on repositories and their complete versions, and reading a version's content."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from .._exceptions import StoreArgumentError, StoreError, UnsafePathError
from ..models import (
    Content,
    ContentArtifact,
    Repository,
    RepositoryVersion,
    check_relative_path,
)
from . import _schema as t
from ._artifacts import artifact_from_row
from ._codec import decode_content
from ._database import Runner, require_pk
from ._ranges import Change, version_condition
from ._values import INTEGER_MAX, NAME_MAX_CHARS, check_int, check_text

__all__ = [
    "RepositoryCalls",
    "content_artifacts_in_version",
    "iter_repository_content",
    "read_content_artifacts",
]


# The largest version number a row can hold (an INTEGER column on both databases).
_NUMBER_MAX = 2**31 - 1


def _storable(text: str) -> bool:
    """Whether a row could hold ``text``: no NUL, and encodable as UTF-8.

    Lookups of other text find nothing without asking the database, which would refuse
    such a parameter (PostgreSQL, a NUL) or fail to encode it (a lone surrogate).
    """
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


async def iter_repository_content(
    runner: Runner, repository_id: int, condition: sa.ColumnElement[bool], chunk_size: int
) -> AsyncIterator[list[Content]]:
    """Stream a repository's content rows matching ``condition``, by content primary key.

    Keyset pagination: one indexed query per chunk, no cursor held between chunks.

    Raises:
        StoreArgumentError: ``chunk_size`` < 1.
        ContentTypeError: saved content's type is declared by no imported module.
        StoreError: the database failed.
    """
    if chunk_size < 1:
        raise StoreArgumentError(f"chunk_size must be >= 1, got {chunk_size!r}")
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


def content_artifacts_in_version(repository_pk: int, number: int) -> sa.Select[Any]:
    """The content artifacts of a version's units, as :func:`read_content_artifacts` reads
    them; callers add their own conditions, order and limit.

    The version's rows are probed per content artifact (EXISTS), never joined: a planner
    without statistics (SQLite's) would otherwise start from the repository's rows and
    walk the whole version, where this walk follows the path index.
    """
    cat, rc, c = t.content_artifacts, t.repository_content, t.content
    in_version = (
        sa.select(rc.c.id)
        .where(
            rc.c.repository_id == repository_pk,
            rc.c.content_id == cat.c.content_id,
            version_condition(number, "present"),
        )
        .exists()
    )
    return (
        sa.select(
            cat.c.id, cat.c.content_id, cat.c.artifact_id, cat.c.relative_path, c.c.type, c.c.data
        )
        .select_from(cat.join(c, c.c.id == cat.c.content_id))
        .where(in_version)
    )


async def read_content_artifacts(
    runner: Runner, query: sa.Select[Any], what: str
) -> list[ContentArtifact]:
    """Run ``query`` and make a content artifact of each row it returns, in its order.

    The query selects a content artifact's ``id``, ``content_id``, ``artifact_id`` and
    ``relative_path`` with its unit's ``type`` and ``data``; the artifacts are read in the
    same transaction, in one query, and located by the database's storage.
    """
    artifacts = t.artifacts

    def work(conn: sa.Connection) -> tuple[list[Any], dict[int, Any]]:
        rows = list(conn.execute(query))
        artifact_ids = sorted({row.artifact_id for row in rows if row.artifact_id is not None})
        found: dict[int, Any] = {}
        if artifact_ids:
            for row in conn.execute(sa.select(artifacts).where(artifacts.c.id.in_(artifact_ids))):
                found[row.id] = row
        return rows, found

    rows, artifact_rows = await runner.run(what, work, write=False)
    database = runner.database
    return [
        ContentArtifact(
            content=decode_content(row.type, row.data, row.content_id),
            artifact=(
                None
                if row.artifact_id is None
                else artifact_from_row(database, artifact_rows[row.artifact_id], row.artifact_id)
            ),
            relative_path=row.relative_path,
            pk=row.id,
        )
        for row in rows
    ]


def _check_repository_name(name: str) -> None:
    try:
        check_relative_path(name)
        safe = "/" not in name
    except UnsafePathError:
        safe = False
    if not safe:
        raise StoreArgumentError(
            f"repository name {name!r} cannot be used: a name is one segment of the content "
            "app's urls and of export folders, so it may not hold '/', a backslash or a "
            "control character, nor be '.' or '..'"
        )


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
            StoreArgumentError: the name or description holds a NUL character, the name is
                longer than 255 characters, or it is not one path segment (see below).
            StoreError: the name is taken (and ``exist_ok`` is False), or the database failed.

        A name is one segment of the content app's urls and of export folders: no ``/``,
        backslash or control character, and not ``.`` or ``..``.
        """
        check_text(repository.name, "repository name", max_chars=NAME_MAX_CHARS)
        _check_repository_name(repository.name)
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
            StoreArgumentError: the repository is not saved.
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
            StoreArgumentError: the repository is not saved, or ``number`` is beyond the
                range of version numbers.
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
            StoreArgumentError: the repository is not saved.
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
            StoreArgumentError: the version is not saved, or ``chunk_size`` < 1, or ``change`` is
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

    async def find_version(
        self, repository: str, number: int | None = None
    ) -> RepositoryVersion | None:
        """A complete version of the repository named ``repository``, or None: one query.

        For callers that answer "not found" themselves (a content app's 404), where
        :meth:`get_repository` and :meth:`get_version` raise.

        Args:
            repository: the repository's name.
            number: the version's number; None for the latest complete version.

        Returns:
            The version, its ``repository`` the saved repository; None when no
            repository has that name or it has no complete version ``number``.

        Raises:
            StoreArgumentError: ``repository`` is not a str, or ``number`` is not an int
                (nor None).
            StoreError: the database failed.
        """
        if not isinstance(repository, str):
            raise StoreArgumentError(
                f"find_version: repository must be a repository's name (a str), got {repository!r}"
            )
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise StoreArgumentError(f"find_version: number must be an int or None, got {number!r}")
        if not _storable(repository) or (number is not None and not 0 <= number <= _NUMBER_MAX):
            return None
        r, v = t.repositories, t.repository_versions
        query = (
            sa.select(v, r.c.name.label("repository_name"), r.c.description)
            .select_from(v.join(r, r.c.id == v.c.repository_id))
            .where(r.c.name == repository, v.c.complete.is_(True))
        )
        if number is None:
            query = query.order_by(v.c.number.desc()).limit(1)
        else:
            query = query.where(v.c.number == number)
        row = await self._runner.run(
            f"look up a version of repository {repository!r}",
            lambda conn: conn.execute(query).first(),
            write=False,
        )
        if row is None:
            return None
        saved = Repository(
            name=row.repository_name, description=row.description, pk=row.repository_id
        )
        return _version_from_row(saved, row)

    async def find_content_artifacts_by_path(
        self, version: RepositoryVersion, relative_path: str, *, limit: int = 10
    ) -> list[ContentArtifact]:
        """The content artifacts at ``relative_path`` of the units in ``version``.

        The path is compared as it is, byte for byte: it is never normalised nor joined
        to anything, so ``a/../b`` finds only a file saved under that very name. The
        lookup starts from the content artifacts' index on relative_path, so it costs the
        same whatever the size of the version; at most ``limit`` rows are read.

        Args:
            version: a saved version.
            relative_path: the path of the file in the version.
            limit: at most this many content artifacts are returned (>= 1). A version
                normally has one file per path; more show units that share a path.

        Returns:
            The content artifacts, ordered by unit primary key: each with its unit (read
            from the database) as ``content``, and its saved artifact, or None while the
            file is deferred. Empty when no unit of the version has a file at that path.

        Raises:
            StoreArgumentError: the version or its repository is not saved, ``limit`` is
                not an int >= 1, or ``relative_path`` is not a str.
            ContentTypeError: a found unit's type is declared by no imported module.
            StoreError: the database failed.
        """
        require_pk(version, "repository version")
        repository_pk = require_pk(version.repository, "repository")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreArgumentError(f"limit must be an int >= 1, got {limit!r}")
        if not isinstance(relative_path, str):
            raise StoreArgumentError(f"relative_path must be a str, got {relative_path!r}")
        if not _storable(relative_path):
            return []
        cat = t.content_artifacts
        query = (
            content_artifacts_in_version(repository_pk, version.number)
            .where(cat.c.relative_path == relative_path)
            .order_by(cat.c.content_id)
            .limit(limit)
        )
        return await read_content_artifacts(
            self._runner, query, "look up content artifacts by relative path"
        )
