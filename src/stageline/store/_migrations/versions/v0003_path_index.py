"""Schema version 3: content artifacts are found by relative path through an index.

Serving a repository version (``ContentFetcher``, the content app) looks a file up by
its relative path; without this index that lookup scans every content artifact.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_content_artifacts_relative_path",
        "content_artifacts",
        ["relative_path", "content_id"],
    )
    # Releases from before Alembic read the schema version here (see _schema.py).
    op.execute("UPDATE stageline_meta SET value = '3' WHERE key = 'schema_version'")


def downgrade() -> None:
    """stageline never downgrades a schema: restore a backup made before the upgrade."""
    raise NotImplementedError("stageline does not downgrade schemas; restore a backup")
