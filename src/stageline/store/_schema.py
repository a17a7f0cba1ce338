"""The tables, the recorded schema version, and creating or checking them on first use."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from .._exceptions import SchemaVersionError

__all__ = ["SCHEMA_VERSION", "ensure_schema", "metadata"]

#: The schema version this stageline creates and uses. Bump it with every change to the
#: tables below and register a step in ``_MIGRATIONS`` that brings version n-1 to n.
SCHEMA_VERSION = 1

# SQLite only aliases the rowid (and so autoincrements) for "INTEGER PRIMARY KEY".
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DIGEST = sa.String(128)

metadata = sa.MetaData()

meta = sa.Table(
    "stageline_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("size", sa.BigInteger),
    sa.Column("md5", sa.String(32)),
    sa.Column("sha1", sa.String(40)),
    sa.Column("sha224", sa.String(56)),
    sa.Column("sha384", sa.String(96)),
    sa.Column("sha512", _DIGEST),
    sa.Column("file", sa.Text),
)

content = sa.Table(
    "content",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(255), nullable=False),
    # The digest of (type, natural key): the unique key. The JSON is kept for people.
    sa.Column("natural_key_digest", sa.String(40), nullable=False, unique=True),
    sa.Column("natural_key", sa.Text, nullable=False),
    sa.Column("repo_key_digest", sa.String(40)),
    sa.Column("data", sa.Text, nullable=False),
)

content_artifacts = sa.Table(
    "content_artifacts",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("content_id", sa.ForeignKey("content.id"), nullable=False),
    sa.Column("artifact_id", sa.ForeignKey("artifacts.id")),
    sa.Column("relative_path", sa.Text, nullable=False),
    sa.UniqueConstraint("content_id", "relative_path"),
    sa.Index("ix_content_artifacts_artifact", "artifact_id"),
    # Serving a file of a version looks it up by path first, in content order
    # (find_content_artifacts_by_path).
    sa.Index("ix_content_artifacts_relative_path", "relative_path", "content_id"),
)

remotes = sa.Table(
    "remotes",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
)

remote_artifacts = sa.Table(
    "remote_artifacts",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("content_artifact_id", sa.ForeignKey("content_artifacts.id"), nullable=False),
    sa.Column("remote_id", sa.ForeignKey("remotes.id"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger),
    sa.Column("md5", sa.String(32)),
    sa.Column("sha1", sa.String(40)),
    sa.Column("sha224", sa.String(56)),
    sa.Column("sha256", sa.String(64)),
    sa.Column("sha384", sa.String(96)),
    sa.Column("sha512", _DIGEST),
    sa.UniqueConstraint("content_artifact_id", "remote_id"),
)

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
)

repository_versions = sa.Table(
    "repository_versions",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("repository_id", sa.ForeignKey("repositories.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("base_version", sa.Integer),
    sa.Column("complete", sa.Boolean, nullable=False, default=False),
    sa.Column("content_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("added_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("removed_count", sa.BigInteger, nullable=False, default=0),
    # host:pid of the process building an incomplete version, for people reading the table.
    sa.Column("owner", sa.Text, nullable=False, default=""),
    sa.UniqueConstraint("repository_id", "number"),
)

# Versions as ranges: a row says "content_id is in every version number n of the repository
# with version_added <= n < version_removed" (version_removed NULL: still present). A new
# version therefore writes only the rows it adds or ends, whatever the repository's size.
repository_content = sa.Table(
    "repository_content",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("repository_id", sa.ForeignKey("repositories.id"), nullable=False),
    sa.Column("content_id", sa.ForeignKey("content.id"), nullable=False),
    sa.Column("repo_key_digest", sa.String(40)),
    sa.Column("version_added", sa.Integer, nullable=False),
    sa.Column("version_removed", sa.Integer),
    sa.Index("ix_repository_content_content", "repository_id", "content_id"),
    sa.Index("ix_repository_content_added", "repository_id", "version_added"),
    sa.Index("ix_repository_content_removed", "repository_id", "version_removed"),
    sa.Index(
        "ix_repository_content_repo_key",
        "repository_id",
        "repo_key_digest",
        sqlite_where=sa.text("repo_key_digest IS NOT NULL"),
        postgresql_where=sa.text("repo_key_digest IS NOT NULL"),
    ),
)

#: Steps that migrate a database from schema version n (the key) to n + 1.
_MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {}

_OUR_TABLES = frozenset(metadata.tables)


def _what_to_do_older(found: int) -> str:
    return (
        f"the database was created by an older stageline (schema version {found}; this "
        f"stageline uses {SCHEMA_VERSION}) and no migration from it exists; sync into a new, "
        "empty database, or open this one with the stageline release that created it"
    )


def ensure_schema(conn: sa.Connection) -> int:
    """Create the tables on first use, or check (and migrate) the recorded schema version.

    Must run inside a write transaction: on PostgreSQL it takes a transaction-level
    advisory lock, on SQLite the transaction is ``BEGIN IMMEDIATE``, so that two processes
    opening a new database at once create the tables only once.

    Returns:
        The schema version now recorded (always :data:`SCHEMA_VERSION`).

    Raises:
        SchemaVersionError: the database records another schema version that cannot be
            migrated, or holds stageline's tables without a version record.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(1398041697)"))
    names = set(sa.inspect(conn).get_table_names())
    if meta.name not in names:
        clash = sorted(names & _OUR_TABLES)
        if clash:
            raise SchemaVersionError(
                f"the database already has tables named {clash!r} but no stageline schema "
                "version record, so it was not created by stageline (or was damaged); point "
                "stageline at an empty database or schema"
            )
        metadata.create_all(conn)
        conn.execute(sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        return SCHEMA_VERSION
    raw = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    try:
        found = int(raw) if raw is not None else -1
    except ValueError:
        found = -1
    if found < 0:
        raise SchemaVersionError(
            f"the database's stageline_meta table records no valid schema version ({raw!r}); "
            "it was damaged or not created by stageline; point stageline at an empty database"
        )
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the database was created by a newer stageline (schema version {found}; this "
            f"stageline knows only up to {SCHEMA_VERSION}); upgrade stageline to the release "
            "that created it, or use another database"
        )
    while found < SCHEMA_VERSION:
        step = _MIGRATIONS.get(found)
        if step is None:
            raise SchemaVersionError(_what_to_do_older(found))
        step(conn)
        found += 1
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value=str(found)))
    return found
