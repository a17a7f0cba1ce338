"""Schema version 5: listings by code point use an index on PostgreSQL under any collation.

``list_content_artifacts`` (folder listings of the content app and the CLI, an export's
pages) orders and bounds paths by code point. Where PostgreSQL's default collation is
not "C" (``en_US.UTF-8``, ``C.UTF-8``, ICU locales: most databases), it compares in
"C", which the path index of revision 0003 cannot serve: each page read and sorted the
version's every path. This revision adds ``(relative_path COLLATE "C", content_id)``
there; on SQLite and on a "C" database it changes nothing.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from stageline.store._schema import create_code_point_path_index

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the code point path index where it serves; record schema version 5."""
    create_code_point_path_index(op.get_bind())
    # Releases from before Alembic read the schema version here (see _schema.py).
    op.execute("UPDATE stageline_meta SET value = '5' WHERE key = 'schema_version'")


def downgrade() -> None:
    """stageline never downgrades a schema: restore a backup made before the upgrade."""
    raise NotImplementedError("stageline does not downgrade schemas; restore a backup")
