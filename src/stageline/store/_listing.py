"""Store calls that list what is saved: repositories, a version's files by path, its remotes.

For people and the programs that show them (the CLI's listings, a content app's index
pages, an export), where the sync's calls look rows up by key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from .._exceptions import StoreArgumentError
from ..models import ContentArtifact, Remote, Repository, RepositoryVersion
from . import _schema as t
from ._database import Runner, require_pk
from ._ranges import version_condition
from ._repositories import _storable as storable
from ._repositories import content_artifacts_in_version, read_content_artifacts
from ._values import INTEGER_MAX, check_int

__all__ = ["ListingCalls"]


def _prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, by code point.

    None when there is none (``prefix`` is empty, or ends in the last code point).
    Code point order is the order of UTF-8 bytes, which SQLite's BINARY collation and
    PostgreSQL's "C" collation compare.
    """
    while prefix and prefix[-1] == "\U0010ffff":
        prefix = prefix[:-1]
    if not prefix:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class ListingCalls:
    """The listing calls of :class:`~stageline.store.Store`."""

    _runner: Runner
    # Provided by RemoteCalls, beside this class in the Store.
    get_remote: Callable[[int], Awaitable[Remote]]

    async def list_repositories(self) -> list[Repository]:
        """Every saved repository, by name.

        Raises:
            StoreError: the database failed.
        """
        r = t.repositories
        rows = await self._runner.run(
            "list repositories",
            lambda conn: list(conn.execute(sa.select(r).order_by(r.c.name))),
            write=False,
        )
        return [Repository(name=row.name, description=row.description, pk=row.id) for row in rows]

    async def list_content_artifacts(
        self,
        version: RepositoryVersion,
        *,
        prefix: str = "",
        after: str | None = None,
        limit: int = 1000,
    ) -> list[ContentArtifact]:
        """A page of the content artifacts of ``version``, ordered by relative path.

        Paths are compared by code point (the order of their UTF-8 bytes) on both
        databases; the lookup walks the index on relative_path, so a page costs the same
        whatever the size of the version. Page through a version with ``after`` set to
        the last path of the previous page. Units that share a path (a content type
        without a repository key) each appear, by unit primary key.

        Args:
            version: a saved version.
            prefix: only paths that start with it (e.g. ``"dir/"`` for a folder).
            after: only paths after this one; None to start at the first.
            limit: at most this many content artifacts (>= 1).

        Returns:
            The content artifacts, each with its unit as ``content`` and its saved
            artifact, or None while the file is deferred.

        Raises:
            StoreArgumentError: the version or its repository is not saved, ``limit`` is
                not an int >= 1, or ``prefix`` or ``after`` is not a str.
            ContentTypeError: a unit's type is declared by no imported module.
            StoreError: the database failed.
        """
        require_pk(version, "repository version")
        repository_pk = require_pk(version.repository, "repository")
        check_int(version.number, "version number", maximum=INTEGER_MAX)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreArgumentError(f"limit must be an int >= 1, got {limit!r}")
        if not isinstance(prefix, str) or not (after is None or isinstance(after, str)):
            raise StoreArgumentError(
                f"prefix and after must be str (after may be None), got {prefix!r} and {after!r}"
            )
        if not storable(prefix) or (after is not None and not storable(after)):
            return []
        cat = t.content_artifacts
        path: sa.ColumnElement[str] = cat.c.relative_path
        if not await self._compares_bytewise():
            # The database orders text by language rules, under which the strings that
            # start with a prefix are not one range: compare by code point, through the
            # index made for that (CODE_POINT_PATH_INDEX, revision 0005).
            path = path.collate("C")
        conditions: list[sa.ColumnElement[bool]] = []
        if prefix:
            conditions.append(path >= prefix)
            end = _prefix_end(prefix)
            if end is not None:
                conditions.append(path < end)
        if after is not None:
            conditions.append(path > after)
        query = (
            content_artifacts_in_version(repository_pk, version.number)
            .where(*conditions)
            .order_by(path, cat.c.content_id)
            .limit(limit)
        )

        return await read_content_artifacts(
            self._runner, query, "list content artifacts by relative path"
        )

    async def _compares_bytewise(self) -> bool:
        """Whether the database compares text by code point: SQLite, or PostgreSQL whose
        default collation does (see ``postgresql_compares_bytewise``). Asked once per
        store."""
        known: bool | None = getattr(self, "_bytewise_text", None)
        if known is None:
            if not self._runner.database.is_postgresql:
                known = True
            else:
                known = await self._runner.run(
                    "read the database's collation", t.postgresql_compares_bytewise, write=False
                )
            self._bytewise_text = known
        return known

    async def find_version_remotes(self, version: RepositoryVersion) -> list[Remote]:
        """The remotes that the files of ``version`` were declared from, oldest first.

        Those with a remote artifact for a content artifact of a unit in the version,
        whatever their policy (a sync records a remote artifact for every file it
        declares, downloaded or deferred).

        Raises:
            StoreArgumentError: the version or its repository is not saved.
            StoreError: the database failed.
        """
        require_pk(version, "repository version")
        repository_pk = require_pk(version.repository, "repository")
        check_int(version.number, "version number", maximum=INTEGER_MAX)
        cat, rc, ra = t.content_artifacts, t.repository_content, t.remote_artifacts
        query = (
            sa.select(ra.c.remote_id)
            .distinct()
            .select_from(
                rc.join(cat, cat.c.content_id == rc.c.content_id).join(
                    ra, ra.c.content_artifact_id == cat.c.id
                )
            )
            .where(
                rc.c.repository_id == repository_pk, version_condition(version.number, "present")
            )
            .order_by(ra.c.remote_id)
        )
        pks = await self._runner.run(
            "find the remotes of a version",
            lambda conn: list(conn.execute(query).scalars()),
            write=False,
        )
        return [await self.get_remote(pk) for pk in pks]
