"""Store calls on artifacts: look up by sha256, insert-or-get."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .._exceptions import StoreArgumentError
from ..models import DIGEST_FIELDS, Artifact
from . import _schema as t
from ._database import Runner, chunks

__all__ = ["ArtifactCalls", "artifact_from_row"]


def artifact_from_row(row: Any) -> Artifact:
    """The saved artifact of an ``artifacts`` row."""
    return Artifact(
        size=row.size,
        md5=row.md5,
        sha1=row.sha1,
        sha224=row.sha224,
        sha256=row.sha256,
        sha384=row.sha384,
        sha512=row.sha512,
        file=row.file,
        pk=row.id,
    )


def _file_text(path: Path | None) -> str | None:
    return None if path is None else os.fspath(path)


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
        # QueryExistingArtifacts runs once per batch.
        columns = ", ".join(col.name for col in t.artifacts.c)

        def work(conn: sa.Connection) -> dict[str, Artifact]:
            found: dict[str, Artifact] = {}
            for chunk in chunks(wanted):
                select = (
                    f"SELECT {columns} FROM artifacts WHERE sha256 IN {database.params(len(chunk))}"
                )
                for row in conn.exec_driver_sql(select, tuple(chunk)).fetchall():
                    found[row.sha256] = artifact_from_row(row)
            return found

        return await self._runner.run("look up artifacts by sha256", work, write=False)

    async def save_artifacts(self, artifacts: Sequence[Artifact]) -> list[Artifact]:
        """Insert-or-get artifacts, unique by sha256.

        An artifact whose sha256 is new is inserted and gets its ``pk``; for one already
        saved (by an earlier sync or a concurrent one) the saved artifact is returned
        instead. Store the files first (:meth:`stageline.storage.ArtifactStorage.store`), so
        that ``file`` is the stored location.

        Args:
            artifacts: artifacts with a sha256.

        Returns:
            The saved artifact for each input, in input order.

        Raises:
            StoreArgumentError: an artifact has no sha256.
            StoreError: the database failed.
        """
        by_sha: dict[str, Artifact] = {}
        for artifact in artifacts:
            if artifact.sha256 is None:
                raise StoreArgumentError(f"an artifact needs a sha256 to be saved: {artifact!r}")
            by_sha.setdefault(artifact.sha256, artifact)
        if not by_sha:
            return []
        database = self._runner.database
        columns = ("sha256", "size", *(n for n in DIGEST_FIELDS if n != "sha256"), "file")
        rows = [
            (
                sha,
                by_sha[sha].size,
                *(getattr(by_sha[sha], n) for n in DIGEST_FIELDS if n != "sha256"),
                _file_text(by_sha[sha].file),
            )
            for sha in sorted(by_sha)
        ]
        typed = [(name, "bigint" if name == "size" else "text") for name in columns]
        names = ", ".join(columns)

        def work(conn: sa.Connection) -> dict[str, tuple[Any, ...]]:
            found: dict[str, tuple[Any, ...]] = {}
            for chunk in chunks(rows):
                database.bulk_insert(conn, "artifacts", typed, chunk, conflict="sha256")
                select = (
                    f"SELECT id, {names} FROM artifacts "
                    f"WHERE sha256 IN {database.params(len(chunk))}"
                )
                for row in conn.exec_driver_sql(select, tuple(r[0] for r in chunk)).fetchall():
                    found[row[1]] = tuple(row)
            return found

        found = await self._runner.run("save artifacts", work, write=True)
        await self._runner.note_growth("artifacts", len(rows))
        saved: dict[str, Artifact] = {}
        for row in rows:
            db_row = found[row[0]]
            artifact = by_sha[row[0]]
            if db_row[1:] == row:
                # The row holds exactly this artifact's values: it is the saved artifact.
                artifact.pk = db_row[0]
                saved[row[0]] = artifact
            else:
                saved[row[0]] = Artifact(
                    pk=db_row[0], **dict(zip(columns, db_row[1:], strict=True))
                )
        return [saved[a.sha256] for a in artifacts if a.sha256 is not None]
