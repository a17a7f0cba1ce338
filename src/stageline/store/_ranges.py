"""Versions as ranges: the SQL that adds, ends and undoes a version's rows.

A ``repository_content`` row says "content_id is in every version n of the repository
with version_added <= n < version_removed" (version_removed NULL: still present). A new
version therefore writes only the rows it adds or ends, whatever the repository's size,
and undoing it (a failed or abandoned version) costs O(its changes) too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import sqlalchemy as sa

from .._exceptions import StoreArgumentError
from . import _schema as t
from ._database import Database, chunks

__all__ = [
    "Change",
    "add_rows",
    "clear_seen",
    "count_changes",
    "discard_version",
    "end_rows",
    "mark_seen_rows",
    "remove_rows",
    "remove_unseen_rows",
    "version_condition",
    "working_view_condition",
]

#: Which rows of a version :meth:`Store.iter_content` streams.
Change = Literal["present", "added", "removed"]

_RC_COLUMNS = (
    ("repository_id", "bigint"),
    ("content_id", "bigint"),
    ("repo_key_digest", "text"),
    ("version_added", "integer"),
)


def version_condition(number: int, change: Change) -> sa.ColumnElement[bool]:
    """The ``repository_content`` rows of version ``number`` (or of its changes).

    Raises:
        StoreArgumentError: ``change`` is not one of the three kinds.
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
    raise StoreArgumentError(f"change must be 'present', 'added' or 'removed', got {change!r}")


def working_view_condition() -> sa.ColumnElement[bool]:
    """Rows present in the version being built (``version_removed IS NULL``).

    Written so that no index can serve it: keyset pages must walk the (repository_id,
    content_id) index in order, and a bare ``version_removed IS NULL`` offers a planner
    without up-to-date statistics the version_removed index instead, which would mean
    reading and sorting the whole version for every page.
    """
    rc = t.repository_content
    return sa.func.coalesce(rc.c.version_removed, -1) == -1


def discard_version(conn: sa.Connection, repository_id: int, number: int, version_id: int) -> None:
    """Undo every change of an incomplete version and delete it: O(its changes)."""
    rc, v = t.repository_content, t.repository_versions
    clear_seen(conn, version_id)
    conn.execute(
        sa.delete(rc).where(rc.c.repository_id == repository_id, rc.c.version_added == number)
    )
    conn.execute(
        sa.update(rc)
        .where(rc.c.repository_id == repository_id, rc.c.version_removed == number)
        .values(version_removed=None)
    )
    conn.execute(sa.delete(v).where(v.c.id == version_id))


def end_rows(
    conn: sa.Connection, database: Database, number: int, rows: Sequence[tuple[int, int]]
) -> None:
    """Remove (row id, version_added) rows from the version being built.

    A row the version itself added is deleted (it was never visible); an older one gets
    ``version_removed`` so that earlier versions keep it.
    """
    mine = sorted(pk for pk, added in rows if added == number)
    older = sorted(pk for pk, added in rows if added != number)
    for chunk in chunks(mine):
        conn.exec_driver_sql(
            f"DELETE FROM repository_content WHERE id IN {database.params(len(chunk))}",
            tuple(chunk),
        )
    for chunk in chunks(older):
        conn.exec_driver_sql(
            f"UPDATE repository_content SET version_removed = {database.placeholder} "
            f"WHERE id IN {database.params(len(chunk))}",
            (number, *chunk),
        )


def add_rows(
    conn: sa.Connection,
    database: Database,
    repository_id: int,
    number: int,
    pks: Sequence[int],
    choose: Callable[[], dict[int, str | None]],
) -> tuple[int, int]:
    """Add content to version ``number``: ``choose()`` maps the pks to add to their
    repo-key digest (or None); ``pks`` are every pk it may name.

    Units present already are left alone; a unit the version removed is restored; a
    present unit with the repo key of an added one is ended. ``choose`` is called only
    when some of ``pks`` are not present: a batch the version holds already (a re-sync's)
    costs one query and no key. Returns how many units were added (restored ones
    included) and how many rows were inserted.
    """
    # Driver-level SQL: this runs once per batch of every sync, and SQLAlchemy's expanding
    # IN parameters cost more than the queries.
    mark = database.placeholder
    present: set[int] = set()
    restorable: dict[int, int] = {}
    wanted = sorted(set(pks))
    for chunk in chunks(wanted):
        # Only (repository_id, content_id) in the WHERE clause, the rest filtered here:
        # a condition on version_removed tempts PostgreSQL into scanning the whole
        # version through the version_removed index while its statistics lag behind.
        for row_id, content_id, removed in database.select_rows(
            conn,
            "id, content_id, version_removed",
            "FROM repository_content "
            f"WHERE repository_id = {mark} AND content_id IN {database.params(len(chunk))}",
            (repository_id, *chunk),
        ):
            if removed is None:
                present.add(content_id)
            elif removed == number:
                restorable[content_id] = row_id
    if len(present) == len(wanted):
        return 0, 0
    chosen = choose()
    new = [pk for pk in sorted(chosen) if pk not in present]
    keys = sorted({key for pk in new if (key := chosen[pk]) is not None})
    conflicts: list[tuple[int, int]] = []
    for key_chunk in chunks(keys):
        # Through the index on (repository_id, repo_key_digest); version_removed is
        # filtered here: in SQL, SQLite (which has no statistics) may instead pick the
        # (repository_id, version_removed) index and scan every present row.
        conflicts.extend(
            (row_id, added)
            for row_id, added, removed in conn.exec_driver_sql(
                "SELECT id, version_added, version_removed FROM repository_content "
                f"WHERE repository_id = {mark} AND repo_key_digest IS NOT NULL "
                f"AND repo_key_digest IN {database.params(len(key_chunk))}",
                (repository_id, *key_chunk),
            ).fetchall()
            if removed is None
        )
    end_rows(conn, database, number, conflicts)
    restore = sorted(restorable[pk] for pk in new if pk in restorable)
    for chunk in chunks(restore):
        conn.exec_driver_sql(
            "UPDATE repository_content SET version_removed = NULL "
            f"WHERE id IN {database.params(len(chunk))}",
            tuple(chunk),
        )
    rows = [(repository_id, pk, chosen[pk], number) for pk in new if pk not in restorable]
    for row_chunk in chunks(rows):
        database.bulk_insert(conn, "repository_content", _RC_COLUMNS, row_chunk, conflict=None)
    return len(new), len(rows)


def remove_rows(
    conn: sa.Connection, database: Database, repository_id: int, number: int, pks: Sequence[int]
) -> list[int]:
    """End the rows of content ``pks`` in version ``number``, being built.

    All or nothing: returns the pks that are not in the version (never added, or ended
    already), and then ends none.
    """
    rows: list[tuple[int, int]] = []
    present: set[int] = set()
    for chunk in chunks(pks):
        # Filtered on version_removed here rather than in SQL, as in add_rows.
        for row_id, content_id, added, removed in conn.exec_driver_sql(
            "SELECT id, content_id, version_added, version_removed FROM repository_content "
            f"WHERE repository_id = {database.placeholder} "
            f"AND content_id IN {database.params(len(chunk))}",
            (repository_id, *chunk),
        ).fetchall():
            if removed is None:
                rows.append((row_id, added))
                present.add(content_id)
    missing = [pk for pk in pks if pk not in present]
    if not missing:
        end_rows(conn, database, number, rows)
    return missing


_SEEN_COLUMNS = (("version_id", "bigint"), ("content_id", "bigint"))


def mark_seen_rows(
    conn: sa.Connection, database: Database, version_id: int, pks: Sequence[int]
) -> None:
    """Record content ``pks`` (sorted, distinct) as seen by the version being built."""
    rows = [(version_id, pk) for pk in pks]
    for chunk in chunks(rows):
        database.bulk_insert(
            conn, "new_version_seen", _SEEN_COLUMNS, chunk, conflict="version_id, content_id"
        )


def remove_unseen_rows(
    conn: sa.Connection, repository_id: int, number: int, version_id: int
) -> int:
    """End every row of version ``number`` whose content was not marked seen; how many.

    Two statements over the database's own record, whatever the repository's size: the
    rows this version added are deleted, older ones get ``version_removed``.
    """
    rc, seen = t.repository_content, t.new_version_seen
    unseen = ~sa.exists().where(
        seen.c.version_id == version_id, seen.c.content_id == rc.c.content_id
    )
    present = sa.and_(rc.c.repository_id == repository_id, rc.c.version_removed.is_(None), unseen)
    deleted = conn.execute(sa.delete(rc).where(present, rc.c.version_added == number))
    ended = conn.execute(
        sa.update(rc).where(present, rc.c.version_added != number).values(version_removed=number)
    )
    return int(deleted.rowcount) + int(ended.rowcount)


def clear_seen(conn: sa.Connection, version_id: int) -> None:
    """Forget what the version being built was marked as having seen."""
    seen = t.new_version_seen
    conn.execute(sa.delete(seen).where(seen.c.version_id == version_id))


def count_changes(conn: sa.Connection, repository_id: int, number: int) -> tuple[int, int]:
    """How many units version ``number`` added and removed, from the indexes: O(changes)."""
    rc = t.repository_content
    added = conn.execute(
        sa.select(sa.func.count())
        .select_from(rc)
        .where(rc.c.repository_id == repository_id, rc.c.version_added == number)
    ).scalar_one()
    removed = conn.execute(
        sa.select(sa.func.count())
        .select_from(rc)
        .where(rc.c.repository_id == repository_id, rc.c.version_removed == number)
    ).scalar_one()
    return int(added), int(removed)
