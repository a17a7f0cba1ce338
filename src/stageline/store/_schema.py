"""The tables of the current schema (the head of the Alembic revisions in ``_migrations/``).

Creating and upgrading them is :mod:`._migrate`'s job. Every change to the tables below
comes with a revision in ``_migrations/versions/`` that brings the previous schema to
this one, and a bump of :data:`SCHEMA_VERSION`; a test checks that a database migrated
from the baseline ends up with exactly these tables.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "CODE_POINT_PATH_INDEX",
    "SCHEMA_VERSION",
    "create_code_point_path_index",
    "metadata",
    "postgresql_compares_bytewise",
]

#: The schema version this stageline creates and uses: the number of its newest Alembic
#: revision ("0005" is version 5). Also recorded in ``stageline_meta``, where releases
#: from before Alembic look for it (and so refuse a newer database instead of failing
#: on a missing column).
SCHEMA_VERSION = 5

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
    # No file path: a file's location is derived from its sha256 and the storage root
    # (ArtifactStorage.path_for), so the storage can move and hosts can share the rows.
    sa.CheckConstraint("size >= 0", name="ck_artifacts_size"),
    # QueryExistingArtifacts matches by the strongest allowed digest a declared artifact
    # carries (find_artifacts_by_digest); md5 and sha1 are never allowed by default.
    sa.Index("ix_artifacts_sha224", "sha224"),
    sa.Index("ix_artifacts_sha384", "sha384"),
    sa.Index("ix_artifacts_sha512", "sha512"),
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
    # (find_content_artifacts_by_path); listings page through it by code point where the
    # database orders text that way (else see CODE_POINT_PATH_INDEX).
    sa.Index("ix_content_artifacts_relative_path", "relative_path", "content_id"),
)

#: On PostgreSQL whose default collation does not order text by code point (most do
#: not: "en_US.UTF-8", "C.UTF-8", ICU locales), listings compare paths in "C"
#: (list_content_artifacts), which the index above, built in the database's collation,
#: cannot serve: this one can. Made only there (create_code_point_path_index), since
#: elsewhere it would only cost writes; not in ``metadata`` for that reason.
CODE_POINT_PATH_INDEX = "ix_content_artifacts_relative_path_c"


def postgresql_compares_bytewise(conn: sa.Connection) -> bool:
    """Whether this PostgreSQL database's default collation orders text by code point.

    ``datcollate`` alone does not say it: since PostgreSQL 15 the default collation may
    come from ICU (``datlocprovider`` 'i'), and ``datcollate`` then holds the C
    library's setting, which can be "C" while text sorts by the ICU locale's rules. So
    the database is also asked to compare a few strings whose code point order no
    language's rules keep ("B" before "a", "/" before "0", "Z" before "_" before "a",
    "z" before "é").
    """
    collation = conn.exec_driver_sql(
        "SELECT datcollate FROM pg_database WHERE datname = current_database()"
    ).scalar()
    if collation not in ("C", "POSIX"):
        return False
    return bool(
        conn.exec_driver_sql(
            "SELECT 'B' < 'a' AND '/' < '0' AND 'Z' < '_' AND '_' < 'a' AND 'z' < 'é'"
        ).scalar()
    )


def create_code_point_path_index(conn: sa.Connection) -> None:
    """Create :data:`CODE_POINT_PATH_INDEX` where it serves: PostgreSQL ordering text
    other than by code point. A no-op on SQLite (its BINARY collation is code point
    order) and on a "C" PostgreSQL database."""
    if conn.dialect.name != "postgresql" or postgresql_compares_bytewise(conn):
        return
    conn.exec_driver_sql(
        f"CREATE INDEX {CODE_POINT_PATH_INDEX} ON content_artifacts "
        '(relative_path COLLATE "C", content_id)'
    )


remotes = sa.Table(
    "remotes",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.UniqueConstraint("name", name="uq_remotes_name"),
    sa.CheckConstraint("name <> ''", name="ck_remotes_name"),
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
    sa.CheckConstraint("size >= 0", name="ck_remote_artifacts_size"),
    # An alternate content source's files by sha256 (find_remote_artifact_urls).
    sa.Index("ix_remote_artifacts_remote_sha256", "remote_id", "sha256"),
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
    sa.CheckConstraint("number >= 0", name="ck_repository_versions_number"),
    sa.CheckConstraint(
        "base_version >= 0 AND base_version < number", name="ck_repository_versions_base"
    ),
    sa.CheckConstraint(
        "content_count >= 0 AND added_count >= 0 AND removed_count >= 0",
        name="ck_repository_versions_counts",
    ),
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
    # A row a version adds and removes again is deleted, never kept as an empty range.
    sa.CheckConstraint("version_added >= 0", name="ck_repository_content_added"),
    sa.CheckConstraint("version_removed > version_added", name="ck_repository_content_range"),
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

# The content a sync brought into the version it builds, recorded batch by batch
# (NewVersion.mark_seen) so that a mirror sync's last step, removing everything else, is one
# SQL statement over the database's record instead of a set of the repository's keys in
# memory. Rows exist only while their version is incomplete: committing or discarding the
# version deletes them, and the foreign key keeps a deleted version from leaving any (an
# id SQLite reuses must never find another version's rows).
new_version_seen = sa.Table(
    "new_version_seen",
    metadata,
    sa.Column(
        "version_id",
        sa.ForeignKey("repository_versions.id"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("content_id", _ID, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)
