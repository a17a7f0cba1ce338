"""The async store: batch operations on the models, run in worker threads."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as _pg
from sqlalchemy.dialects import sqlite as _sqlite

from .._exceptions import StoreError
from ..models import (
    DIGEST_FIELDS,
    Artifact,
    Content,
    ContentArtifact,
    DownloadPolicy,
    Remote,
    RemoteArtifact,
    Repository,
    RepositoryVersion,
)
from . import _schema as t
from ._codec import check_declared, decode_content, encode_content, key_digest
from ._engine import WRITE_OPTION, create_engine, describe_url, sqlite_path, translate_error
from ._version import NewVersion

__all__ = ["Change", "Store", "open_store"]

T = TypeVar("T")

#: Which rows of a version :meth:`Store.iter_content` streams.
Change = Literal["present", "added", "removed"]

# Rows per IN (...) list or multi-row statement: well under SQLite's 32766 variables and
# small enough that PostgreSQL plans each list as an index lookup.
_CHUNK = 500

_REMOTE_SETTINGS = (
    "policy",
    "download_concurrency",
    "max_retries",
    "rate_limit",
    "connect_timeout",
    "sock_read_timeout",
    "total_timeout",
    "headers",
    "username",
    "password",
    "proxy_url",
    "proxy_username",
    "proxy_password",
    "ca_cert",
    "client_cert",
    "client_key",
    "tls_validation",
)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _require_pk(obj: Any, what: str) -> int:
    pk = getattr(obj, "pk", None)
    if pk is None:
        raise ValueError(f"{what} must be saved first (it has no pk): {obj!r}")
    return int(pk)


def _artifact_from_row(row: Any) -> Artifact:
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


def _file_text(path: Path | None) -> str | None:
    return None if path is None else os.fspath(path)


def _natural_digest(unit: Content) -> str:
    return key_digest(check_declared(unit), unit.natural_key())


class Store:
    """The database of content, artifacts, remotes and repository versions.

    Create it with :func:`open_store`. Every method works on a whole batch in one or a few
    round trips and runs in a worker thread (at most ``max_threads`` at once), so it can be
    awaited from asyncio or Trio. Writes are insert-or-get: two processes saving the same
    rows at the same time both succeed and get the same primary keys. Rows are written in
    a sorted order so that concurrent PostgreSQL writers take row locks in the same order
    and never deadlock.

    Saving sets ``pk`` on the objects passed in (and on their related objects' rows);
    lookups return saved objects. Every method raises :class:`~stageline.StoreError` (or a
    subclass) when the database fails, with the underlying driver error as ``__cause__``.
    """

    def __init__(self, engine: sa.Engine, *, max_threads: int) -> None:
        self._engine = engine
        self._url = engine.url
        self._postgresql = engine.dialect.name == "postgresql"
        self._sqlite_file = sqlite_path(engine.url)
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._placeholder = "%s" if self._postgresql else "?"
        self._remotes: dict[int, Remote] = {}
        # Rows written per table since this store last refreshed PostgreSQL's statistics.
        self._growth: dict[str, int] = {}
        self._analyze_at: dict[str, int] = {}

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return describe_url(self._url)

    @property
    def is_postgresql(self) -> bool:
        """True on PostgreSQL, False on SQLite."""
        return self._postgresql

    # -- plumbing ------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    return fn(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, what=what, url=self._url) from exc

    async def _run(self, what: str, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        """Run ``fn(connection)`` in one transaction in a worker thread.

        ``what`` completes "could not …" in error messages.
        """
        return await anyio.to_thread.run_sync(
            lambda: self._call(what, fn, write=write), limiter=self._limiter
        )

    async def _run_sync(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    async def _note_growth(self, table: str, rows: int) -> None:
        """Refresh PostgreSQL's statistics of ``table`` each time its growth doubles.

        PostgreSQL plans from statistics that autovacuum refreshes only now and then; a
        first sync outgrows them within seconds, and the planner then scans whole tables
        for each batch (insert fell from 12 000 to 5 000 units/s over 100 000 units).
        Doubling keeps it to O(log n) ANALYZEs, each reading a bounded sample.
        """
        if not self._postgresql or rows <= 0:
            return
        grown = self._growth.get(table, 0) + rows
        self._growth[table] = grown
        if grown < self._analyze_at.get(table, 2000):
            return
        self._analyze_at[table] = 2 * grown
        # Shielded: this runs after the caller's rows are committed and before its objects
        # get their pks; a cancellation here made a completed save raise Cancelled and
        # left its objects unsaved. The cancellation reaches the caller at its next await.
        with anyio.CancelScope(shield=True):
            await self._run(
                f"refresh the statistics of {table}",
                lambda conn: conn.exec_driver_sql(f"ANALYZE {table}"),
                write=False,
            )

    def _params(self, count: int) -> str:
        """A parenthesized list of ``count`` placeholders in the driver's style."""
        return "(" + ", ".join([self._placeholder] * count) + ")"

    def _bulk_insert(
        self,
        conn: sa.Connection,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[tuple[Any, ...]],
        *,
        conflict: str | None,
    ) -> None:
        """Insert ``rows`` (tuples in ``columns`` order) in one or a few round trips.

        ``columns`` are (name, PostgreSQL array element type) pairs. Driver-level SQL, as
        SQLAlchemy's per-row parameter handling costs more than the insert itself here:
        SQLite gets an executemany of a prepared statement; PostgreSQL one ``INSERT ...
        SELECT FROM unnest(arrays)`` (its executemany made a round trip per row). Both
        insert in the order given, which the callers sort by the unique key.
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
                f"INSERT INTO {table} ({names}) VALUES {self._params(len(columns))}{tail}",
                list(rows),
            )

    def _insert(self, table: sa.Table) -> Any:
        return _pg.insert(table) if self._postgresql else _sqlite.insert(table)

    async def _setup(self) -> None:
        await self._run("create or check the schema", t.ensure_schema, write=True)

    async def aclose(self) -> None:
        """Close every database connection. The store cannot be used afterwards."""
        await anyio.to_thread.run_sync(self._engine.dispose)

    # -- artifacts -----------------------------------------------------------------------

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

        def work(conn: sa.Connection) -> dict[str, Artifact]:
            found: dict[str, Artifact] = {}
            for chunk in _chunks(wanted):
                rows = conn.execute(sa.select(t.artifacts).where(t.artifacts.c.sha256.in_(chunk)))
                for row in rows:
                    found[row.sha256] = _artifact_from_row(row)
            return found

        return await self._run("look up artifacts by sha256", work, write=False)

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
            ValueError: an artifact has no sha256.
            StoreError: the database failed.
        """
        by_sha: dict[str, Artifact] = {}
        for artifact in artifacts:
            if artifact.sha256 is None:
                raise ValueError(f"an artifact needs a sha256 to be saved: {artifact!r}")
            by_sha.setdefault(artifact.sha256, artifact)
        if not by_sha:
            return []
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
            for chunk in _chunks(rows):
                self._bulk_insert(conn, "artifacts", typed, chunk, conflict="sha256")
                select = (
                    f"SELECT id, {names} FROM artifacts WHERE sha256 IN {self._params(len(chunk))}"
                )
                for row in conn.exec_driver_sql(select, tuple(r[0] for r in chunk)).fetchall():
                    found[row[1]] = tuple(row)
            return found

        found = await self._run("save artifacts", work, write=True)
        await self._note_growth("artifacts", len(rows))
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

    # -- content -------------------------------------------------------------------------

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
            StoreError: the database failed.
        """
        digests = [_natural_digest(unit) for unit in units]
        wanted = sorted(set(digests))
        if not wanted:
            return []

        def work(conn: sa.Connection) -> dict[str, tuple[int, str, str]]:
            found: dict[str, tuple[int, str, str]] = {}
            for chunk in _chunks(wanted):
                select = (
                    "SELECT natural_key_digest, id, type, data FROM content "
                    f"WHERE natural_key_digest IN {self._params(len(chunk))}"
                )
                for digest, pk, type_name, data in conn.exec_driver_sql(
                    select, tuple(chunk)
                ).fetchall():
                    found[digest] = (pk, type_name, data)
            return found

        found = await self._run("look up content by natural key", work, write=False)
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
            ValueError: a content artifact's artifact, or its content when it is not one
                of ``units``, is not saved.
            ContentTypeError: a unit's class is not a declared content type, or a field
                value cannot be stored as JSON.
            StoreError: the database failed.
        """
        encoded: dict[str, tuple[Content, tuple[str, str, str, str | None, str]]] = {}
        unit_digest: dict[int, str] = {}
        for unit in units:
            row = encode_content(unit)
            encoded.setdefault(row[2], (unit, row))
            unit_digest[id(unit)] = row[2]
        # Sorted by the unique key so that concurrent PostgreSQL writers take the key locks
        # in the same order (and so never deadlock).
        content_rows = [encoded[digest][1] for digest in sorted(encoded)]
        # Content artifacts: (digest or saved pk of the content, relative_path, artifact pk)
        ca_plan: list[tuple[ContentArtifact, str | None, int | None, int | None]] = []
        for ca in content_artifacts:
            digest = unit_digest.get(id(ca.content))
            content_pk = None if digest is not None else _require_pk(ca.content, "content")
            artifact_pk = None if ca.artifact is None else _require_pk(ca.artifact, "artifact")
            ca_plan.append((ca, digest, content_pk, artifact_pk))
        # Plain executemany followed by one SELECT per chunk: the driver runs a prepared
        # statement per row, faster than multi-row VALUES with RETURNING, and the SELECT
        # also finds the rows an earlier or concurrent writer inserted.
        content_columns = [
            (name, "text")
            for name in ("type", "natural_key", "natural_key_digest", "repo_key_digest", "data")
        ]
        ca_columns = [
            ("content_id", "bigint"),
            ("relative_path", "text"),
            ("artifact_id", "bigint"),
        ]

        def work(
            conn: sa.Connection,
        ) -> tuple[dict[str, tuple[int, str, str]], dict[tuple[int, str], int]]:
            rows: dict[str, tuple[int, str, str]] = {}
            for chunk in _chunks(content_rows):
                self._bulk_insert(
                    conn, "content", content_columns, chunk, conflict="natural_key_digest"
                )
                select = (
                    "SELECT id, natural_key_digest, type, data FROM content "
                    f"WHERE natural_key_digest IN {self._params(len(chunk))}"
                )
                for pk, digest, type_name, data in conn.exec_driver_sql(
                    select, tuple(row[2] for row in chunk)
                ).fetchall():
                    rows[digest] = (pk, type_name, data)

            wanted: dict[tuple[int, str], int | None] = {}
            for ca, digest, pk, artifact_pk in ca_plan:
                key = (rows[digest][0] if digest is not None else pk or 0, ca.relative_path)
                if wanted.get(key) is None:
                    wanted[key] = artifact_pk
            ca_rows = [(key[0], key[1], wanted[key]) for key in sorted(wanted)]
            ca_ids: dict[tuple[int, str], int] = {}
            fill: list[tuple[int, int]] = []
            for ca_chunk in _chunks(ca_rows):
                self._bulk_insert(
                    conn,
                    "content_artifacts",
                    ca_columns,
                    ca_chunk,
                    conflict="content_id, relative_path",
                )
                content_ids = sorted({row[0] for row in ca_chunk})
                select = (
                    "SELECT id, content_id, relative_path, artifact_id FROM content_artifacts "
                    f"WHERE content_id IN {self._params(len(content_ids))}"
                )
                found = conn.exec_driver_sql(select, tuple(content_ids)).fetchall()
                for pk, cid, path, artifact_id in found:
                    key = (cid, path)
                    if key in wanted:
                        ca_ids[key] = pk
                        new_artifact = wanted[key]
                        if artifact_id is None and new_artifact is not None:
                            fill.append((pk, new_artifact))
            self._fill_artifacts(conn, fill)
            return rows, ca_ids

        rows, ca_ids = await self._run("save content and content artifacts", work, write=True)
        await self._note_growth("content", len(content_rows))
        await self._note_growth("content_artifacts", len(ca_ids))
        saved: dict[str, Content] = {}
        for digest, (unit, row) in encoded.items():
            pk, type_name, data = rows[digest]
            if data == row[4]:
                # The row holds exactly this unit's fields: the unit itself is the saved one.
                unit.pk = pk
                saved[digest] = unit
            else:
                saved[digest] = decode_content(type_name, data, pk)
        for ca, digest, _pk, _artifact_pk in ca_plan:
            if digest is not None:
                ca.content = saved[digest]
            ca.pk = ca_ids[(_require_pk(ca.content, "content"), ca.relative_path)]
        return [saved[unit_digest[id(unit)]] for unit in units]

    def _fill_artifacts(self, conn: sa.Connection, fill: list[tuple[int, int]]) -> int:
        """Set artifact_id on content artifacts that have none, in id order."""
        if not fill:
            return 0
        fill.sort()
        cat = t.content_artifacts
        if self._postgresql:
            # Lock the rows in id order first: a bare UPDATE ... WHERE id IN (...) locks them
            # in scan order, which two concurrent syncs need not share.
            for chunk in _chunks([pk for pk, _ in fill]):
                conn.execute(
                    sa.select(cat.c.id)
                    .where(cat.c.id.in_(chunk))
                    .order_by(cat.c.id)
                    .with_for_update()
                )
        stmt = (
            sa.update(cat)
            .where(cat.c.id == sa.bindparam("ca_id"), cat.c.artifact_id.is_(None))
            .values(artifact_id=sa.bindparam("new_artifact"))
        )
        result = conn.execute(stmt, [{"ca_id": pk, "new_artifact": art} for pk, art in fill])
        return int(result.rowcount)

    async def update_content_artifacts(self, content_artifacts: Sequence[ContentArtifact]) -> int:
        """Give saved content artifacts that have no artifact yet the artifact they now carry.

        For on-demand content whose file appeared later. Content artifacts that already
        have an artifact in the database are left alone.

        Args:
            content_artifacts: saved content artifacts whose ``artifact`` is saved.

        Returns:
            How many rows were updated.

        Raises:
            ValueError: a content artifact or its artifact is not saved.
            StoreError: the database failed.
        """
        fill = [
            (_require_pk(ca, "content artifact"), _require_pk(ca.artifact, "artifact"))
            for ca in content_artifacts
        ]
        return await self._run(
            "set the artifact of content artifacts",
            lambda conn: self._fill_artifacts(conn, fill),
            write=True,
        )

    async def find_content_artifacts(self, units: Sequence[Content]) -> list[ContentArtifact]:
        """The saved content artifacts of saved units, with their artifacts.

        Args:
            units: saved units.

        Returns:
            Every content artifact of those units, ordered by unit then relative path; each
            one's ``content`` is the unit passed in.

        Raises:
            ValueError: a unit is not saved.
            StoreError: the database failed.
        """
        by_pk = {_require_pk(unit, "content"): unit for unit in units}
        pks = sorted(by_pk)
        cat, a = t.content_artifacts, t.artifacts

        def work(conn: sa.Connection) -> list[Any]:
            rows: list[Any] = []
            for chunk in _chunks(pks):
                query = (
                    sa.select(
                        cat.c.id.label("ca_id"),
                        cat.c.content_id,
                        cat.c.relative_path,
                        cat.c.artifact_id,
                        *[col for col in a.c if col.name != "id"],
                    )
                    .select_from(cat.outerjoin(a, a.c.id == cat.c.artifact_id))
                    .where(cat.c.content_id.in_(chunk))
                    .order_by(cat.c.content_id, cat.c.relative_path)
                )
                rows.extend(conn.execute(query))
            return rows

        rows = await self._run("look up content artifacts", work, write=False)
        result = []
        for row in rows:
            artifact = None
            if row.artifact_id is not None:
                artifact = Artifact(
                    size=row.size,
                    **{name: getattr(row, name) for name in DIGEST_FIELDS},
                    file=row.file,
                    pk=row.artifact_id,
                )
            result.append(
                ContentArtifact(
                    content=by_pk[row.content_id],
                    artifact=artifact,
                    relative_path=row.relative_path,
                    pk=row.ca_id,
                )
            )
        return result

    # -- remotes and remote artifacts ------------------------------------------------------

    async def save_remote(self, remote: Remote) -> Remote:
        """Insert a remote, or update it when it already has a ``pk``.

        Credentials are stored as given (in the clear): protect the database accordingly.

        Returns:
            ``remote``, with its ``pk`` set.

        Raises:
            StoreError: the database failed, or the remote's ``pk`` names no saved remote.
        """
        settings = {name: getattr(remote, name) for name in _REMOTE_SETTINGS}
        settings["policy"] = str(remote.policy)
        values = {"name": remote.name, "url": remote.url, "settings": json.dumps(settings)}
        pk = remote.pk

        def work(conn: sa.Connection) -> int:
            if pk is None:
                result = conn.execute(sa.insert(t.remotes).values(values).returning(t.remotes.c.id))
                return int(result.scalar_one())
            result = conn.execute(sa.update(t.remotes).where(t.remotes.c.id == pk).values(values))
            if result.rowcount != 1:
                raise StoreError(f"remote {pk} does not exist; save it with pk=None to insert it")
            return pk

        remote.pk = await self._run("save a remote", work, write=True)
        self._remotes[remote.pk] = remote
        return remote

    async def get_remote(self, pk: int) -> Remote:
        """The saved remote with primary key ``pk``.

        Raises:
            StoreError: no such remote, or the database failed.
        """
        cached = self._remotes.get(pk)
        if cached is not None:
            return cached

        def work(conn: sa.Connection) -> Any:
            return conn.execute(sa.select(t.remotes).where(t.remotes.c.id == pk)).one_or_none()

        row = await self._run("read a remote", work, write=False)
        if row is None:
            raise StoreError(f"remote {pk} does not exist")
        settings = json.loads(row.settings)
        settings["policy"] = DownloadPolicy(settings["policy"])
        remote = Remote(url=row.url, name=row.name, pk=row.id, **settings)
        self._remotes[pk] = remote
        return remote

    async def save_remote_artifacts(
        self, remote_artifacts: Sequence[RemoteArtifact]
    ) -> list[RemoteArtifact]:
        """Insert-or-update remote artifacts, unique by (content artifact, remote).

        A new pair is inserted. An existing pair whose url differs gets the new url and
        digests (the upstream moved the file); an unchanged one is left alone. Every input
        gets the ``pk`` of its row.

        Args:
            remote_artifacts: remote artifacts whose content artifact and remote are saved.
                When a pair appears twice, the last one's url wins.

        Returns:
            ``remote_artifacts``, each with its ``pk`` set.

        Raises:
            ValueError: a content artifact or remote is not saved.
            StoreError: the database failed.
        """
        latest: dict[tuple[int, int], RemoteArtifact] = {}
        for ra in remote_artifacts:
            key = (
                _require_pk(ra.content_artifact, "content artifact"),
                _require_pk(ra.remote, "remote"),
            )
            latest[key] = ra
        keys = sorted(latest)
        rows = [
            {
                "content_artifact_id": k[0],
                "remote_id": k[1],
                "url": latest[k].url,
                "size": latest[k].size,
                **{name: getattr(latest[k], name) for name in DIGEST_FIELDS},
            }
            for k in keys
        ]
        ra_t = t.remote_artifacts
        insert = self._insert(ra_t)
        stmt = insert.on_conflict_do_update(
            index_elements=["content_artifact_id", "remote_id"],
            set_={name: getattr(insert.excluded, name) for name in ("url", "size", *DIGEST_FIELDS)},
            where=ra_t.c.url != insert.excluded.url,
        ).returning(ra_t.c.id, ra_t.c.content_artifact_id, ra_t.c.remote_id)

        def work(conn: sa.Connection) -> dict[tuple[int, int], int]:
            ids: dict[tuple[int, int], int] = {}
            for chunk in _chunks(rows):
                for pk, ca_id, remote_id in conn.execute(stmt, list(chunk)):
                    ids[(ca_id, remote_id)] = pk
            rest = [k for k in keys if k not in ids]
            for pairs in _chunks(rest):
                query = sa.select(ra_t.c.id, ra_t.c.content_artifact_id, ra_t.c.remote_id).where(
                    ra_t.c.content_artifact_id.in_([k[0] for k in pairs])
                )
                wanted = set(pairs)
                for pk, ca_id, remote_id in conn.execute(query):
                    if (ca_id, remote_id) in wanted:
                        ids[(ca_id, remote_id)] = pk
            return ids

        ids = await self._run("save remote artifacts", work, write=True)
        await self._note_growth("remote_artifacts", len(rows))
        for ra in remote_artifacts:
            ra.pk = ids[(_require_pk(ra.content_artifact, ""), _require_pk(ra.remote, ""))]
        return list(remote_artifacts)

    async def find_remote_artifacts(
        self, content_artifacts: Sequence[ContentArtifact], *, remote: Remote | None = None
    ) -> list[RemoteArtifact]:
        """The saved remote artifacts of saved content artifacts.

        Args:
            content_artifacts: saved content artifacts.
            remote: only this (saved) remote's; None for every remote's.

        Returns:
            The remote artifacts, ordered by content artifact then remote; each one's
            ``content_artifact`` is the object passed in.

        Raises:
            ValueError: a content artifact or the remote is not saved.
            StoreError: the database failed.
        """
        by_pk = {_require_pk(ca, "content artifact"): ca for ca in content_artifacts}
        pks = sorted(by_pk)
        remote_pk = None if remote is None else _require_pk(remote, "remote")
        ra_t = t.remote_artifacts

        def work(conn: sa.Connection) -> list[Any]:
            rows: list[Any] = []
            for chunk in _chunks(pks):
                query = sa.select(ra_t).where(ra_t.c.content_artifact_id.in_(chunk))
                if remote_pk is not None:
                    query = query.where(ra_t.c.remote_id == remote_pk)
                rows.extend(
                    conn.execute(query.order_by(ra_t.c.content_artifact_id, ra_t.c.remote_id))
                )
            return rows

        rows = await self._run("look up remote artifacts", work, write=False)
        if remote is not None and remote.pk is not None:
            self._remotes.setdefault(remote.pk, remote)
        result = []
        for row in rows:
            result.append(
                RemoteArtifact(
                    url=row.url,
                    content_artifact=by_pk[row.content_artifact_id],
                    remote=await self.get_remote(row.remote_id),
                    size=row.size,
                    **{name: getattr(row, name) for name in DIGEST_FIELDS},
                    pk=row.id,
                )
            )
        return result

    # -- repositories and versions -----------------------------------------------------------

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
            StoreError: the name is taken (and ``exist_ok`` is False), or the database failed.
        """
        r, v = t.repositories, t.repository_versions
        stmt = (
            self._insert(r)
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

        created, value = await self._run(f"create repository {repository.name!r}", work, write=True)
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
            StoreError: there is none, or the database failed.
        """
        r = t.repositories
        row = await self._run(
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
        pk = _require_pk(repository, "repository")
        v = t.repository_versions
        rows = await self._run(
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
            StoreError: there is no such complete version, or the database failed.
        """
        pk = _require_pk(repository, "repository")
        v = t.repository_versions
        query = sa.select(v).where(v.c.repository_id == pk, v.c.complete.is_(True))
        if number is None:
            query = query.order_by(v.c.number.desc()).limit(1)
        else:
            query = query.where(v.c.number == number)
        row = await self._run(
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
            ContentTypeError: saved content's type is declared by no imported module.
            StoreError: the database failed.
        """
        _require_pk(version, "repository version")
        condition = _version_condition(version.number, change)
        async for chunk in self._iter_rows(
            _require_pk(version.repository, "repository"), condition, chunk_size
        ):
            yield chunk

    async def _iter_rows(
        self, repository_id: int, condition: sa.ColumnElement[bool], chunk_size: int
    ) -> AsyncIterator[list[Content]]:
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
            rows = await self._run(
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

    def new_version(self, repository: Repository) -> NewVersion:
        """Start building the next version of ``repository``; use with ``async with``.

        See :class:`NewVersion`.

        Raises:
            ValueError: the repository is not saved.
        """
        _require_pk(repository, "repository")
        return NewVersion(self, repository)


def _version_condition(number: int, change: Change) -> sa.ColumnElement[bool]:
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


@asynccontextmanager
async def open_store(
    url_or_path: str | os.PathLike[str],
    *,
    max_threads: int = 4,
) -> AsyncIterator[Store]:
    """Open (creating on first use) the store at a SQLite file or a PostgreSQL database.

    Use it as ``async with open_store("stageline.db") as store: ...``; connections are
    closed when the block ends. On first use the tables are created and the schema
    version recorded; an existing database is checked (and migrated when a migration
    exists).

    Args:
        url_or_path: a file path or ``sqlite:///PATH`` for SQLite (WAL mode, created if
            missing), or ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE`` (plain
            ``postgresql://`` means the same) for PostgreSQL.
        max_threads: at most this many database calls run at once (worker threads and
            pooled connections).

    Yields:
        The open :class:`Store`.

    Raises:
        ValueError: ``max_threads`` < 1.
        DatabaseURLError: the URL's scheme is not supported, or it names no SQLite file.
        SchemaVersionError: the database was made by another schema version and cannot be
            migrated.
        StoreError: the database cannot be reached or created, or the PostgreSQL driver is
            missing.
    """
    if isinstance(max_threads, bool) or not isinstance(max_threads, int) or max_threads < 1:
        raise ValueError(f"max_threads must be an int >= 1, got {max_threads!r}")
    engine = await anyio.to_thread.run_sync(
        lambda: create_engine(url_or_path, pool_size=max_threads)
    )
    store = Store(engine, max_threads=max_threads)
    try:
        await store._setup()
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await store.aclose()
