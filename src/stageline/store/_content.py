"""Store calls on content and content artifacts: insert-or-get by natural key, lookups."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..models import Artifact, Content, ContentArtifact, trusted_content_artifact
from . import _schema as t
from ._artifacts import ArtifactRow, artifact_from_row
from ._codec import ContentRow, check_declared, decode_content, encode_content, key_digest
from ._database import Database, Runner, chunks, require_pk
from ._values import RELATIVE_PATH_MAX_BYTES, check_text

__all__ = ["ContentCalls", "ContentFile"]

#: A content artifact as :meth:`ContentCalls.save_content_by_path` takes it: (unit,
#: relative path, artifact or None).
ContentFile = tuple[Content, str, Artifact | None]

_CONTENT_COLUMNS = [
    (name, "text")
    for name in ("type", "natural_key", "natural_key_digest", "repo_key_digest", "data")
]
_CA_COLUMNS = [
    ("content_id", "bigint"),
    ("relative_path", "text"),
    ("artifact_id", "bigint"),
]


# find_content_artifacts' columns: the content artifact's, then every artifact column
# (all NULL for a deferred file), as ArtifactRow orders them.
_CA_ARTIFACT_COLUMNS = "ca.id, ca.content_id, ca.relative_path, " + ", ".join(
    f"a.{name}" for name in ArtifactRow._fields
)


def _saved_by_digest(
    database: Database, conn: sa.Connection, digests: Sequence[str]
) -> dict[str, tuple[int, str, str]]:
    """Digest -> (pk, type, data) of the saved content among ``digests`` (one chunk)."""
    return {
        digest: (pk, type_name, data)
        for digest, pk, type_name, data in database.select_rows(
            conn,
            "natural_key_digest, id, type, data",
            f"FROM content WHERE natural_key_digest IN {database.params(len(digests))}",
            tuple(digests),
        )
    }


# A saved unit's fields as JSON that SQLite embeds as such in the JSON array of rows it
# returns (json() marks its result as JSON), so that Python parses each row's fields
# together with the rows, once, instead of the quoted text and then that text again.
# NaN and infinity, which the fields' encoder writes as ``NaN`` and ``Infinity``, are
# not JSON (SQLite refuses them, or from 3.42 reads them as JSON5 and changes them), and
# neither is anything else json_valid() refuses: those fields come back as their text.
_FIELDS_AS_JSON = (
    "CASE WHEN instr(data, 'NaN') = 0 AND instr(data, 'Infinity') = 0 AND json_valid(data) "
    "THEN json(data) ELSE data END"
)


def _found_by_digest(
    database: Database, conn: sa.Connection, digests: Sequence[str]
) -> Mapping[str, tuple[int, str, str | dict[str, Any]]]:
    """Like ``_saved_by_digest``, for decoding: each unit's fields as their JSON text, or
    on SQLite (mostly) already parsed."""
    if database.is_postgresql:
        return _saved_by_digest(database, conn, digests)
    text = conn.exec_driver_sql(
        "SELECT json_group_array(json_array(natural_key_digest, id, type, "
        f"{_FIELDS_AS_JSON})) FROM content WHERE natural_key_digest IN "
        f"{database.params(len(digests))}",
        tuple(digests),
    ).scalar_one()
    return {digest: (pk, type_name, data) for digest, pk, type_name, data in json.loads(text)}


def _new_ids_by_digest(
    database: Database, conn: sa.Connection, chunk: Sequence[ContentRow]
) -> dict[str, tuple[int, str, str]]:
    """Like ``_saved_by_digest``, for rows just inserted from ``chunk``: their type and
    data are the ones sent, so only the ids are read."""
    sent = {row[2]: row for row in chunk}
    found: dict[str, tuple[int, str, str]] = {}
    for digest, pk in database.select_rows(
        conn,
        "natural_key_digest, id",
        f"FROM content WHERE natural_key_digest IN {database.params(len(sent))}",
        tuple(sent),
    ):
        row = sent[digest]
        found[digest] = (pk, row[0], row[4])
    return found


def _natural_digest(unit: Content) -> str:
    return key_digest(check_declared(unit), unit.natural_key())


def _fill_artifacts(database: Database, conn: sa.Connection, fill: list[tuple[int, int]]) -> int:
    """Set artifact_id on content artifacts that have none, in id order."""
    if not fill:
        return 0
    fill.sort()
    cat = t.content_artifacts
    if database.is_postgresql:
        # Lock the rows in id order first: a bare UPDATE ... WHERE id IN (...) locks them
        # in scan order, which two concurrent syncs need not share.
        for chunk in chunks([pk for pk, _ in fill]):
            conn.execute(
                sa.select(cat.c.id).where(cat.c.id.in_(chunk)).order_by(cat.c.id).with_for_update()
            )
    stmt = (
        sa.update(cat)
        .where(cat.c.id == sa.bindparam("ca_id"), cat.c.artifact_id.is_(None))
        .values(artifact_id=sa.bindparam("new_artifact"))
    )
    result = conn.execute(stmt, [{"ca_id": pk, "new_artifact": art} for pk, art in fill])
    return int(result.rowcount)


class ContentCalls:
    """The content calls of :class:`~stageline.store.Store` and of a unit of work."""

    _runner: Runner

    async def find_content(self, units: Sequence[Content]) -> list[Content | None]:
        """Look up saved content with the same type and natural key as each unit.

        Args:
            units: units of any declared types, saved or not.

        Returns:
            For each input, in order, the saved unit (a new object read from the database)
            or None when no unit with that natural key is saved.

        Raises:
            ContentTypeError: a unit's class is not a declared content type, a unit's
                natural key is not valid Unicode, or saved content no longer fits its class.
            StoreArgumentError: a natural key holds NaN or infinity.
            StoreError: the database failed.
        """
        digests = [_natural_digest(unit) for unit in units]
        wanted = sorted(set(digests))
        if not wanted:
            return []
        database = self._runner.database

        def work(conn: sa.Connection) -> dict[str, tuple[int, str, str | dict[str, Any]]]:
            found: dict[str, tuple[int, str, str | dict[str, Any]]] = {}
            for chunk in chunks(wanted):
                found.update(_found_by_digest(database, conn, chunk))
            return found

        found = await self._runner.run("look up content by natural key", work, write=False)
        decoded: dict[str, Content] = {
            digest: decode_content(type_name, data, pk)
            for digest, (pk, type_name, data) in found.items()
        }
        return [decoded.get(digest) for digest in digests]

    async def save_content(
        self,
        units: Sequence[Content],
        content_artifacts: Sequence[ContentArtifact] = (),
    ) -> list[Content]:
        """Insert-or-get content and its content artifacts in one transaction.

        Content is unique by (type, natural key), content artifacts by (content,
        relative_path). A unit new to the database is inserted and gets its ``pk``, and so
        does a unit whose saved row holds exactly its fields; for one saved with other
        field values (same natural key) the saved unit, read from the database, is returned.
        Each content artifact gets its ``pk`` and its ``content`` is replaced by the saved
        unit. A content artifact that was saved
        earlier without an artifact (a deferred, on-demand file) gets the artifact passed
        now, if it has one: pass the content artifacts of existing content too.

        Args:
            units: units of declared content types.
            content_artifacts: content artifacts whose ``content`` is one of ``units`` or
                an already saved unit, and whose ``artifact`` is saved or None.

        Returns:
            The saved unit for each input unit, in input order.

        Raises:
            StoreArgumentError: a content artifact's artifact, or its content when it is not one
                of ``units``, is not saved.
            ContentTypeError: a unit's class is not a declared content type, or a field
                value cannot be stored as JSON.
            StoreArgumentError: a relative path holds a NUL character or is longer than
                2048 bytes in UTF-8, a natural or repository key holds NaN or
                infinity, or the type name is longer than 255 characters.
            StoreError: the database failed.
        """
        files = [(ca.content, ca.relative_path, ca.artifact) for ca in content_artifacts]
        saved, pks = await self.save_content_by_path(units, files)
        saved_by_id = {id(unit): saved_unit for unit, saved_unit in zip(units, saved, strict=True)}
        for ca, pk in zip(content_artifacts, pks, strict=True):
            ca.content = saved_by_id.get(id(ca.content), ca.content)
            ca.pk = pk
        return saved

    async def save_content_by_path(
        self,
        units: Sequence[Content],
        files: Sequence[ContentFile],
    ) -> tuple[list[Content], list[int]]:
        """:meth:`save_content` with each content artifact given as a tuple.

        The bulk form for a sync, which knows each file by its unit and relative path:
        no object is made or changed per content artifact (the units are, as there).

        Args:
            units: units of declared content types.
            files: ``(unit, relative path, artifact or None)`` tuples, each a content
                artifact: its unit is one of ``units`` or an already saved unit, its
                artifact is saved or None.

        Returns:
            The saved unit for each input unit, in input order, and the content
            artifact's pk for each file, in input order.

        Raises:
            StoreArgumentError: a file's artifact, or its unit when it is not one of
                ``units``, is not saved; a relative path holds a NUL character or is
                longer than 2048 bytes in UTF-8; a natural or repository key holds NaN or
                infinity; or the type name is longer than 255 characters.
            ContentTypeError: a unit's class is not a declared content type, or a field
                value cannot be stored as JSON.
            StoreError: the database failed.
        """
        encoded: dict[str, tuple[Content, ContentRow]] = {}
        unit_digest: dict[int, str] = {}
        for unit in units:
            row = encode_content(unit)
            encoded.setdefault(row[2], (unit, row))
            unit_digest[id(unit)] = row[2]
        # Sorted by the unique key so that concurrent PostgreSQL writers take the key locks
        # in the same order (and so never deadlock).
        content_rows = [encoded[digest][1] for digest in sorted(encoded)]
        # Content artifacts: (digest or saved pk of the content, relative_path, artifact pk)
        ca_plan: list[tuple[str | None, int | None, str, int | None]] = []
        for content, path, artifact in files:
            check_text(path, "relative path", max_bytes=RELATIVE_PATH_MAX_BYTES)
            digest = unit_digest.get(id(content))
            content_pk = None if digest is not None else require_pk(content, "content")
            artifact_pk = None if artifact is None else require_pk(artifact, "artifact")
            ca_plan.append((digest, content_pk, path, artifact_pk))
        database = self._runner.database

        # One insert per chunk, then one SELECT: it also finds the rows an earlier or
        # concurrent writer inserted (RETURNING would not), and when every row is new only
        # their ids are read.
        def work(
            conn: sa.Connection,
        ) -> tuple[dict[str, tuple[int, str, str]], dict[tuple[int, str], int], list[int]]:
            rows: dict[str, tuple[int, str, str]] = {}
            for chunk in chunks(content_rows):
                inserted, ids = database.insert_new(
                    conn, "content", _CONTENT_COLUMNS, chunk, conflict="natural_key_digest"
                )
                if ids is not None:
                    # Every row is new, holds what was sent, and SQLite told its id.
                    rows.update(
                        (row[2], (pk, row[0], row[4])) for row, pk in zip(chunk, ids, strict=True)
                    )
                elif inserted == len(chunk):
                    # Every row is new and holds what was sent: only the ids are read.
                    rows.update(_new_ids_by_digest(database, conn, chunk))
                else:
                    rows.update(_saved_by_digest(database, conn, [row[2] for row in chunk]))

            # Each file's (content pk, path): the key of its content artifact.
            file_keys: list[tuple[int, str]] = []
            wanted: dict[tuple[int, str], int | None] = {}
            for digest, pk, path, artifact_pk in ca_plan:
                key = (rows[digest][0] if digest is not None else pk or 0, path)
                file_keys.append(key)
                if wanted.get(key) is None:
                    wanted[key] = artifact_pk
            ca_rows = [(key[0], key[1], wanted[key]) for key in sorted(wanted)]
            ca_ids: dict[tuple[int, str], int] = {}
            fill: list[tuple[int, int]] = []
            for ca_chunk in chunks(ca_rows):
                _, new_ids = database.insert_new(
                    conn,
                    "content_artifacts",
                    _CA_COLUMNS,
                    ca_chunk,
                    conflict="content_id, relative_path",
                )
                if new_ids is not None:
                    # All new, each with the artifact it was given (so none to fill in).
                    for (content_id, path, _artifact), pk in zip(ca_chunk, new_ids, strict=True):
                        ca_ids[content_id, path] = pk
                    continue
                content_ids = sorted({row[0] for row in ca_chunk})
                found = database.select_rows(
                    conn,
                    "id, content_id, relative_path, artifact_id",
                    "FROM content_artifacts WHERE content_id IN "
                    + database.params(len(content_ids)),
                    tuple(content_ids),
                )
                for pk, cid, path, artifact_id in found:
                    key = (cid, path)
                    if key in wanted:
                        ca_ids[key] = pk
                        new_artifact = wanted[key]
                        if artifact_id is None and new_artifact is not None:
                            fill.append((pk, new_artifact))
            _fill_artifacts(database, conn, fill)
            return rows, ca_ids, [ca_ids[key] for key in file_keys]

        rows, ca_ids, pks = await self._runner.run(
            "save content and content artifacts", work, write=True
        )
        await self._runner.note_growth("content", len(content_rows))
        await self._runner.note_growth("content_artifacts", len(ca_ids))
        saved: dict[str, Content] = {}
        for digest, (unit, row) in encoded.items():
            pk, type_name, data = rows[digest]
            if data == row[4]:
                # The row holds exactly this unit's fields: the unit itself is the saved one.
                unit.pk = pk
                saved[digest] = unit
            else:
                saved[digest] = decode_content(type_name, data, pk)
        return [saved[unit_digest[id(unit)]] for unit in units], pks

    async def update_content_artifacts(self, content_artifacts: Sequence[ContentArtifact]) -> int:
        """Give saved content artifacts that have no artifact yet the artifact they now carry.

        For on-demand content whose file appeared later. Content artifacts that already
        have an artifact in the database are left alone.

        Args:
            content_artifacts: saved content artifacts whose ``artifact`` is saved.

        Returns:
            How many rows were updated.

        Raises:
            StoreArgumentError: a content artifact or its artifact is not saved.
            StoreError: the database failed.
        """
        fill = [
            (require_pk(ca, "content artifact"), require_pk(ca.artifact, "artifact"))
            for ca in content_artifacts
        ]
        database = self._runner.database
        return await self._runner.run(
            "set the artifact of content artifacts",
            lambda conn: _fill_artifacts(database, conn, fill),
            write=True,
        )

    async def find_content_artifacts(self, units: Sequence[Content]) -> list[ContentArtifact]:
        """The saved content artifacts of saved units, with their artifacts.

        Args:
            units: saved units.

        Returns:
            Every content artifact of those units, ordered by unit then relative path
            (by code point); each one's ``content`` is the unit passed in.

        Raises:
            StoreArgumentError: a unit is not saved.
            StoreError: the database failed.
        """
        by_pk = {require_pk(unit, "content"): unit for unit in units}
        pks = sorted(by_pk)
        database = self._runner.database
        # Driver-level SQL: SQLAlchemy's expanding IN parameters and result rows cost more
        # than the query here, which runs once per batch of every sync.

        def work(conn: sa.Connection) -> list[Any]:
            rows: list[Any] = []
            for chunk in chunks(pks):
                rows.extend(
                    database.select_rows(
                        conn,
                        _CA_ARTIFACT_COLUMNS,
                        "FROM content_artifacts ca LEFT JOIN artifacts a ON a.id = ca.artifact_id "
                        f"WHERE ca.content_id IN {database.params(len(chunk))}",
                        tuple(chunk),
                    )
                )
            return rows

        rows = await self._runner.run("look up content artifacts", work, write=False)
        # Sorted here, not in SQL (select_rows keeps no order): by unit, then by path as
        # code points compare, on both databases (what SQLite's BINARY collation and
        # PostgreSQL's "C" give, whatever PostgreSQL's default collation).
        rows.sort(key=lambda row: (row[1], row[2]))
        result = []
        for ca_id, content_id, path, *values in rows:
            artifact = None
            if values[0] is not None:
                artifact = artifact_from_row(database, ArtifactRow(*values), values[0])
            # Read back from the database, whose paths were checked on the way in.
            result.append(trusted_content_artifact(by_pk[content_id], artifact, path, ca_id))
        return result
