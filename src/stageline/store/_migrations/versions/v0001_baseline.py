"""The baseline: schema version 1, as stageline created it before it used Alembic.

A database made then has ``stageline_meta.schema_version = 1`` and no revision table;
the store recognises it as this revision and upgrades it from here. The tables below
are a frozen copy of that schema: never edit them, add a revision instead.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tables() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "stageline_meta",
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    sa.Table(
        "artifacts",
        metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("size", sa.BigInteger),
        sa.Column("md5", sa.String(32)),
        sa.Column("sha1", sa.String(40)),
        sa.Column("sha224", sa.String(56)),
        sa.Column("sha384", sa.String(96)),
        sa.Column("sha512", sa.String(128)),
        sa.Column("file", sa.Text),
    )
    sa.Table(
        "content",
        metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("natural_key_digest", sa.String(40), nullable=False, unique=True),
        sa.Column("natural_key", sa.Text, nullable=False),
        sa.Column("repo_key_digest", sa.String(40)),
        sa.Column("data", sa.Text, nullable=False),
    )
    sa.Table(
        "content_artifacts",
        metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("content_id", sa.ForeignKey("content.id"), nullable=False),
        sa.Column("artifact_id", sa.ForeignKey("artifacts.id")),
        sa.Column("relative_path", sa.Text, nullable=False),
        sa.UniqueConstraint("content_id", "relative_path"),
        sa.Index("ix_content_artifacts_artifact", "artifact_id"),
    )
    sa.Table(
        "remotes",
        metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
    )
    sa.Table(
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
        sa.Column("sha512", sa.String(128)),
        sa.UniqueConstraint("content_artifact_id", "remote_id"),
    )
    sa.Table(
        "repositories",
        metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
    )
    sa.Table(
        "repository_versions",
        metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("repository_id", sa.ForeignKey("repositories.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("base_version", sa.Integer),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("content_count", sa.BigInteger, nullable=False),
        sa.Column("added_count", sa.BigInteger, nullable=False),
        sa.Column("removed_count", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.UniqueConstraint("repository_id", "number"),
    )
    sa.Table(
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
    return metadata


def upgrade() -> None:
    """Create the version-1 tables and record schema version 1."""
    metadata = _tables()
    connection = op.get_bind()
    metadata.create_all(connection)
    meta = metadata.tables["stageline_meta"]
    connection.execute(sa.insert(meta).values(key="schema_version", value="1"))


def downgrade() -> None:
    """stageline never downgrades a schema: restore a backup made before the upgrade."""
    raise NotImplementedError("stageline does not downgrade schemas; restore a backup")
