"""Schema version 4: a mirror sync's record of seen content, and the digest indexes.

- ``new_version_seen`` (version id, content id): the content a sync brought into the
  version it builds, written batch by batch, so that a mirror sync removes what it did
  not bring with one statement instead of holding the repository's keys in memory. Rows
  live only while their version is incomplete.
- Indexes on ``artifacts.sha224``, ``sha384`` and ``sha512`` (artifacts are matched by
  the strongest digest upstream metadata gives, which may not be sha256) and on
  ``remote_artifacts (remote_id, sha256)`` (an alternate content source's files by
  sha256). Without them each lookup read the whole table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create new_version_seen and the four indexes; record schema version 4."""
    op.create_table(
        "new_version_seen",
        sa.Column(
            "version_id",
            _ID,
            sa.ForeignKey("repository_versions.id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("content_id", _ID, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    for digest in ("sha224", "sha384", "sha512"):
        op.create_index(f"ix_artifacts_{digest}", "artifacts", [digest])
    op.create_index(
        "ix_remote_artifacts_remote_sha256", "remote_artifacts", ["remote_id", "sha256"]
    )
    # Releases from before Alembic read the schema version here (see _schema.py).
    op.execute("UPDATE stageline_meta SET value = '4' WHERE key = 'schema_version'")


def downgrade() -> None:
    """stageline never downgrades a schema: restore a backup made before the upgrade."""
    raise NotImplementedError("stageline does not downgrade schemas; restore a backup")
