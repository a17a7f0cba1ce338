"""Store calls on remotes and remote artifacts."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import attrs
import sqlalchemy as sa

from .._exceptions import StoreArgumentError, StoreError, redact_url
from ..models import (
    DIGEST_FIELDS,
    Artifact,
    ContentArtifact,
    DownloadPolicy,
    Remote,
    RemoteArtifact,
)
from . import _schema as t
from ._database import Database, Runner, chunks, require_pk
from ._values import NAME_MAX_CHARS, check_file_values, check_int, check_text

__all__ = ["RemoteArtifactEntry", "RemoteCalls"]

#: A remote artifact for :meth:`RemoteCalls.save_remote_artifacts_by_path`: (content pk,
#: relative path, remote pk, url, the artifact whose size and digests it records).
RemoteArtifactEntry = tuple[int, str, int, str, Artifact]

# Every field but the identity ones, so that a setting added to Remote is kept too.
_REMOTE_SETTINGS = tuple(
    field.name for field in attrs.fields(Remote) if field.name not in ("url", "name", "pk")
)

# The remote-name lock's first key: this store's remotes table (see _lock: advisory locks
# are per database, and two stores in two schemas must not share them).
_PG_NAME_LOCK_SQL = (
    "SELECT pg_advisory_xact_lock("
    "CAST(CAST(CAST(CAST('remotes' AS regclass) AS oid) AS bigint) - 2147483648 AS integer), "
    "CAST(:key AS integer))"
)


def _name_key(name: str) -> int:
    """A stable int4 of ``name``: the second key of its advisory lock (collisions only wait)."""
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


_RA_COLUMNS = [
    ("content_artifact_id", "bigint"),
    ("remote_id", "bigint"),
    ("url", "text"),
    ("size", "bigint"),
    *[(name, "text") for name in DIGEST_FIELDS],
]

# A pair saved with another url gets the new url and digests (the upstream moved the
# file); one saved with this url is left alone.
_RA_MOVED = (
    "DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in ("url", "size", *DIGEST_FIELDS))
    + " WHERE remote_artifacts.url <> excluded.url"
)


def _ra_row(key: tuple[int, int], url: str, values: Any) -> tuple[Any, ...]:
    """The row of ``_RA_COLUMNS`` for pair ``key``: ``url``, then the size and digests of
    ``values`` (a remote artifact, or the artifact whose values it records)."""
    return (*key, url, values.size, *[getattr(values, name) for name in DIGEST_FIELDS])


def _write_ra_rows(
    database: Database, conn: sa.Connection, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert new pairs and move saved ones to a new url (``_RA_MOVED``), in the order
    given, which callers sort by the unique key, so that concurrent PostgreSQL writers
    take its locks in the same order. At most ``CHUNK`` rows."""
    database.bulk_insert(
        conn,
        "remote_artifacts",
        _RA_COLUMNS,
        rows,
        conflict="content_artifact_id, remote_id",
        on_conflict=_RA_MOVED,
    )


def _saved_pairs(
    database: Database, conn: sa.Connection, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], tuple[int, str]]:
    """(content artifact id, remote id) -> (id, url) of the saved ones among ``keys``."""
    ca_ids = sorted({ca_id for ca_id, _remote_id in keys})
    wanted = set(keys)
    found: dict[tuple[int, int], tuple[int, str]] = {}
    for chunk in chunks(ca_ids):
        for pk, ca_id, remote_id, url in database.select_rows(
            conn,
            "id, content_artifact_id, remote_id, url",
            f"FROM remote_artifacts WHERE content_artifact_id IN {database.params(len(chunk))}",
            tuple(chunk),
        ):
            if (ca_id, remote_id) in wanted:
                found[(ca_id, remote_id)] = (pk, url)
    return found


class RemoteCalls:
    """The remote calls of :class:`~stageline.store.Store` and of a unit of work."""

    _runner: Runner
    # Saved remotes by pk, so that remote artifacts read back share one Remote per row.
    _remotes: dict[int, Remote]

    async def save_remote(self, remote: Remote) -> Remote:
        """Insert a remote, or update the saved one of the same name (or ``pk``).

        Remotes are unique by name: saving a remote whose name is saved already (the same
        upstream in a later run) updates that row with this remote's url and settings, and
        gives ``remote`` its ``pk``; no new row is added per run. A remote that has a
        ``pk`` updates its own row (renaming it, when its name changed). Concurrent savers
        of one name, in this process or others, end with one row: the name is locked for
        the transaction (a PostgreSQL advisory lock; SQLite's write lock).

        Credentials are stored as given (in the clear): protect the database accordingly.

        Returns:
            ``remote``, with its ``pk`` set.

        Raises:
            StoreArgumentError: the remote has no name (empty or blank), it is saved and its
                new name is another saved remote's, the name or url holds a NUL character,
                or the name is longer than 255 characters.
            StoreError: the database failed, or the remote's ``pk`` names no saved remote.
        """
        name = remote.name
        if not isinstance(name, str) or not name.strip():
            raise StoreArgumentError(
                f"the remote of {redact_url(remote.url)} has no name ({name!r}); remotes are "
                "saved by name, unique per store: give it one, e.g. Remote(url, name=...)"
            )
        check_text(remote.name, "remote name", max_chars=NAME_MAX_CHARS)
        check_text(remote.url, "remote url")
        settings = {field: getattr(remote, field) for field in _REMOTE_SETTINGS}
        settings["policy"] = str(remote.policy)
        values = {"name": name, "url": remote.url, "settings": json.dumps(settings)}
        pk = remote.pk
        postgresql = self._runner.database.is_postgresql
        remotes = t.remotes

        def work(conn: sa.Connection) -> int:
            if postgresql:
                # Held until the transaction ends, so that a concurrent saver of this name
                # finds the row inserted here instead of inserting a second one. (SQLite:
                # the write transaction holds the database's write lock already.)
                conn.execute(sa.text(_PG_NAME_LOCK_SQL), {"key": _name_key(name)})
            holder = conn.execute(
                sa.select(remotes.c.id)
                .where(remotes.c.name == name)
                .order_by(remotes.c.id)
                .limit(1)
            ).scalar()
            if pk is None:
                if holder is None:
                    inserted = conn.execute(
                        sa.insert(remotes).values(values).returning(remotes.c.id)
                    )
                    return int(inserted.scalar_one())
                target = int(holder)
            elif holder is not None and holder != pk:
                raise StoreArgumentError(
                    f"cannot rename remote {pk} to {name!r}: {name!r} is the name of remote "
                    f"{holder}; remote names are unique, pick another one"
                )
            else:
                target = pk
            result = conn.execute(sa.update(remotes).where(remotes.c.id == target).values(values))
            if result.rowcount != 1:
                raise StoreError(
                    f"remote {target} does not exist; save it with pk=None to insert it"
                )
            return target

        remote.pk = await self._runner.run(f"save remote {name!r}", work, write=True)
        self._remotes[remote.pk] = remote
        return remote

    async def get_remote(self, pk: int) -> Remote:
        """The saved remote with primary key ``pk``.

        Raises:
            StoreArgumentError: ``pk`` is beyond the range of primary keys.
            StoreError: no such remote, or the database failed.
        """
        check_int(pk, "remote pk")
        cached = self._remotes.get(pk)
        if cached is not None:
            return cached

        def work(conn: sa.Connection) -> Any:
            return conn.execute(sa.select(t.remotes).where(t.remotes.c.id == pk)).one_or_none()

        row = await self._runner.run("read a remote", work, write=False)
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
            StoreArgumentError: a content artifact or remote is not saved, a url holds a NUL
                character, or a size or digest does not fit the database.
            StoreError: the database failed.
        """
        latest: dict[tuple[int, int], RemoteArtifact] = {}
        keyed: list[tuple[tuple[int, int], RemoteArtifact]] = []
        for ra in remote_artifacts:
            key = (
                require_pk(ra.content_artifact, "content artifact"),
                require_pk(ra.remote, "remote"),
            )
            check_text(ra.url, "remote artifact url")
            check_file_values(ra, "remote artifact")
            latest[key] = ra
            keyed.append((key, ra))
        keys = sorted(latest)
        database = self._runner.database

        # Driver-level SQL, as in save_content: SQLAlchemy's per-row parameter handling
        # (and its RETURNING batches) cost more than the rows themselves. The saved pairs
        # are read first, so that only new and moved ones are written: a re-sync with no
        # upstream change writes nothing.
        def work(conn: sa.Connection) -> tuple[dict[tuple[int, int], int], int]:
            ids: dict[tuple[int, int], int] = {}
            written = 0
            for chunk in chunks(keys):
                saved = _saved_pairs(database, conn, chunk)
                rows = []
                for key in chunk:
                    pk_and_url = saved.get(key)
                    ra = latest[key]
                    if pk_and_url is not None:
                        ids[key] = pk_and_url[0]
                        if pk_and_url[1] == ra.url:
                            continue
                    rows.append(_ra_row(key, ra.url, ra))
                if not rows:
                    continue
                _write_ra_rows(database, conn, rows)  # in chunk order: sorted by the key
                written += len(rows)
                new = [row[:2] for row in rows if row[:2] not in ids]
                if new:
                    inserted = _saved_pairs(database, conn, new)
                    for key in new:
                        ids[key] = inserted[key][0]
            return ids, written

        ids, written = await self._runner.run("save remote artifacts", work, write=True)
        await self._runner.note_growth("remote_artifacts", written)
        for key, ra in keyed:
            ra.pk = ids[key]
        return list(remote_artifacts)

    async def save_remote_artifacts_by_path(
        self,
        entries: Sequence[RemoteArtifactEntry],
        *,
        content_artifact_pks: Sequence[int | None] | None = None,
    ) -> list[tuple[int, str]]:
        """Insert-or-update remote artifacts named by their unit and relative path.

        A bulk form of :meth:`save_remote_artifacts` for a sync, which knows each file by
        its saved unit and relative path, not by its content artifact: the content
        artifacts and the saved remote artifacts are read in one query, and only new and
        moved pairs are written (a second, write transaction; none when nothing changed).
        No objects are made per row. As there, a pair (content artifact, remote) is
        unique: a new one is inserted, one saved with another url gets the new url and
        digests, an unchanged one is left alone, and of a pair given twice the last wins.

        Args:
            entries: ``(content pk, relative path, remote pk, url, artifact)`` tuples: a
                saved unit, the path of one of its content artifacts, a saved remote, the
                url, and the artifact whose size and digests the remote artifact records
                (a declared artifact; it need not be saved).
            content_artifact_pks: for each entry, the pk of its content artifact when
                the caller knows it (ContentSaver just saved it), else None. Such an
                entry is not read first: its pair is written at once, inserted when new
                and given the url when saved with another (the same as a read would
                decide), so a batch of new files costs no read at all.

        Returns:
            The ``(content pk, relative path)`` of the entries whose unit has no content
            artifact at that path (none of them is written; the others are).

        Raises:
            StoreArgumentError: a url holds a NUL character, or a size or digest does not
                fit the database.
            StoreError: the database failed.
        """
        if not entries:
            return []
        database = self._runner.database
        known: list[tuple[int, RemoteArtifactEntry]] = []
        if content_artifact_pks is not None:
            if len(content_artifact_pks) != len(entries):
                raise StoreArgumentError(
                    f"save_remote_artifacts_by_path: {len(content_artifact_pks)} content "
                    f"artifact pks for {len(entries)} entries; give one (or None) per entry"
                )
            looked_up = []
            for entry, ca_pk in zip(entries, content_artifact_pks, strict=True):
                if ca_pk is None:
                    looked_up.append(entry)
                else:
                    check_int(ca_pk, "content artifact pk")
                    known.append((ca_pk, entry))
            entries = looked_up
        # Usually a re-sync, where nothing changed: one query answers for the batch, in
        # the database, whether any entry needs a write (or names no file), so that an
        # unchanged batch costs no Python per row; the full path below runs only for a
        # batch that does. (On PostgreSQL the full path runs always: a NUL in a parameter
        # fails the statement there, and with it the transaction.)
        if (
            entries
            and not known
            and not database.is_postgresql
            and not await self._runner.run(
                "check remote artifacts",
                functools.partial(_sqlite_any_to_write, database, entries=entries),
                write=False,
            )
        ):
            return []
        content_ids = sorted({entry[0] for entry in entries})
        remote_ids = sorted({entry[2] for entry in entries})
        columns = "ca.content_id, ca.relative_path, ca.id, ra.remote_id, ra.url"
        rest = (
            "FROM content_artifacts ca LEFT JOIN remote_artifacts ra "
            "ON ra.content_artifact_id = ca.id AND ra.remote_id IN {remotes} "
            "WHERE ca.content_id IN {contents}"
        )

        def read(
            conn: sa.Connection,
        ) -> tuple[dict[tuple[int, str], int], dict[tuple[int, int], str]]:
            ca_ids: dict[tuple[int, str], int] = {}
            urls: dict[tuple[int, int], str] = {}
            remotes = database.params(len(remote_ids))
            for chunk in chunks(content_ids):
                query = rest.format(remotes=remotes, contents=database.params(len(chunk)))
                for cid, path, ca_id, remote_id, url in database.select_rows(
                    conn, columns, query, (*remote_ids, *chunk)
                ):
                    ca_ids[(cid, path)] = ca_id
                    if remote_id is not None:
                        urls[(ca_id, remote_id)] = url
            return ca_ids, urls

        ca_ids: dict[tuple[int, str], int] = {}
        saved_urls: dict[tuple[int, int], str] = {}
        if entries:
            ca_ids, saved_urls = await self._runner.run(
                "look up content artifacts and remote artifacts", read, write=False
            )
        missing: list[tuple[int, str]] = []
        latest: dict[tuple[int, int], tuple[str, Any]] = {}
        for ca_pk, (_content_id, _path, remote_id, url, artifact) in known:
            latest[(ca_pk, remote_id)] = (url, artifact)
        for content_id, path, remote_id, url, artifact in entries:
            ca_id = ca_ids.get((content_id, path))
            if ca_id is None:
                missing.append((content_id, path))
            else:
                latest[(ca_id, remote_id)] = (url, artifact)
        rows = []
        for key in sorted(latest):
            url, artifact = latest[key]
            if saved_urls.get(key) == url:
                continue
            check_text(url, "remote artifact url")
            check_file_values(artifact, "remote artifact")
            rows.append(_ra_row(key, url, artifact))
        if rows:

            def write(conn: sa.Connection) -> None:
                # Sorted by the unique key; a pair a concurrent writer saved meanwhile is
                # updated only when its url differs, as the read would have.
                for chunk in chunks(rows):
                    _write_ra_rows(database, conn, chunk)

            await self._runner.run("save remote artifacts", write, write=True)
            await self._runner.note_growth("remote_artifacts", len(rows))
        return missing

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
            StoreArgumentError: a content artifact or the remote is not saved.
            StoreError: the database failed.
        """
        by_pk = {require_pk(ca, "content artifact"): ca for ca in content_artifacts}
        pks = sorted(by_pk)
        remote_pk = None if remote is None else require_pk(remote, "remote")
        ra_t = t.remote_artifacts

        def work(conn: sa.Connection) -> list[Any]:
            rows: list[Any] = []
            for chunk in chunks(pks):
                query = sa.select(ra_t).where(ra_t.c.content_artifact_id.in_(chunk))
                if remote_pk is not None:
                    query = query.where(ra_t.c.remote_id == remote_pk)
                rows.extend(
                    conn.execute(query.order_by(ra_t.c.content_artifact_id, ra_t.c.remote_id))
                )
            return rows

        rows = await self._runner.run("look up remote artifacts", work, write=False)
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

    async def find_remote_artifact_urls(
        self, remote: Remote, sha256s: Iterable[str]
    ) -> dict[str, str]:
        """Where ``remote`` serves files, by sha256 (for alternate content sources).

        Looks through the remote artifacts of the saved remote with ``remote``'s name
        (remotes are unique by name, so ``remote`` need not be saved itself).

        Args:
            remote: the remote, matched by name.
            sha256s: hex digests; duplicates are fine.

        Returns:
            The url of a remote artifact of the remote for every sha256 it has one for
            (the one saved first when there are several); absent digests are missing.

        Raises:
            StoreError: the database failed.
        """
        wanted = sorted(set(sha256s))
        if not wanted:
            return {}
        ra_t, remotes = t.remote_artifacts, t.remotes
        name = remote.name

        def work(conn: sa.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for chunk in chunks(wanted):
                query = (
                    sa.select(ra_t.c.sha256, ra_t.c.url)
                    .join(remotes, remotes.c.id == ra_t.c.remote_id)
                    .where(remotes.c.name == name, ra_t.c.sha256.in_(chunk))
                    .order_by(ra_t.c.id)
                )
                for sha256, url in conn.execute(query):
                    found.setdefault(sha256, url)
            return found

        return await self._runner.run(
            f"look up the files of remote {name!r} by sha256", work, write=False
        )


def _sqlite_any_to_write(
    database: Database, conn: sa.Connection, entries: Sequence[RemoteArtifactEntry]
) -> bool:
    """Whether any entry's pair (the content artifact at its path, its remote) is missing
    or saved with another url, or its values cannot be bound (the full path then names
    what is wrong): on SQLite, one statement per chunk, the entries as bound parameters."""
    per_statement = database.rows_per_statement(conn, 4)
    for start in range(0, len(entries), per_statement):
        part = entries[start : start + per_statement]
        parameters = tuple(chain.from_iterable([entry[:4] for entry in part]))
        try:
            found = conn.exec_driver_sql(_to_write_sql(len(part)), parameters).scalar_one()
        except (UnicodeEncodeError, sa.exc.StatementError):
            return True
        if found:
            return True
    return False


@functools.lru_cache(maxsize=16)
def _to_write_sql(count: int) -> str:
    """The text of _sqlite_any_to_write's statement for ``count`` entries (few recur, and
    the same text lets the driver's statement cache find it compiled)."""
    return (
        "WITH e(content_id, path, remote_id, url) AS (VALUES "
        + ", ".join(["(?, ?, ?, ?)"] * count)
        + ") SELECT EXISTS (SELECT 1 FROM e "
        "LEFT JOIN content_artifacts ca "
        "ON ca.content_id = e.content_id AND ca.relative_path = e.path "
        "LEFT JOIN remote_artifacts ra "
        "ON ra.content_artifact_id = ca.id AND ra.remote_id = e.remote_id "
        "WHERE ra.url IS NOT e.url)"
    )
