"""Store calls on artifacts: look up by sha256 (or another digest), insert-or-get."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from .._exceptions import StoreArgumentError
from ..models import DIGEST_FIELDS, Artifact, trusted_artifact
from . import _schema as t
from ._database import Database, Runner, chunks
from ._values import check_file_values

__all__ = ["ArtifactCalls", "artifact_from_row"]


class ArtifactRow(NamedTuple):
    """A row of the artifacts table (every column, in this order), as read with
    ``Database.select_rows``; :func:`artifact_from_row` takes it."""

    id: int
    sha256: str
    size: int | None
    md5: str | None
    sha1: str | None
    sha224: str | None
    sha384: str | None
    sha512: str | None


_ROW_COLUMNS = ", ".join(ArtifactRow._fields)
#: The columns of an artifact's values, in row order (the file's path is not stored).
_COLUMNS = ArtifactRow._fields[1:]


def _saved_rows(
    database: Database, conn: sa.Connection, sha256s: Sequence[str]
) -> list[ArtifactRow]:
    """The saved rows among ``sha256s`` (one chunk), in no set order."""
    return [
        ArtifactRow(*values)
        for values in database.select_rows(
            conn,
            _ROW_COLUMNS,
            f"FROM artifacts WHERE sha256 IN {database.params(len(sha256s))}",
            tuple(sha256s),
        )
    ]


def artifact_from_row(database: Database, row: Any, pk: int) -> Artifact:
    """The saved artifact of a row with the artifact columns, its file located by sha256.

    Without attrs' validators: the row was checked when it was written (every lookup of a
    sync reads it back).
    """
    return trusted_artifact(
        size=row.size,
        md5=row.md5,
        sha1=row.sha1,
        sha224=row.sha224,
        sha256=row.sha256,
        sha384=row.sha384,
        sha512=row.sha512,
        file=database.artifact_file(row.sha256),
        pk=pk,
    )


class ArtifactCalls:
    """The artifact calls of :class:`~stageline.store.Store` and of a unit of work."""

    _runner: Runner

    async def find_artifacts(self, sha256s: Iterable[str]) -> dict[str, Artifact]:
        """Look up saved artifacts by sha256.

        Args:
            sha256s: hex digests; duplicates are fine.

        Returns:
            The saved artifact of every digest that has one (absent digests are missing
            from the dict).

        Raises:
            StoreError: the database failed.
        """
        wanted = sorted(set(sha256s))
        if not wanted:
            return {}
        database = self._runner.database
        # Driver-level SQL: SQLAlchemy's expanding IN costs more than this query, which
        # QueryExistingArtifacts runs once per batch; on SQLite the rows come in one step.

        def work(conn: sa.Connection) -> dict[str, Artifact]:
            found: dict[str, Artifact] = {}
            for chunk in chunks(wanted):
                for row in _saved_rows(database, conn, chunk):
                    found[row.sha256] = artifact_from_row(database, row, row.id)
            return found

        return await self._runner.run("look up artifacts by sha256", work, write=False)

    async def find_artifacts_by_digest(
        self, kind: str, values: Iterable[str]
    ) -> dict[str, Artifact]:
        """Look up saved artifacts by a digest of any kind (``sha512``, ``sha384``, …).

        For metadata that gives no sha256. Which kinds are trusted for matching is the
        caller's choice (``QueryExistingArtifacts`` uses only the allowed ones). sha224,
        sha384 and sha512 are indexed; md5 and sha1 (never allowed by default) are not, so
        a lookup by them reads the whole table.

        Args:
            kind: a digest kind, one of :data:`stageline.models.DIGEST_FIELDS`.
            values: hex digests of that kind; duplicates are fine.

        Returns:
            The saved artifact of every value that has one, keyed by the value (absent
            values are missing). When several artifacts share a value (possible for the
            weak kinds), the one saved first.

        Raises:
            StoreArgumentError: ``kind`` is not a digest kind.
            StoreError: the database failed.
        """
        if kind not in DIGEST_FIELDS:
            raise StoreArgumentError(
                f"find_artifacts_by_digest: unknown digest kind {kind!r}; use one of "
                f"{list(DIGEST_FIELDS)}"
            )
        wanted = sorted(set(values))
        if not wanted:
            return {}
        column = t.artifacts.c[kind]
        database = self._runner.database

        def work(conn: sa.Connection) -> dict[str, Artifact]:
            found: dict[str, Artifact] = {}
            for chunk in chunks(wanted):
                query = sa.select(t.artifacts).where(column.in_(chunk)).order_by(t.artifacts.c.id)
                for row in conn.execute(query):
                    found.setdefault(getattr(row, kind), artifact_from_row(database, row, row.id))
            return found

        return await self._runner.run(f"look up artifacts by {kind}", work, write=False)

    async def save_artifacts(self, artifacts: Sequence[Artifact]) -> list[Artifact]:
        """Insert-or-get artifacts, unique by sha256.

        An artifact whose sha256 is new is inserted and gets its ``pk``; for one already
        saved (by an earlier sync or a concurrent one) with the same size and digests,
        the artifact passed in gets that ``pk``; for one saved with other values, the
        saved artifact is returned instead. Store the files first
        (:meth:`stageline.storage.ArtifactStorage.store`): the database keeps no file
        path. When the store was opened with a ``storage``, every artifact returned has
        ``file`` set to the stored location (``storage.path_for(sha256)``); otherwise an
        artifact read from the database has ``file`` None.

        Args:
            artifacts: artifacts with a sha256.

        Returns:
            The saved artifact for each input, in input order.

        Raises:
            StoreArgumentError: an artifact has no sha256, or its size or a digest does not
                fit the database.
            StoreError: the database failed.
        """
        by_sha: dict[str, Artifact] = {}
        for artifact in artifacts:
            if artifact.sha256 is None:
                raise StoreArgumentError(f"an artifact needs a sha256 to be saved: {artifact!r}")
            check_file_values(artifact, "artifact")
            by_sha.setdefault(artifact.sha256, artifact)
        if not by_sha:
            return []
        database = self._runner.database
        rows = [tuple(getattr(by_sha[sha], name) for name in _COLUMNS) for sha in sorted(by_sha)]
        typed = [(name, "bigint" if name == "size" else "text") for name in _COLUMNS]

        def work(conn: sa.Connection) -> dict[str, ArtifactRow]:
            found: dict[str, ArtifactRow] = {}
            for chunk in chunks(rows):
                _, ids = database.insert_new(conn, "artifacts", typed, chunk, conflict="sha256")
                if ids is not None:
                    # All new, holding what was sent: no need to read them back.
                    for row, pk in zip(chunk, ids, strict=True):
                        found[row[0]] = ArtifactRow(pk, *row)
                    continue
                for saved_row in _saved_rows(database, conn, [r[0] for r in chunk]):
                    found[saved_row.sha256] = saved_row
            return found

        found = await self._runner.run("save artifacts", work, write=True)
        await self._runner.note_growth("artifacts", len(rows))
        saved: dict[str, Artifact] = {}
        for row in rows:
            db_row = found[row[0]]
            artifact = by_sha[row[0]]
            if db_row[1:] == row:
                # The row holds exactly this artifact's values: it is the saved artifact.
                artifact.pk = db_row.id
                stored = database.artifact_file(row[0])
                if stored is not None:
                    artifact.file = stored
                saved[row[0]] = artifact
            else:
                # Saved before with other values: the saved artifact is returned.
                saved[row[0]] = artifact_from_row(database, db_row, db_row.id)
        return [saved[a.sha256] for a in artifacts if a.sha256 is not None]
