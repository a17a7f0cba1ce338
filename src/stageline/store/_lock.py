"""The per-repository lock held while a new version is built.

The lock dies with its holder (a PostgreSQL session, or an open file descriptor under
``flock``), so an incomplete version whose lock can be taken belongs to a process that is
gone, and can be cleaned up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import sqlalchemy as sa

__all__ = ["RepositoryLock", "acquire_repository_lock"]

# First half of the PostgreSQL advisory lock key: the oid of this store's repositories
# table (shifted into int4's range, so distinct oids stay distinct). Advisory locks are
# per database, not per schema: two stores in two schemas of one database have equal
# repository ids, and a constant here made a sync of one refuse to start while the other
# built a version of its repository with the same id.
_PG_LOCK_SQL = (
    "SELECT pg_try_advisory_lock("
    "CAST(CAST(CAST(CAST('repositories' AS regclass) AS oid) AS bigint) - 2147483648 AS integer), "
    "CAST(:r AS integer))"
)


class RepositoryLock:
    """A held lock; :meth:`release` frees it (blocking: run it in a worker thread)."""

    def __init__(self, *, connection: sa.Connection | None = None, fd: int | None = None):
        self._connection = connection
        self._fd = fd

    def release(self) -> None:
        """Free the lock. Safe to call twice."""
        if self._connection is not None:
            conn, self._connection = self._connection, None
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
                conn.commit()
            except sa.exc.SQLAlchemyError:
                # The connection goes back to the pool on close(): one whose unlock failed
                # must not, or its session would keep the lock. Discarding the connection
                # ends the session, and the server drops its locks with it.
                conn.invalidate()
            finally:
                conn.close()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def acquire_repository_lock(
    engine: sa.Engine, sqlite_file: Path | None, repository_id: int
) -> RepositoryLock | None:
    """Try to take the lock of one repository without waiting (blocking call).

    Returns:
        The held lock, or None when another session or process holds it.
    """
    if sqlite_file is None:
        conn = engine.connect()
        try:
            taken = bool(conn.execute(sa.text(_PG_LOCK_SQL), {"r": repository_id}).scalar())
            # A session-level advisory lock outlives the transaction: end it, so the
            # connection does not sit "idle in transaction" for the whole sync.
            conn.commit()
        except sa.exc.SQLAlchemyError:
            # The lock may have been taken before the failure: this session must not go
            # back to the pool holding it. Discarding it ends the session and its locks.
            conn.invalidate()
            conn.close()
            raise
        if not taken:
            conn.close()
            return None
        return RepositoryLock(connection=conn)
    # Next to the file the path resolves to: two processes naming one database through
    # different paths (a symlink to it) must take the same lock, or the second would take
    # the first's incomplete version for an abandoned one and undo it.
    sqlite_file = sqlite_file.resolve()
    directory = sqlite_file.parent / (sqlite_file.name + ".locks")
    directory.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(directory / f"repository-{repository_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    taken = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        taken = True
    except BlockingIOError:
        pass
    finally:
        if not taken:
            os.close(fd)
    return RepositoryLock(fd=fd) if taken else None
